#include "state_dict.hpp"

#include <map>
#include <set>
#include <stdexcept>

#include <ATen/ATen.h>

#include "errors.hpp"
#include "run_dir.hpp"

namespace saq::host {

namespace {

std::string shape(const at::Tensor& t) {
  std::string out = "[";
  for (auto d : t.sizes()) out += (out.size() > 1 ? ", " : "") + std::to_string(d);
  return out + "]";
}

/// "[64, 3, 3, 3]", with the dtype when it is not float ("Long [1]").
std::string kind(const at::Tensor& t) {
  return (t.scalar_type() == at::kFloat ? "" : std::string(c10::toString(t.scalar_type())) + " ") + shape(t);
}

bool quantizer_state(const std::string& name) { return name.find("_quantizer.") != std::string::npos; }

const std::string kPrefix = "module.";

}  // namespace

NamedTensors model_state(const torch::nn::Module& model) {
  NamedTensors out;
  for (const auto& p : model.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

void save_state_dict(const torch::nn::Module& model, const std::filesystem::path& path) {
  NamedTensors state = model_state(model);
  write_atomically(path, [&](const std::filesystem::path& tmp) { write_state_dict(tmp.string(), state); });
}

std::string LoadReport::describe() const {
  std::string out = std::to_string(loaded.size()) + " tensors match";
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (!names.empty()) out += "; " + std::string(what) + " (" + std::to_string(names.size()) + "): " + join(names);
  };
  list("missing from the file", missing);
  list("unexpected (not in the model)", unexpected);
  list("of another shape", misshaped);
  list("quantizer state not in the file, kept", kept);
  if (stripped_module_prefix) out += "; the file's \"module.\" prefix dropped";
  return out;
}

LoadReport load_state_dict(torch::nn::Module& model, const NamedTensors& tensors, const std::string& source,
                           bool partial) {
  LoadReport r;
  NamedTensors target = model_state(model);
  bool model_has_prefix = false;
  for (const auto& [name, t] : target) model_has_prefix |= name.rfind(kPrefix, 0) == 0;
  bool all_prefixed = !tensors.empty();
  for (const auto& [name, t] : tensors) all_prefixed &= name.rfind(kPrefix, 0) == 0;
  r.stripped_module_prefix = all_prefixed && !model_has_prefix;

  std::map<std::string, at::Tensor> file;
  for (const auto& [name, t] : tensors) file[r.stripped_module_prefix ? name.substr(kPrefix.size()) : name] = t;
  std::set<std::string> used;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (model tensor, file tensor)
  for (auto& [name, t] : target) {
    auto it = file.find(name);
    if (it == file.end()) {
      (quantizer_state(name) ? r.kept : r.missing).push_back(name);
      continue;
    }
    used.insert(name);
    if (it->second.sizes() != t.sizes() || it->second.scalar_type() != t.scalar_type()) {
      r.misshaped.push_back(name + ": file " + kind(it->second) + ", model " + kind(t));
      continue;
    }
    copies.emplace_back(t, it->second);
    r.loaded.push_back(name);
  }
  for (const auto& [name, t] : tensors) {
    std::string key = r.stripped_module_prefix ? name.substr(kPrefix.size()) : name;
    if (!used.count(key) && !quantizer_state(key)) r.unexpected.push_back(name);
  }
  if (!partial && !r.complete())
    throw std::runtime_error(source + ": does not match the model (" + r.describe() +
                             "); init_partial = true loads what matches");
  at::NoGradGuard no_grad;
  for (auto& [to, from] : copies) to.copy_(from);
  return r;
}

}  // namespace saq::host

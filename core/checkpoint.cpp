#include "checkpoint.hpp"

#include <stdexcept>

#include <saq/torch_file.hpp>

#include "run_dir.hpp"

namespace saq::host {

void save_weights(const torch::nn::Module& model, const std::filesystem::path& path) {
  save_weights(module_state(model), path);
}

void save_weights(const StateDict& state_dict, const std::filesystem::path& path) {
  StateDict file;
  file.put_int("format", kCheckpointFormat);
  file.put_text("kind", "saqhost weights");
  file.child("state_dict") = state_dict;
  write_atomically(path, [&](const std::filesystem::path& tmp) { write_state(tmp.string(), file); });
}

std::vector<std::pair<std::string, at::Tensor>> tensors_of(const StateDict& state) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [k, v] : state.entries()) {
    const auto* t = std::get_if<at::Tensor>(&v);
    if (!t) throw std::runtime_error(state.where() + ": '" + k + "' is a " + type_name(v) + ", not a tensor");
    out.emplace_back(k, *t);
  }
  return out;
}

}  // namespace saq::host

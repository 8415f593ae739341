#include "checkpoint.hpp"

#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "errors.hpp"
#include "run_dir.hpp"

namespace saq::host {

void save_weights(const torch::nn::Module& model, const std::filesystem::path& path) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    torch::serialize::OutputArchive archive;
    model.save(archive);
    archive.save_to(tmp.string());
  });
}

namespace {
std::string shape(const at::Tensor& t) {
  std::string out = "[";
  for (auto d : t.sizes()) out += (out.size() > 1 ? ", " : "") + std::to_string(d);
  return out + "]";
}
}  // namespace

std::vector<std::string> load_weights(torch::nn::Module& model, const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string());
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + ": not a readable checkpoint (" + std::string(e.what()).substr(0, 200) + ")");
  }
  std::vector<std::string> skipped, missing;
  auto copy = [&](const std::string& name, at::Tensor& target, bool is_buffer) {
    at::Tensor value;
    if (!archive.try_read(name, value, is_buffer)) {
      (name.find("_quantizer.") != std::string::npos ? skipped : missing).push_back(name);
      return;
    }
    if (value.sizes() != target.sizes())
      throw std::runtime_error(path.string() + ": " + name + " has shape " + shape(value) + ", the model expects " +
                               shape(target));
    at::NoGradGuard no_grad;
    target.copy_(value);
  };
  for (auto& item : model.named_parameters(true)) copy(item.key(), item.value(), false);
  for (auto& item : model.named_buffers(true)) copy(item.key(), item.value(), true);
  if (!missing.empty())
    throw std::runtime_error(path.string() + ": lacks " + std::to_string(missing.size()) + " tensors of the model (" +
                             join(missing) + ")");
  return skipped;
}

}  // namespace saq::host

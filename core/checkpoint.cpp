#include "checkpoint.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "errors.hpp"
#include "run_dir.hpp"

namespace saq::host {

void write_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& file) {
  std::ostringstream bytes;
  archive.save_to(bytes);
  const std::string data = bytes.str();
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.flush();
  if (!out) throw std::runtime_error(std::string("write failed: ") + std::strerror(errno));
}

void save_weights(const torch::nn::Module& model, const std::filesystem::path& path) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    torch::serialize::OutputArchive archive;
    model.save(archive);
    write_archive(archive, tmp);
  });
}

namespace {
std::string shape(const at::Tensor& t) {
  std::string out = "[";
  for (auto d : t.sizes()) out += (out.size() > 1 ? ", " : "") + std::to_string(d);
  return out + "]";
}
}  // namespace

namespace {

/// Module::save nests one archive per child module; walk the model and the archive together, as Module::load
/// does, but tolerate absent quantizer state and report everything else that is absent.
struct Loader {
  const std::filesystem::path& path;
  std::vector<std::string> skipped, missing;

  void absent(const std::string& name) {
    (name.find("_quantizer.") != std::string::npos ? skipped : missing).push_back(name);
  }

  void all_absent(torch::nn::Module& module, const std::string& prefix) {
    for (auto& item : module.named_parameters(true)) absent(prefix + item.key());
    for (auto& item : module.named_buffers(true)) absent(prefix + item.key());
  }

  void copy(torch::serialize::InputArchive& archive, const std::string& prefix, const std::string& key,
            at::Tensor& target, bool is_buffer) {
    at::Tensor value;
    if (!archive.try_read(key, value, is_buffer)) return absent(prefix + key);
    if (value.sizes() != target.sizes())
      throw std::runtime_error(path.string() + ": " + prefix + key + " has shape " + shape(value) +
                               ", the model expects " + shape(target));
    at::NoGradGuard no_grad;
    target.copy_(value);
  }

  void load(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& prefix) {
    for (auto& item : module.named_parameters(false)) copy(archive, prefix, item.key(), item.value(), false);
    for (auto& item : module.named_buffers(false)) copy(archive, prefix, item.key(), item.value(), true);
    for (auto& child : module.named_children()) {
      torch::serialize::InputArchive sub;
      if (archive.try_read(child.key(), sub)) load(*child.value(), sub, prefix + child.key() + ".");
      else all_absent(*child.value(), prefix + child.key() + ".");
    }
  }
};

}  // namespace

std::vector<std::string> load_weights(torch::nn::Module& model, const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string());
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw std::runtime_error(path.string() + ": not a readable checkpoint (" + what.substr(0, what.find('\n')) + ")");
  }
  return load_weights(model, archive, path);
}

std::vector<std::string> load_weights(torch::nn::Module& model, torch::serialize::InputArchive& archive,
                                      const std::filesystem::path& path) {
  Loader loader{path, {}, {}};
  loader.load(model, archive, "");
  if (!loader.missing.empty())
    throw std::runtime_error(path.string() + ": lacks " + std::to_string(loader.missing.size()) +
                             " tensors of the model (" + join(loader.missing) + ")");
  return loader.skipped;
}

}  // namespace saq::host

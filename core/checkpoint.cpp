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

namespace {

std::uint32_t u32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (std::uint32_t{p[3]} << 24); }
std::uint16_t u16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

void check_archive_sizes(const std::filesystem::path& path) {
  auto corrupt = [](const std::string& why) { throw std::runtime_error(why); };
  std::ifstream in(path, std::ios::binary);
  if (!in) corrupt("cannot open");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB, at the end of the file.
  const std::uint64_t tail = std::min<std::uint64_t>(size, 22 + 65535);
  std::string buf(tail, '\0');
  in.seekg(static_cast<std::streamoff>(size - tail));
  in.read(buf.data(), static_cast<std::streamsize>(tail));
  const auto* t = reinterpret_cast<const unsigned char*>(buf.data());
  std::int64_t eocd = -1;
  for (std::int64_t i = static_cast<std::int64_t>(tail) - 22; i >= 0 && eocd < 0; --i)
    if (u32(t + i) == 0x06054b50) eocd = i;
  if (eocd < 0) corrupt("no zip directory");
  const std::uint32_t cd_size = u32(t + eocd + 12), cd_offset = u32(t + eocd + 16);
  const std::uint16_t entries = u16(t + eocd + 10);
  if (cd_offset == 0xffffffffu) return;  // zip64 (archives past 4 GiB): left to LibTorch
  if (std::uint64_t{cd_offset} + cd_size > size) corrupt("its zip directory lies past the end of the file");
  std::string cd(cd_size, '\0');
  in.seekg(cd_offset);
  in.read(cd.data(), cd_size);
  const auto* c = reinterpret_cast<const unsigned char*>(cd.data());
  std::uint64_t at = 0;
  for (std::uint16_t i = 0; i < entries; ++i) {
    if (at + 46 > cd_size || u32(c + at) != 0x02014b50) corrupt("a damaged zip directory entry");
    const std::uint16_t method = u16(c + at + 10);
    const std::uint32_t packed = u32(c + at + 20), unpacked = u32(c + at + 24), local = u32(c + at + 42);
    const std::uint64_t next = at + 46 + u16(c + at + 28) + u16(c + at + 30) + u16(c + at + 32);
    const std::string name(cd.data() + at + 46, std::min<std::uint64_t>(u16(c + at + 28), cd_size - at - 46));
    // Stored entries hold exactly their bytes; deflate expands at most 1032:1.
    const bool plausible = packed <= size && local < size &&
                           (method == 0 ? unpacked == packed : std::uint64_t{unpacked} <= 1032ull * packed + 1024);
    if (packed != 0xffffffffu && unpacked != 0xffffffffu && !plausible)
      corrupt("zip entry " + name + " declares " + std::to_string(unpacked) + " bytes in a " + std::to_string(size) +
              "-byte file");
    at = next;
  }
}

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
    check_archive_sizes(path);
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

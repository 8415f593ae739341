// Writes a StateDict as torch.save does (zip container; data.pkl a protocol-2 pickle; one record data/<k> per
// tensor), using only the opcodes and globals that PyTorch 1.13's weights_only unpickler accepts: it has no
// float opcode, so a float is written as a 0-d float64 tensor, and strings are BINUNICODE.
#include <saq/torch_file.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

namespace saq {

namespace {

const std::map<at::ScalarType, const char*>& storage_names() {
  static const std::map<at::ScalarType, const char*> kNames = {
      {at::kFloat, "FloatStorage"}, {at::kDouble, "DoubleStorage"}, {at::kHalf, "HalfStorage"},
      {at::kBFloat16, "BFloat16Storage"}, {at::kLong, "LongStorage"}, {at::kInt, "IntStorage"},
      {at::kShort, "ShortStorage"}, {at::kChar, "CharStorage"}, {at::kByte, "ByteStorage"},
      {at::kBool, "BoolStorage"}};
  return kNames;
}

class Pickler {
 public:
  std::string out;
  std::vector<at::Tensor> storages;  // record data/<i> holds storages[i]

  void dict(const StateDict& d) {
    op('}');
    if (d.size() == 0) return;
    op('(');
    for (const auto& [k, v] : d.entries()) {
      text(k);
      value(v, d.where() + "." + k);
    }
    op('u');
  }

 private:
  void op(char c) { out += c; }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  void text(const std::string& s) {
    op('X');
    u32(static_cast<std::uint32_t>(s.size()));
    out += s;
  }
  void integer(std::int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      u32(static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
      return;
    }
    out += '\x8a';  // LONG1: 8 bytes, little-endian two's complement
    out += '\x08';
    for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
  }
  void global(const char* module, const char* name) {
    out += 'c';
    out += module;
    out += '\n';
    out += name;
    out += '\n';
  }
  void ints(at::IntArrayRef values) {
    op('(');
    for (auto v : values) integer(v);
    op('t');
  }
  void tensor(const at::Tensor& t, const std::string& where) {
    if (!t.defined()) throw std::runtime_error(where + ": an undefined tensor cannot be saved");
    if (t.layout() != at::kStrided || t.is_quantized())
      throw std::runtime_error(where + ": only dense tensors are saved");
    auto name = storage_names().find(t.scalar_type());
    if (name == storage_names().end())
      throw std::runtime_error(where + ": tensors of " + std::string(c10::toString(t.scalar_type())) + " are not saved");
    at::Tensor data = t.detach().to(at::kCPU).contiguous();
    if (data.data_ptr() == t.data_ptr()) data = data.clone();  // the file holds the values of now
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');  // persistent id: ('storage', torch.<Type>Storage, key, location, numel)
    text("storage");
    global("torch", name->second);
    text(std::to_string(storages.size()));
    text("cpu");
    integer(data.numel());
    op('t');
    op('Q');
    storages.push_back(data);
    integer(0);
    ints(data.sizes());
    ints(data.strides());
    out += '\x89';  // requires_grad False
    global("collections", "OrderedDict");
    op(')');
    op('R');
    op('t');
    op('R');
  }
  void value(const StateValue& v, const std::string& where) {
    if (const auto* t = std::get_if<at::Tensor>(&v)) tensor(*t, where);
    else if (const auto* i = std::get_if<std::int64_t>(&v)) integer(*i);
    else if (const auto* d = std::get_if<double>(&v)) tensor(at::scalar_tensor(*d, at::kDouble), where);
    else if (const auto* b = std::get_if<bool>(&v)) out += *b ? '\x88' : '\x89';
    else if (const auto* s = std::get_if<std::string>(&v)) text(*s);
    else dict(*std::get<std::shared_ptr<StateDict>>(v));
  }
};

}  // namespace

std::string torch_file_bytes(const StateDict& state) {
  Pickler p;
  p.out = "\x80\x02";
  p.dict(state);
  p.out += '.';
  // The whole file's size, reserved: grown by doubling, a ResNet-50's 94 MB were copied ~twice over, and each
  // larger buffer was fresh memory to fault in (most of a checkpoint write under AddressSanitizer).
  std::size_t payload = p.out.size();
  for (const at::Tensor& s : p.storages) payload += s.numel() * s.element_size();
  constexpr std::size_t kPerRecord = 256;  // zip headers, names, alignment padding: < 200 bytes a record
  std::string bytes;
  bytes.reserve(payload + kPerRecord * (p.storages.size() + 8));
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, std::size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  writer.writeRecord("data.pkl", p.out.data(), p.out.size());
  for (std::size_t i = 0; i < p.storages.size(); ++i) {
    const at::Tensor& s = p.storages[i];
    writer.writeRecord("data/" + std::to_string(i), s.data_ptr(), s.numel() * s.element_size());
  }
  writer.writeEndOfFile();
  return bytes;
}

void write_state(const std::string& path, const StateDict& state) {
  const std::string bytes = torch_file_bytes(state);  // in memory first: a full disk fails the write below
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  if (!out) throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
}

void write_state_atomically(const std::string& path, const StateDict& state) {
  const std::string tmp = path + ".tmp";
  try {
    write_state(tmp, state);
    std::FILE* f = std::fopen(tmp.c_str(), "rb");
    const bool synced = f && ::fsync(::fileno(f)) == 0;
    if (f) std::fclose(f);
    if (!synced) throw std::runtime_error(tmp + ": fsync failed: " + std::strerror(errno));
    std::filesystem::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

void write_state_dict(const std::string& path, const NamedTensors& tensors) {
  StateDict d;
  for (const auto& [name, t] : tensors) d.put_tensor(name, t);
  write_state(path, d);
}

}  // namespace saq

// torch.save's zip container: <archive>/data.pkl pickles the object; each tensor is
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks), where the storage is a
// persistent id ('storage', torch.FloatStorage, key, location, numel) whose bytes are the record data/<key>.
#include <saq/torch_file.hpp>

#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include "zip_check.hpp"

namespace saq {

namespace {

using pickle::Value;
using pickle::ValuePtr;
using Type = Value::Type;

const std::map<std::string, at::ScalarType>& storage_types() {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"torch.FloatStorage", at::kFloat}, {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort}, {"torch.CharStorage", at::kChar}, {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  return kTypes;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

/// Refuses what is not a zip container before the zip reader sees it, with a message a user can act on.
void check_container(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (no such file?)");
  char head[4] = {0, 0, 0, 0};
  in.read(head, 4);
  if (in.gcount() == 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return;
  if (in.gcount() >= 1 && static_cast<unsigned char>(head[0]) == 0x80)
    throw std::runtime_error(path + ": a legacy (pre-1.6, non-zip) torch.save file, which is not read; convert it "
                                    "in Python with torch.save(torch.load(path), new_path)");
  throw std::runtime_error(path + ": not a PyTorch file (no zip container)");
}

std::vector<std::int64_t> ints(const ValuePtr& v, const std::string& what) {
  std::vector<std::int64_t> out;
  for (const auto& x : pickle::as_sequence(v, what)) out.push_back(pickle::as_int(x, what));
  return out;
}

ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args) {
  if (args.size() < 4) throw std::runtime_error("needs (storage, offset, size, stride, ...)");
  const at::Tensor& storage = pickle::as_tensor(args[0], "storage");
  const std::int64_t offset = pickle::as_int(args[1], "storage offset");
  const auto size = ints(args[2], "size"), stride = ints(args[3], "stride");
  if (size.size() != stride.size())
    throw std::runtime_error("size has " + std::to_string(size.size()) + " dimensions, stride " +
                             std::to_string(stride.size()));
  if (size.size() > 64) throw std::runtime_error(std::to_string(size.size()) + " dimensions (at most 64 are read)");
  // The last element the view reaches must lie in the storage; every product and sum is checked for overflow,
  // so that a declared shape can never make a view past the storage's end.
  std::int64_t last = offset, numel = 1;
  bool overflow = offset < 0;
  for (std::size_t i = 0; i < size.size() && !overflow; ++i) {
    if (size[i] < 0 || stride[i] < 0) throw std::runtime_error("negative size or stride");
    std::int64_t reach = 0;
    overflow = __builtin_mul_overflow(numel, size[i], &numel) ||
               (size[i] > 0 && __builtin_mul_overflow(size[i] - 1, stride[i], &reach)) ||
               __builtin_add_overflow(last, reach, &last);
  }
  if (overflow || (numel > 0 && last >= storage.numel()))
    throw std::runtime_error("a tensor of size " + c10::str(at::IntArrayRef(size)) + ", stride " + c10::str(at::IntArrayRef(stride)) +
                             " at offset " + std::to_string(offset) + " reaches past its storage of " +
                             std::to_string(storage.numel()) + " elements");
  return Value::of_tensor(numel == 0 ? at::empty(size, storage.options()) : storage.as_strided(size, stride, offset));
}

ValuePtr restore_type_tag(const std::vector<ValuePtr>& args) {  // what torch::pickle_save wraps a dict in
  if (args.empty()) throw std::runtime_error("needs (value, type)");
  return args[0];
}

ValuePtr rebuild_parameter(const std::vector<ValuePtr>& args) {
  if (args.empty()) throw std::runtime_error("needs (data, requires_grad, hooks)");
  return Value::of_tensor(pickle::as_tensor(args[0], "parameter data"));
}

/// Storage bytes of one record, as a 1-D tensor of the storage's type.
at::Tensor read_storage(caffe2::serialize::PyTorchStreamReader& reader, const ValuePtr& pid) {
  const auto& t = pickle::as_sequence(pid, "persistent id");
  if (t.size() < 5 || !t[0]->is_text() || t[0]->text != "storage" || t[1]->type != Type::Global)
    throw std::runtime_error("expected ('storage', type, key, location, numel)");
  auto type = storage_types().find(t[1]->cls);
  if (type == storage_types().end()) throw std::runtime_error("storage type " + t[1]->cls + " is not read");
  const std::string record = "data/" + pickle::as_text(t[2], "storage key");
  const std::int64_t numel = pickle::as_int(t[4], "storage size");
  if (!reader.hasRecord(record)) throw std::runtime_error("the archive has no record " + record);
  auto [data, bytes] = reader.getRecord(record);
  const std::size_t item = at::elementSize(type->second);
  const std::size_t want = static_cast<std::size_t>(numel) * item;
  if (numel < 0 || static_cast<std::size_t>(numel) > bytes / item || bytes != want)
    throw std::runtime_error("record " + record + " holds " + std::to_string(bytes) + " bytes; " +
                             std::to_string(numel) + " elements of " + t[1]->cls + " need " + std::to_string(want));
  at::Tensor out = at::empty({numel}, at::TensorOptions().dtype(type->second));
  if (want) std::memcpy(out.data_ptr(), data.get(), want);
  return out;
}

bool has_torchscript_records(caffe2::serialize::PyTorchStreamReader& reader) {
  return reader.hasRecord("constants.pkl") || reader.hasRecord("code/__torch__.py");
}

}  // namespace

bool is_torchscript_archive(const std::string& path) {
  try {
    check_container(path);
    detail::check_archive_sizes(path);
    caffe2::serialize::PyTorchStreamReader reader(path);
    return has_torchscript_records(reader);
  } catch (const std::exception&) {
    return false;  // not a zip container: the reader says what it is
  }
}

ValuePtr read_torch_file(const std::string& path, const pickle::Globals& extra) {
  check_container(path);
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    detail::check_archive_sizes(path);
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not a readable zip container (" + first_line(e.what()) + ")");
  }
  if (has_torchscript_records(*reader))
    throw std::runtime_error(path + ": a TorchScript archive (what saqhost wrote before its checkpoints became "
                                    "torch.save files), which is not read: its code could crash or mislead the "
                                    "reader. Convert a weights checkpoint once with `saqhost convert " + path +
                                    " NEW.pt` (the one command that opens such files)");
  if (!reader->hasRecord("data.pkl")) throw std::runtime_error(path + ": has no data.pkl (not a torch.save file)");
  auto [data, size] = reader->getRecord("data.pkl");

  pickle::Options o;
  o.source = path + ": data.pkl";
  o.globals = pickle::ordered_dict_globals();
  for (auto& [name, g] : pickle::numpy_globals()) o.globals[name] = g;
  o.globals["torch._utils._rebuild_tensor_v2"] = {rebuild_tensor, nullptr};
  o.globals["torch._utils._rebuild_tensor"] = {rebuild_tensor, nullptr};
  o.globals["torch._utils._rebuild_parameter"] = {rebuild_parameter, nullptr};
  o.globals["torch._utils._rebuild_parameter_with_state"] = {rebuild_parameter, nullptr};
  o.globals["torch.jit._pickle.restore_type_tag"] = {restore_type_tag, nullptr};
  for (const auto& [name, type] : storage_types()) o.globals[name] = {};  // named in persistent ids, never called
  for (const auto& [name, g] : extra) o.globals[name] = g;
  std::map<std::string, ValuePtr> storages;  // tensors that share a storage share its bytes
  o.persistent_load = [&](const ValuePtr& pid) {
    const auto& t = pickle::as_sequence(pid, "persistent id");
    const std::string key = t.size() > 2 && t[2]->is_text() ? t[2]->text : "";
    auto it = storages.find(key);
    if (it == storages.end()) it = storages.emplace(key, Value::of_tensor(read_storage(*reader, pid), "storage")).first;
    return it->second;
  };
  return pickle::load(static_cast<const std::uint8_t*>(data.get()), size, o);
}

NamedTensors read_state_dict(const std::string& path) {
  ValuePtr top = read_torch_file(path);
  if (top->type != Type::Dict) throw std::runtime_error(path + ": holds a " + top->describe() + ", not a state_dict");
  ValuePtr dict = top;
  for (const char* wrapper : {"state_dict", "model"}) {
    ValuePtr inner = top->find(wrapper);
    if (inner && inner->type == Type::Dict) {
      dict = inner;
      break;
    }
  }
  NamedTensors out;
  for (const auto& [k, v] : dict->entries) {
    const std::string name = k->is_text() ? k->text : "<" + k->describe() + " key>";
    if (!k->is_text() || v->type != Type::Tensor)
      throw std::runtime_error(path + ": entry '" + name + "' is a " + v->describe() +
                               ", not a tensor (a state_dict maps names to tensors" +
                               (dict == top ? "; none is wrapped under \"state_dict\" or \"model\")" : ")"));
    out.emplace_back(name, v->tensor);
  }
  return out;
}

namespace {

constexpr int kMaxDepth = 16;

void convert(const Value& dict, StateDict& out, int depth) {
  if (depth > kMaxDepth) throw std::runtime_error(out.where() + ": dicts nested deeper than " + std::to_string(kMaxDepth));
  for (const auto& [k, v] : dict.entries) {
    if (!k->is_text()) throw std::runtime_error(out.where() + ": a " + k->describe() + " key (keys are strings)");
    const std::string& key = k->text;
    switch (v->type) {
      case Type::Tensor: out.put_tensor(key, v->tensor); break;
      case Type::Int: out.put_int(key, v->integer); break;
      case Type::Float: out.put_real(key, v->real); break;
      case Type::Bool: out.put_bool(key, v->boolean); break;
      case Type::Str: out.put_text(key, v->text); break;
      case Type::Dict: convert(*v, out.child(key), depth + 1); break;
      default: throw std::runtime_error(out.where() + ": '" + key + "' is a " + v->describe() + ", which a state does not hold");
    }
  }
}

}  // namespace

StateDict read_state(const std::string& path) {
  ValuePtr top = read_torch_file(path);
  if (top->type != Type::Dict) throw std::runtime_error(path + ": holds a " + top->describe() + ", not a dict");
  StateDict out(path);
  convert(*top, out, 0);
  return out;
}

}  // namespace saq

// Builders for the globals that pickled numpy arrays and OrderedDicts name. An ndarray pickles as
// _reconstruct(ndarray, (0,), b'b') followed by BUILD with (version, shape, dtype, is_fortran, raw bytes);
// a dtype as dtype('u1', False, True) with BUILD (3, byteorder, ...). Python 3 writes bytes in protocol 2 as
// _codecs.encode(latin-1 text, 'latin1').
#include <saq/pickle.hpp>

#include <cstring>
#include <stdexcept>

#include <ATen/ATen.h>

namespace saq::pickle {

namespace {

using Type = Value::Type;

void need_args(const std::vector<ValuePtr>& args, std::size_t lo, std::size_t hi) {
  if (args.size() < lo || args.size() > hi)
    throw std::runtime_error("takes " + std::to_string(lo) + (lo == hi ? "" : ".." + std::to_string(hi)) +
                             " arguments, got " + std::to_string(args.size()));
}

/// UTF-8 text whose code points are all below 256 back to the bytes they stand for.
std::string latin1_bytes(const std::string& utf8) {
  std::string out;
  out.reserve(utf8.size());
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c & 0xe0) == 0xc0 && c <= 0xc3 && i + 1 < utf8.size()) {
      out += static_cast<char>(((c & 0x1f) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3f));
    } else {
      throw std::runtime_error("text holds a character above U+00FF, which latin-1 cannot encode");
    }
  }
  return out;
}

ValuePtr codecs_encode(const std::vector<ValuePtr>& args) {
  need_args(args, 1, 2);
  std::string encoding = args.size() > 1 ? as_text(args[1], "encoding") : "utf-8";
  const std::string& text = as_text(args[0], "text");
  if (encoding == "latin1" || encoding == "latin-1" || encoding == "iso-8859-1")
    return Value::of_bytes(latin1_bytes(text));
  if (encoding == "utf-8" || encoding == "utf8") return Value::of_bytes(text);
  throw std::runtime_error("encoding '" + encoding + "' is not supported");
}

ValuePtr bytes_of(const std::vector<ValuePtr>& args) {
  need_args(args, 0, 1);
  if (args.empty()) return Value::of_bytes("");
  return Value::of_bytes(as_text(args[0], "bytes"));
}

/// The tensor type of a numpy dtype string ("u1", "<f4", "|b1").
at::ScalarType scalar_type(std::string descr, const std::string& byteorder) {
  char order = byteorder.empty() ? '=' : byteorder[0];
  if (!descr.empty() && (descr[0] == '<' || descr[0] == '>' || descr[0] == '|' || descr[0] == '=')) {
    order = descr[0];
    descr = descr.substr(1);
  }
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"u1", at::kByte}, {"i1", at::kChar}, {"b1", at::kBool}, {"i2", at::kShort}, {"i4", at::kInt},
      {"i8", at::kLong}, {"f2", at::kHalf}, {"f4", at::kFloat}, {"f8", at::kDouble}};
  auto it = kTypes.find(descr);
  if (it == kTypes.end()) throw std::runtime_error("numpy dtype '" + descr + "' has no tensor type here");
  if (order == '>' && at::elementSize(it->second) > 1)
    throw std::runtime_error("big-endian numpy dtype '>" + descr + "' is not supported");
  return it->second;
}

at::ScalarType dtype_of(const ValuePtr& d) {
  if (d && d->type == Type::Object && d->cls == "numpy.dtype") {
    auto order = d->attrs.find("byteorder");
    return scalar_type(d->attrs.at("descr")->text, order == d->attrs.end() ? "=" : order->second->text);
  }
  throw std::runtime_error("expected a numpy dtype, got " + (d ? d->describe() : "nothing"));
}

std::vector<std::int64_t> shape_of(const ValuePtr& v) {
  std::vector<std::int64_t> shape;
  for (const auto& d : as_sequence(v, "shape")) {
    shape.push_back(as_int(d, "shape"));
    if (shape.back() < 0) throw std::runtime_error("negative dimension in shape");
  }
  return shape;
}

/// A tensor of `shape` and `type` holding exactly `raw`.
at::Tensor tensor_from(const std::string& raw, at::ScalarType type, const std::vector<std::int64_t>& shape,
                       bool fortran) {
  std::vector<std::int64_t> dims = shape;
  if (fortran) dims.assign(shape.rbegin(), shape.rend());  // column-major: the reversed shape, transposed back
  const std::size_t item = at::elementSize(type);
  std::size_t numel = 1;
  for (auto d : dims) {  // checked before anything is allocated: the shape comes from the file
    if (d != 0 && numel > raw.size() / item / static_cast<std::size_t>(d))
      throw std::runtime_error("array shape needs more than the " + std::to_string(raw.size()) + " data bytes");
    numel *= static_cast<std::size_t>(d);
  }
  if (raw.size() != numel * item)
    throw std::runtime_error("array data holds " + std::to_string(raw.size()) + " bytes, its shape and dtype need " +
                             std::to_string(numel * item));
  at::Tensor t = at::empty(dims, at::TensorOptions().dtype(type));
  if (numel) std::memcpy(t.data_ptr(), raw.data(), numel * item);
  if (fortran) {
    std::vector<std::int64_t> perm;
    for (auto i = static_cast<std::int64_t>(dims.size()); i-- > 0;) perm.push_back(i);
    t = t.permute(perm).contiguous();
  }
  return t;
}

ValuePtr reconstruct(const std::vector<ValuePtr>& args) {
  need_args(args, 3, 3);
  if (args[0]->type != Type::Global || args[0]->cls.rfind("numpy.", 0) != 0 ||
      args[0]->cls.substr(args[0]->cls.rfind('.')) != ".ndarray")
    throw std::runtime_error("only numpy.ndarray is reconstructed, not " + args[0]->describe());
  auto v = Value::make(Type::Object);
  v->cls = "numpy.ndarray";
  return v;
}

void ndarray_state(Value& self, const ValuePtr& state) {
  if (self.type != Type::Object) throw std::runtime_error("array state applied twice");
  const auto& s = as_sequence(state, "array state");
  if (s.size() != 5) throw std::runtime_error("array state has " + std::to_string(s.size()) + " fields, want 5");
  if (!s[4]->is_text())
    throw std::runtime_error("array data is a " + s[4]->describe() + " (object arrays are not read)");
  at::ScalarType type = dtype_of(s[2]);
  self.tensor = tensor_from(s[4]->text, type, shape_of(s[1]), as_int(s[3], "is_fortran") != 0);
  self.type = Type::Tensor;
}

ValuePtr make_dtype(const std::vector<ValuePtr>& args) {
  need_args(args, 1, 3);
  auto v = Value::make(Type::Object);
  v->cls = "numpy.dtype";
  v->attrs["descr"] = Value::of_str(as_text(args[0], "dtype"));
  return v;
}

void dtype_state(Value& self, const ValuePtr& state) {
  const auto& s = as_sequence(state, "dtype state");
  if (s.size() < 2) throw std::runtime_error("dtype state too short");
  self.attrs["byteorder"] = Value::of_str(as_text(s[1], "dtype byte order"));
  scalar_type(self.attrs.at("descr")->text, self.attrs["byteorder"]->text);  // refuse what cannot be read, now
}

ValuePtr scalar(const std::vector<ValuePtr>& args) {
  need_args(args, 2, 2);
  at::Tensor t = tensor_from(as_text(args[1], "scalar data"), dtype_of(args[0]), {}, false);
  if (t.is_floating_point()) {
    auto v = Value::make(Type::Float);
    v->real = t.item<double>();
    return v;
  }
  if (t.scalar_type() == at::kBool) {
    auto v = Value::make(Type::Bool);
    v->boolean = t.item<bool>();
    return v;
  }
  return Value::of_int(t.item<std::int64_t>());
}

ValuePtr frombuffer(const std::vector<ValuePtr>& args) {  // protocol 5: _frombuffer(buf, dtype, shape, order)
  need_args(args, 4, 4);
  return Value::of_tensor(
      tensor_from(as_text(args[0], "buffer"), dtype_of(args[1]), shape_of(args[2]), as_text(args[3], "order") == "F"),
      "numpy.ndarray");
}

ValuePtr ordered_dict(const std::vector<ValuePtr>& args) {
  need_args(args, 0, 1);
  auto d = Value::make(Type::Dict);
  d->cls = "collections.OrderedDict";
  if (!args.empty())
    for (const auto& pair : as_sequence(args[0], "items")) {
      const auto& kv = as_sequence(pair, "item");
      if (kv.size() != 2) throw std::runtime_error("an item is not a (key, value) pair");
      d->entries.emplace_back(kv[0], kv[1]);
    }
  return d;
}

void dict_attributes(Value& self, const ValuePtr& state) {  // OrderedDict's instance dict (_metadata): kept aside
  if (state->type != Type::Dict) throw std::runtime_error("expected a dict of attributes");
  for (const auto& [k, v] : state->entries)
    if (k->is_text()) self.attrs[k->text] = v;
}

}  // namespace

Globals numpy_globals() {
  Globals g;
  for (const std::string core : {"numpy.core", "numpy._core"}) {
    g[core + ".multiarray._reconstruct"] = {reconstruct, nullptr};
    g[core + ".multiarray.scalar"] = {scalar, nullptr};
    g[core + ".numeric._frombuffer"] = {frombuffer, nullptr};
  }
  g["numpy.ndarray"] = {nullptr, ndarray_state};
  g["numpy.dtype"] = {make_dtype, dtype_state};
  g["_codecs.encode"] = {codecs_encode, nullptr};
  g["builtins.bytes"] = {bytes_of, nullptr};
  g["__builtin__.bytes"] = {bytes_of, nullptr};
  return g;
}

Globals ordered_dict_globals() {
  Globals g;
  g["collections.OrderedDict"] = {ordered_dict, dict_attributes};
  return g;
}

}  // namespace saq::pickle

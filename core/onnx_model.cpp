#include "onnx_model.hpp"

#include <cstring>
#include <stdexcept>

#include <ATen/ATen.h>

namespace saq::host::onnx {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float: return "float32";
    case DType::Uint8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
  }
  return "?";
}

Initializer initializer(const std::string& name, const at::Tensor& t, DType type) {
  at::ScalarType st = at::kFloat;
  switch (type) {
    case DType::Float: st = at::kFloat; break;
    case DType::Uint8: st = at::kByte; break;
    case DType::Int8: st = at::kChar; break;
    case DType::Int32: st = at::kInt; break;
    case DType::Int64: st = at::kLong; break;
  }
  const at::Tensor c = t.detach().to(at::kCPU).to(st).contiguous();
  Initializer init{name, type, c.sizes().vec(), {}};
  init.raw.assign(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());  // x86-64: little-endian
  return init;
}

Attribute Attribute::integer(std::string name, std::int64_t v) {
  Attribute a;
  a.kind = Kind::Int, a.name = std::move(name), a.i = v;
  return a;
}
Attribute Attribute::real(std::string name, float v) {
  Attribute a;
  a.kind = Kind::Float, a.name = std::move(name), a.f = v;
  return a;
}
Attribute Attribute::list(std::string name, std::vector<std::int64_t> v) {
  Attribute a;
  a.kind = Kind::Ints, a.name = std::move(name), a.ints = std::move(v);
  return a;
}
Attribute Attribute::text(std::string name, std::string v) {
  Attribute a;
  a.kind = Kind::String, a.name = std::move(name), a.s = std::move(v);
  return a;
}

namespace {

/// One protobuf message being written: fields appended in any order (ONNX readers accept any order).
class Message {
 public:
  void varint_field(int field, std::uint64_t v) {
    key(field, 0);
    varint(v);
  }
  void int_field(int field, std::int64_t v) { varint_field(field, static_cast<std::uint64_t>(v)); }
  void float_field(int field, float v) {
    key(field, 5);
    char b[4];
    std::memcpy(b, &v, 4);
    out_.append(b, 4);
  }
  void bytes_field(int field, const std::string& v) {
    key(field, 2);
    varint(v.size());
    out_ += v;
  }
  void message_field(int field, const Message& m) { bytes_field(field, m.out_); }
  const std::string& bytes() const { return out_; }

 private:
  void key(int field, int wire) { varint((static_cast<std::uint64_t>(field) << 3) | static_cast<unsigned>(wire)); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  std::string out_;
};

// Field numbers from onnx/onnx.proto.
Message tensor_message(const Initializer& t) {
  Message m;
  for (std::int64_t d : t.dims) m.int_field(1, d);  // dims (unpacked: onnx.proto is proto2)
  m.int_field(2, static_cast<int>(t.type));         // data_type
  m.bytes_field(8, t.name);                         // name
  m.bytes_field(9, t.raw);                          // raw_data
  return m;
}

Message attribute_message(const Attribute& a) {
  Message m;
  m.bytes_field(1, a.name);
  switch (a.kind) {
    case Attribute::Kind::Float: m.float_field(2, a.f), m.int_field(20, 1); break;
    case Attribute::Kind::Int: m.int_field(3, a.i), m.int_field(20, 2); break;
    case Attribute::Kind::String: m.bytes_field(4, a.s), m.int_field(20, 3); break;
    case Attribute::Kind::Ints:
      for (std::int64_t v : a.ints) m.int_field(8, v);
      m.int_field(20, 7);
      break;
  }
  return m;
}

Message node_message(const Node& n) {
  Message m;
  for (const auto& i : n.inputs) m.bytes_field(1, i);
  for (const auto& o : n.outputs) m.bytes_field(2, o);
  m.bytes_field(3, n.name);
  m.bytes_field(4, n.op);
  for (const auto& a : n.attributes) m.message_field(5, attribute_message(a));
  return m;
}

Message value_info_message(const ValueInfo& v) {
  Message shape;
  for (std::int64_t d : v.dims) {
    Message dim;
    if (d < 0) dim.bytes_field(2, v.dim_param);
    else dim.int_field(1, d);
    shape.message_field(1, dim);
  }
  Message tensor;
  tensor.int_field(1, static_cast<int>(v.type));
  if (v.shape_known) tensor.message_field(2, shape);
  Message type;
  type.message_field(1, tensor);
  Message m;
  m.bytes_field(1, v.name);
  m.message_field(2, type);
  return m;
}

}  // namespace

std::string serialize(const Model& model) {
  Message graph;
  for (const auto& n : model.graph.nodes) graph.message_field(1, node_message(n));
  graph.bytes_field(2, model.graph.name);
  for (const auto& t : model.graph.initializers) graph.message_field(5, tensor_message(t));
  for (const auto& v : model.graph.inputs) graph.message_field(11, value_info_message(v));
  for (const auto& v : model.graph.outputs) graph.message_field(12, value_info_message(v));

  Message m;
  m.int_field(1, model.ir_version);
  m.bytes_field(2, model.producer_name);
  m.bytes_field(3, model.producer_version);
  if (!model.doc.empty()) m.bytes_field(6, model.doc);
  m.message_field(7, graph);
  Message opset;
  opset.bytes_field(1, "");  // the default domain, ai.onnx
  opset.int_field(2, model.opset);
  m.message_field(8, opset);
  for (const auto& [k, v] : model.metadata) {
    Message entry;
    entry.bytes_field(1, k);
    entry.bytes_field(2, v);
    m.message_field(14, entry);
  }
  return m.bytes();
}

}  // namespace saq::host::onnx

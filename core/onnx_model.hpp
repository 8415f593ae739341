#pragma once
/// The part of ONNX's ModelProto that `saqhost export` writes, and its serialisation in the protobuf wire format.
/// Written directly rather than through libonnx's generated classes: LibTorch links its own copy of the ONNX
/// protos, and a second registration of the same descriptors in one process aborts it.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace saq::host::onnx {

/// TensorProto.DataType values.
enum class DType : int { Float = 1, Uint8 = 2, Int8 = 3, Int32 = 6, Int64 = 7 };
const char* dtype_name(DType t);

struct Initializer {
  std::string name;
  DType type = DType::Float;
  std::vector<std::int64_t> dims;
  std::string raw;  ///< little-endian element bytes (TensorProto.raw_data)
};
/// A CPU copy of `t` in `type` (float32, int8, uint8, int32 or int64); values are converted, not checked.
Initializer initializer(const std::string& name, const at::Tensor& t, DType type);

struct Attribute {
  enum class Kind { Int, Float, Ints, String } kind = Kind::Int;
  std::string name;
  std::int64_t i = 0;
  float f = 0;
  std::vector<std::int64_t> ints;
  std::string s;
  static Attribute integer(std::string name, std::int64_t v);
  static Attribute real(std::string name, float v);
  static Attribute list(std::string name, std::vector<std::int64_t> v);
  static Attribute text(std::string name, std::string v);
};

struct Node {
  std::string op, name;
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;
};

/// A graph input or output: element type and shape, a negative dimension written as the symbolic `dim_param`.
struct ValueInfo {
  std::string name;
  DType type = DType::Float;
  std::vector<std::int64_t> dims;
  std::string dim_param = "batch";
  bool shape_known = true;  ///< false: the type alone, no shape
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<Initializer> initializers;
  std::vector<ValueInfo> inputs, outputs;
};

struct Model {
  Graph graph;
  std::int64_t opset = 13, ir_version = 7;  ///< IR 7 is the one that goes with opset 13
  std::string producer_name = "saqhost", producer_version, doc;
  std::vector<std::pair<std::string, std::string>> metadata;
};

/// The model as ModelProto bytes.
std::string serialize(const Model& model);

}  // namespace saq::host::onnx

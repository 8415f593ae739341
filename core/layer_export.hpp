#pragma once
/// How each quantized layer of a model maps onto ONNX's integer types under an export profile: its weight's
/// integer codes and their container, its input's grid, or why the profile cannot hold them exactly.
#include <string>
#include <vector>

#include <saq/model.hpp>

#include "onnx_trace.hpp"

namespace saq::host {

/// "onnxruntime": int8/uint8 QDQ, zero points allowed, codes beyond int8 (8-bit LIQ/DoReFa weights: odd codes
/// −255..255, 9 bits) as int32 DequantizeLinear, which is exact. "tensorrt": int8 with zero point 0 only, weight
/// codes within −127..127 (TensorRT's symmetric int8).
enum class ExportProfile { OnnxRuntime, TensorRt };
ExportProfile parse_profile(const std::string& name);  ///< throws std::invalid_argument naming the choices
const char* profile_name(ExportProfile p);

/// One layer the profile cannot hold exactly: "layer3.0.conv1: weight codes -255..255 (8-bit) do not fit int8 ...".
struct Inexact {
  std::string layer, reason;
};

/// The export of every quantizable layer of `model` at its current bits: weights' codes derived from what each
/// weight quantizer's forward returns (eval mode) and the grid it declares, checked against each other; activation
/// grids from the activation quantizers. Layers at 32 bits stay float. A quantizer that declares no grid, or a grid
/// that does not reproduce its forward, throws std::runtime_error naming the layer and the quantizer. What the
/// profile cannot hold is listed in `inexact` and marked as_float (the caller refuses, or warns).
std::vector<LayerExport> layer_exports(Model& model, ExportProfile profile, const std::string& quantizer,
                                       std::vector<Inexact>& inexact);

}  // namespace saq::host

#pragma once
/// A model's forward pass as an ONNX graph: LibTorch's tracer records the ops of one eval forward (the models are
/// plain C++, so their graph exists only as the ops they run), and each recorded op becomes ONNX nodes. The
/// quantized layers run export stand-ins for their quantizers while the tracer watches: a weight becomes the
/// constant its integer codes dequantize to, an activation quantizer becomes clamp + fake_quantize, which the
/// conversion turns into Clip → QuantizeLinear → DequantizeLinear.
#include <cstdint>
#include <string>
#include <vector>

#include <saq/layers.hpp>
#include <saq/model.hpp>

#include "onnx_model.hpp"

namespace saq::host {

/// A quantized weight as DequantizeLinear(codes, scale, zero_point), or (as_float) as the float values it stands for.
struct WeightExport {
  at::Tensor values;  ///< float: what the quantizer's forward returned (the as_float export stores these)
  at::Tensor codes;   ///< int64, the weight's shape
  at::Tensor scale;   ///< float, [1] or [C_out] (per output channel, axis 0)
  std::int64_t zero_point = 0;
  onnx::DType type = onnx::DType::Int8;
  bool as_float = false;
};

/// A quantized input activation: Clip(lo, hi) → QuantizeLinear → DequantizeLinear, or (as_float) the same grid
/// in float ops, Clip → Div → Round → Mul (exact in float; no integer tensor).
struct ActivationExport {
  double scale = 1;
  std::int64_t zero_point = 0, qmin = 0, qmax = 255;
  onnx::DType type = onnx::DType::Uint8;
  bool as_float = false;
};

/// What is exported of one quantizable layer; absent parts stay float.
struct LayerExport {
  std::string name;
  QuantLayer* layer = nullptr;
  bool quantized_weight = false, quantized_activation = false;
  WeightExport weight;
  ActivationExport activation;
  bool batch_norm_folded = false;  ///< set by trace_to_onnx: its BN now lives in weight.scale/codes and `bias`
  at::Tensor bias;                 ///< the conv's bias in the graph after a fold (undefined otherwise)
};

struct TraceOptions {
  std::vector<std::int64_t> input_shape;  ///< one sample, {C, H, W}
  bool fold_batch_norm = true;            ///< into the conv whose only consumer it is (see trace_to_onnx)
};

/// Traces `model` (set to eval; its layers' quantizers are swapped for the stand-ins and restored) and converts
/// the trace. A BatchNorm is folded into the conv that produces it where that is exact for the quantized graph:
/// the conv's output goes nowhere else and its input is float (the first layer, a full-precision layer). Its
/// per-channel factor γ/√(σ²+ε) joins the weight's per-channel dequantization scale (the integer codes stay;
/// a negative factor flips the sign of its channel's codes) and its shift becomes the conv's bias. A conv with a
/// quantized input keeps its BatchNormalization: integer runtimes run such a conv as an integer kernel whose
/// bias must be int32 at scale s_x·s_w (ONNX Runtime rounds a float bias so), and a folded shift would be
/// rounded there, moving activations across rounding ties; the BN after the integer conv is exact.
/// Throws std::runtime_error naming an op it cannot convert.
onnx::Graph trace_to_onnx(Model& model, std::vector<LayerExport>& layers, const TraceOptions& options);

}  // namespace saq::host

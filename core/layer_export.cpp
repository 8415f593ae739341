#include "layer_export.hpp"

#include <cmath>
#include <stdexcept>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "quantize.hpp"

namespace saq::host {

ExportProfile parse_profile(const std::string& name) {
  if (name == "onnxruntime") return ExportProfile::OnnxRuntime;
  if (name == "tensorrt") return ExportProfile::TensorRt;
  throw std::invalid_argument("--profile: '" + name + "' is not a profile (onnxruntime, tensorrt)");
}

const char* profile_name(ExportProfile p) { return p == ExportProfile::TensorRt ? "tensorrt" : "onnxruntime"; }

namespace {

std::string range(std::int64_t lo, std::int64_t hi) { return fmt::format("{}..{}", lo, hi); }

/// The container of a weight's codes in `type`; false, with `why` set, when the profile has none that holds them.
bool weight_type(ExportProfile profile, const QuantGrid& g, int bits, onnx::DType& type, std::string& why) {
  if (profile == ExportProfile::TensorRt) {
    if (g.zero_point == 0 && g.qmin >= -127 && g.qmax <= 127) return type = onnx::DType::Int8, true;
    why = fmt::format("weight codes {} with zero point {} ({}-bit): TensorRT's int8 weights are symmetric, -127..127 "
                      "with zero point 0{}", range(g.qmin, g.qmax), g.zero_point, bits,
                      g.qmax > 127 ? " (LIQ/DoReFa's 8-bit odd codes need 9 bits)" : "");
    return false;
  }
  if (g.qmin >= -128 && g.qmax <= 127 && g.zero_point >= -128 && g.zero_point <= 127) return type = onnx::DType::Int8, true;
  if (g.qmin >= 0 && g.qmax <= 255 && g.zero_point >= 0 && g.zero_point <= 255) return type = onnx::DType::Uint8, true;
  if (g.zero_point == 0 && g.qmin >= INT32_MIN && g.qmax <= INT32_MAX) return type = onnx::DType::Int32, true;
  why = fmt::format("weight codes {} with zero point {} fit no DequantizeLinear type", range(g.qmin, g.qmax), g.zero_point);
  return false;
}

bool activation_type(ExportProfile profile, const QuantGrid& g, int bits, onnx::DType& type, std::string& why) {
  if (profile == ExportProfile::TensorRt) {
    if (g.zero_point == 0 && g.qmin >= -128 && g.qmax <= 127) return type = onnx::DType::Int8, true;
    why = fmt::format("input codes {} with zero point {} ({}-bit): TensorRT takes int8 with zero point 0, -128..127{}",
                      range(g.qmin, g.qmax), g.zero_point, bits, g.qmax > 127 ? " (8-bit unsigned needs 0..255)" : "");
    return false;
  }
  if (g.qmin >= 0 && g.qmax <= 255 && g.zero_point >= 0 && g.zero_point <= 255) return type = onnx::DType::Uint8, true;
  if (g.qmin >= -128 && g.qmax <= 127 && g.zero_point >= -128 && g.zero_point <= 127) return type = onnx::DType::Int8, true;
  why = fmt::format("input codes {} with zero point {} fit neither uint8 nor int8", range(g.qmin, g.qmax), g.zero_point);
  return false;
}

void check_grid(const QuantGrid& g, std::int64_t channels, const std::string& what) {
  if (!(g.qmin < g.qmax) || g.zero_point < g.qmin || g.zero_point > g.qmax)
    throw std::runtime_error(fmt::format("{}: grid codes {} with zero point {} are not a range holding its zero point",
                                         what, range(g.qmin, g.qmax), g.zero_point));
  if (g.scale.numel() != 1 && g.scale.numel() != channels)
    throw std::runtime_error(fmt::format("{}: grid scale has {} elements; 1 or one per output channel ({}) expected",
                                         what, g.scale.numel(), channels));
  const at::Tensor s = g.scale.to(at::kDouble);
  if (!(s > 0).all().item<bool>() || !at::isfinite(s).all().item<bool>())
    throw std::runtime_error(what + ": grid scale must be finite and positive, got " + fmt::format("{}", s.min().item<double>()));
}

}  // namespace

std::vector<LayerExport> layer_exports(Model& model, ExportProfile profile, const std::string& quantizer,
                                       std::vector<Inexact>& inexact) {
  model.eval();
  at::NoGradGuard no_grad;
  std::vector<LayerExport> out;
  for (const auto& [name, layer] : quant_layers(model)) {
    LayerExport e;
    e.name = name;
    e.layer = layer.get();
    const std::string who = fmt::format("layer {} (quantizer '{}')", name, quantizer);
    if (layer->quantizable() && layer->weight_bits() != kFullPrecision) {
      auto q = quantizers_of(*layer).first;
      const QuantGrid g = q->grid(layer->weight, layer->weight_bits());
      if (!g.defined())
        throw std::runtime_error(who + ": its weight quantizer declares no integer grid (TensorQuantizer::grid), so "
                                       "the layer cannot be exported; the quantizer's plugin must implement grid()");
      check_grid(g, layer->weight.size(0), who + " weights");
      WeightExport& w = e.weight;
      w.values = q->forward(layer->weight, layer->weight_bits()).detach().to(at::kFloat);
      w.scale = g.scale.detach().to(at::kFloat).reshape({-1});
      w.zero_point = g.zero_point;
      std::vector<std::int64_t> per_channel(static_cast<size_t>(w.values.dim()), 1);
      per_channel[0] = -1;
      const at::Tensor s = w.scale.numel() > 1 ? w.scale.reshape(per_channel) : w.scale;
      const at::Tensor t = w.values.to(at::kDouble) / s.to(at::kDouble);
      w.codes = at::round(t).to(at::kLong) + g.zero_point;
      const double off = (t - at::round(t)).abs().max().item<double>();
      const std::int64_t lo = w.codes.min().item<std::int64_t>(), hi = w.codes.max().item<std::int64_t>();
      if (off > 1e-3 || lo < g.qmin || hi > g.qmax)
        throw std::runtime_error(fmt::format("{}: the weights its quantizer returns are not on the grid it declares "
                                             "(codes {}, declared {}; {:.3g} of a step off the nearest code)",
                                             who, range(lo, hi), range(g.qmin, g.qmax), off));
      std::string why;
      w.as_float = !weight_type(profile, g, layer->weight_bits(), w.type, why);
      if (w.as_float) inexact.push_back({name, why});
      e.quantized_weight = true;
    }
    if (layer->quantizable() && layer->activation_bits() != kFullPrecision) {
      auto q = quantizers_of(*layer).second;
      const QuantGrid g = q->grid(at::Tensor(), layer->activation_bits());
      if (!g.defined())
        throw std::runtime_error(who + ": its activation quantizer declares no integer grid (TensorQuantizer::grid), "
                                       "so the layer cannot be exported; the quantizer's plugin must implement grid()");
      check_grid(g, 1, who + " input");
      ActivationExport& a = e.activation;
      a.scale = g.scale.item<double>();
      a.zero_point = g.zero_point, a.qmin = g.qmin, a.qmax = g.qmax;
      std::string why;
      a.as_float = !activation_type(profile, g, layer->activation_bits(), a.type, why);
      if (a.as_float) inexact.push_back({name, why});
      e.quantized_activation = true;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace saq::host

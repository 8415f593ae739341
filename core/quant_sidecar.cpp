#include "quant_sidecar.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "export.hpp"
#include "json.hpp"

namespace saq::host {

namespace {

std::string numbers(const at::Tensor& t) {
  const at::Tensor d = t.to(at::kDouble).reshape({-1}).contiguous();
  std::string out = "[";
  for (std::int64_t i = 0; i < d.numel(); ++i) out += (i ? ", " : "") + fmt::format("{:.9g}", d[i].item<double>());
  return out + "]";
}

std::string dims(const std::vector<std::int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

std::string weight_json(const LayerExport& l) {
  JsonObject w;
  w.add("quantized", l.quantized_weight);
  if (!l.quantized_weight) return w.add("type", "float32").str();
  const WeightExport& q = l.weight;
  if (q.as_float) return w.add("type", "float32").add("as_float", true).str();
  w.add("type", onnx::dtype_name(q.type)).add("initializer", l.name + ".weight_codes");
  w.raw("scale", numbers(q.scale)).raw("axis", q.scale.numel() > 1 ? "0" : "null");
  w.add("zero_point", q.zero_point);
  w.add("code_min", q.codes.min().item<std::int64_t>()).add("code_max", q.codes.max().item<std::int64_t>());
  w.add("batch_norm_folded", l.batch_norm_folded);
  if (l.bias.defined()) w.raw("bias", numbers(l.bias));
  return w.str();
}

std::string input_json(const LayerExport& l) {
  JsonObject a;
  a.add("quantized", l.quantized_activation);
  if (!l.quantized_activation) return a.add("type", "float32").str();
  const ActivationExport& q = l.activation;
  a.add("type", q.as_float ? "float32" : onnx::dtype_name(q.type)).add("as_float", q.as_float);
  a.add("scale", q.scale).add("zero_point", q.zero_point).add("qmin", q.qmin).add("qmax", q.qmax);
  a.raw("clip", fmt::format("[{:.9g}, {:.9g}]", static_cast<double>(q.qmin - q.zero_point) * q.scale,
                            static_cast<double>(q.qmax - q.zero_point) * q.scale));
  return a.str();
}

}  // namespace

std::string quant_sidecar(const std::vector<LayerExport>& layers, const CostReport& costs, const onnx::Model& model,
                          const ExportOptions& options) {
  std::string rows;
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerExport& l = layers[i];
    JsonObject o;
    o.add("name", l.name).add("op", l.layer->is_conv() ? "Conv" : "Gemm");
    o.add("weight_bits", l.layer->weight_bits()).add("activation_bits", l.layer->activation_bits());
    for (const auto& c : costs.layers)
      if (c.name == l.name) o.add("kind", c.kind).add("macs", c.macs).add("bops", c.bops);
    o.raw("weight", weight_json(l)).raw("input", input_json(l));
    rows += (i ? ",\n    " : "\n    ") + o.str();
  }
  JsonObject top;
  top.add("format", 1).add("producer", "saqhost " + model.producer_version).add("source", options.source);
  top.add("quantizer", options.quantizer).add("profile", profile_name(options.profile)).add("opset", model.opset);
  const auto& in = model.graph.inputs.at(0);
  const auto& out = model.graph.outputs.at(0);
  top.raw("input", fmt::format("{{\"name\": \"{}\", \"shape\": {}}}", in.name, dims(in.dims)));
  top.raw("output", fmt::format("{{\"name\": \"{}\", \"shape\": {}}}", out.name, dims(out.dims)));
  top.add("bops", costs.bops).add("macs", costs.macs);
  top.raw("layers", "[" + rows + "\n  ]");
  return top.str() + "\n";
}

}  // namespace saq::host

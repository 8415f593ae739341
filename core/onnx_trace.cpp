#include "onnx_trace.hpp"

#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include <ATen/ATen.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/ir.h>

#include "quantize.hpp"

namespace saq::host {

namespace {

using torch::jit::Value;
using onnx::Attribute;

/// Stand-in weight quantizer: the constant the codes dequantize to, which the trace records as the op's weight.
class ExportWeight final : public TensorQuantizer {
 public:
  explicit ExportWeight(at::Tensor value) : value_(std::move(value)) {}
  at::Tensor forward(const at::Tensor&, int) override { return value_; }

 private:
  at::Tensor value_;
};

/// Stand-in activation quantizer: clamp + fake_quantize, and the order in which the layers ran.
class ExportActivation final : public TensorQuantizer {
 public:
  ExportActivation(const ActivationExport& a, size_t layer, std::vector<size_t>& order)
      : a_(a), layer_(layer), order_(order) {}
  at::Tensor forward(const at::Tensor& x, int) override {
    order_.push_back(layer_);
    const double lo = static_cast<double>(a_.qmin - a_.zero_point) * a_.scale;
    const double hi = static_cast<double>(a_.qmax - a_.zero_point) * a_.scale;
    return at::fake_quantize_per_tensor_affine(at::clamp(x, lo, hi), a_.scale, a_.zero_point, a_.qmin, a_.qmax);
  }

 private:
  ActivationExport a_;
  size_t layer_;
  std::vector<size_t>& order_;
};

/// A conv or Gemm already emitted, kept so that a following BatchNorm can be folded into it.
struct EmittedOp {
  size_t node = 0;           ///< index in the graph's nodes
  long layer = -1;           ///< index in `layers`, or −1
  at::Tensor float_weight;   ///< a float weight (unquantized layer), else undefined
  at::Tensor bias;           ///< may be undefined
  bool quantized_input = false;  ///< its input comes through QuantizeLinear → DequantizeLinear
  size_t weight_init = 0, scale_init = 0, zero_point_init = 0;  ///< initializer indices (quantized weights: all three)
};

class Converter {
 public:
  Converter(std::vector<LayerExport>& layers, const std::vector<size_t>& act_order, bool fold)
      : layers_(layers), act_order_(act_order), fold_(fold) {
    for (size_t i = 0; i < layers.size(); ++i) {
      layer_of_[layers[i].layer->weight.unsafeGetTensorImpl()] = i;
      if (!layers[i].quantized_weight) continue;
      dequantized_[i] = layers[i].weight.as_float ? layers[i].weight.values : dequantize(layers[i].weight);
      layer_of_[dequantized_[i].unsafeGetTensorImpl()] = i;
    }
  }
  at::Tensor dequantized(size_t i) const { return dequantized_.at(i); }
  onnx::Graph convert(torch::jit::Graph& graph);

 private:
  static at::Tensor dequantize(const WeightExport& w) {
    at::Tensor scale = w.scale.numel() > 1 ? w.scale.reshape({-1, 1, 1, 1}) : w.scale;
    if (w.codes.dim() == 2 && w.scale.numel() > 1) scale = w.scale.reshape({-1, 1});
    return (w.codes.to(at::kFloat) - static_cast<double>(w.zero_point)) * scale;
  }
  std::string fresh(const std::string& base) { return base + "_" + std::to_string(counter_++); }
  std::string name_of(Value* v);
  std::string constant(const std::string& name, const at::Tensor& t, onnx::DType type = onnx::DType::Float) {
    g_.initializers.push_back(onnx::initializer(name, t, type));
    return name;
  }
  size_t add(onnx::Node n) {
    g_.nodes.push_back(std::move(n));
    return g_.nodes.size() - 1;
  }
  /// The layer whose (stand-in) weight the traced op consumes, or −1.
  long layer_of(Value* weight) const;
  std::string weight_input(Value* v, long layer, EmittedOp& op, const std::string& scope);
  void conv(torch::jit::Node* n);
  void linear(torch::jit::Node* n);
  void batch_norm(torch::jit::Node* n);
  void fake_quantize(torch::jit::Node* n);
  bool fold(const EmittedOp& op, const at::Tensor& factor, const at::Tensor& shift);
  std::string scope_of(long layer, const std::string& fallback) const {
    return layer >= 0 ? layers_[static_cast<size_t>(layer)].name : fallback;
  }

  std::vector<LayerExport>& layers_;
  const std::vector<size_t>& act_order_;
  bool fold_;
  size_t act_next_ = 0;
  int counter_ = 0;
  onnx::Graph g_;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const c10::TensorImpl*, size_t> layer_of_;
  std::unordered_map<size_t, at::Tensor> dequantized_;
  std::unordered_map<const Value*, EmittedOp> emitted_;
};

c10::IValue constant_value(Value* v) {
  auto iv = torch::jit::toIValue(v);
  if (!iv) throw std::runtime_error("export: a non-constant argument (" + v->debugName() + ") where a constant is needed");
  return *iv;
}

/// A number argument, which the tracer records as int or float as the call gave it.
double number(Value* v) {
  const c10::IValue iv = constant_value(v);
  return iv.isInt() ? static_cast<double>(iv.toInt()) : iv.toDouble();
}

std::vector<std::int64_t> ints(Value* v) {
  if (v->node()->kind() == c10::prim::ListConstruct) {
    std::vector<std::int64_t> out;
    for (Value* x : v->node()->inputs()) out.push_back(constant_value(x).toInt());
    return out;
  }
  return constant_value(v).toIntVector();
}

/// A 2-d size argument: ATen accepts one value for both dims.
std::vector<std::int64_t> pair2(std::vector<std::int64_t> v) {
  if (v.size() == 1) v.push_back(v[0]);
  return v;
}

std::vector<std::int64_t> pads(const std::vector<std::int64_t>& given) {
  const auto p = pair2(given);
  return {p[0], p[1], p[0], p[1]};
}

}  // namespace

std::string Converter::name_of(Value* v) {
  auto it = names_.find(v);
  if (it != names_.end()) return it->second;
  if (v->node()->kind() == c10::prim::Constant && v->type()->kind() == c10::TypeKind::TensorType)
    return names_[v] = constant(fresh("const"), constant_value(v).toTensor());
  throw std::runtime_error("export: value " + v->debugName() + " (made by " + v->node()->kind().toQualString() +
                           ") has no ONNX counterpart");
}

long Converter::layer_of(Value* weight) const {
  auto it = layer_of_.find(constant_value(weight).toTensor().unsafeGetTensorImpl());
  return it == layer_of_.end() ? -1 : static_cast<long>(it->second);
}

std::string Converter::weight_input(Value* v, long layer, EmittedOp& op, const std::string& scope) {
  const at::Tensor w = constant_value(v).toTensor();
  op.layer = layer;
  op.quantized_input = layer >= 0 && layers_[static_cast<size_t>(layer)].quantized_activation &&
                       !layers_[static_cast<size_t>(layer)].activation.as_float;
  if (layer < 0 || !layers_[static_cast<size_t>(layer)].quantized_weight || layers_[static_cast<size_t>(layer)].weight.as_float) {
    op.float_weight = w;
    op.weight_init = g_.initializers.size();
    return constant(scope + ".weight", w);
  }
  const WeightExport& q = layers_[static_cast<size_t>(layer)].weight;
  op.weight_init = g_.initializers.size();
  const std::string codes = constant(scope + ".weight_codes", q.codes, q.type);
  op.scale_init = g_.initializers.size();
  const std::string scale = constant(scope + ".weight_scale", q.scale.numel() > 1 ? q.scale : q.scale.reshape({}));
  op.zero_point_init = g_.initializers.size();  // per axis, ONNX Runtime wants one zero point per channel
  const std::string zp = constant(scope + ".weight_zero_point",
                                  q.scale.numel() > 1 ? at::full({q.scale.numel()}, q.zero_point, at::kLong)
                                                      : at::full({}, q.zero_point, at::kLong), q.type);
  onnx::Node dq{"DequantizeLinear", scope + "/weight_dequantize", {codes, scale, zp}, {scope + ".weight_dq"}, {}};
  if (q.scale.numel() > 1) dq.attributes.push_back(Attribute::integer("axis", 0));
  add(dq);
  return scope + ".weight_dq";
}

void Converter::conv(torch::jit::Node* n) {
  const bool full = n->kind() == c10::aten::_convolution;
  if (full && constant_value(n->input(6)).toBool()) throw std::runtime_error("export: transposed convolutions are not supported");
  const long layer = layer_of(n->input(1));
  const std::string scope = scope_of(layer, fresh("conv"));
  EmittedOp op;
  const std::string w = weight_input(n->input(1), layer, op, scope);
  const at::Tensor weight = constant_value(n->input(1)).toTensor();
  onnx::Node node{"Conv", scope + "/Conv", {name_of(n->input(0)), w}, {scope + ".out"}, {}};
  auto b = torch::jit::toIValue(n->input(2));
  if (b && b->isTensor()) {
    op.bias = b->toTensor();
    node.inputs.push_back(constant(scope + ".bias", op.bias));
  }
  const std::int64_t groups = constant_value(n->input(full ? 8 : 6)).toInt();
  node.attributes = {Attribute::list("kernel_shape", {weight.size(2), weight.size(3)}),
                     Attribute::list("strides", pair2(ints(n->input(3)))), Attribute::list("pads", pads(ints(n->input(4)))),
                     Attribute::list("dilations", pair2(ints(n->input(5)))), Attribute::integer("group", groups)};
  op.node = add(node);
  names_[n->output()] = scope + ".out";
  emitted_[n->output()] = op;
}

void Converter::linear(torch::jit::Node* n) {
  const long layer = layer_of(n->input(1));
  const std::string scope = scope_of(layer, fresh("linear"));
  EmittedOp op;
  const std::string w = weight_input(n->input(1), layer, op, scope);
  onnx::Node node{"Gemm", scope + "/Gemm", {name_of(n->input(0)), w}, {scope + ".out"}, {Attribute::integer("transB", 1)}};
  auto b = torch::jit::toIValue(n->input(2));
  if (b && b->isTensor()) node.inputs.push_back(constant(scope + ".bias", b->toTensor()));
  add(node);
  names_[n->output()] = scope + ".out";
}

bool Converter::fold(const EmittedOp& op, const at::Tensor& factor, const at::Tensor& shift) {
  onnx::Node& conv = g_.nodes[op.node];
  const std::string scope = conv.name.substr(0, conv.name.size() - 5);  // "<scope>/Conv"
  at::Tensor bias = op.bias.defined() ? op.bias.to(at::kDouble) : at::zeros_like(factor);
  if (op.float_weight.defined()) {
    at::Tensor w = op.float_weight.to(at::kDouble) * factor.reshape({-1, 1, 1, 1});
    g_.initializers[op.weight_init] = onnx::initializer(g_.initializers[op.weight_init].name, w, onnx::DType::Float);
  } else {
    LayerExport& l = layers_[static_cast<size_t>(op.layer)];
    const at::Tensor sign = at::where(factor < 0, -1.0, 1.0);
    at::Tensor codes = l.weight.codes * sign.reshape({-1, 1, 1, 1}).to(at::kLong);
    const std::int64_t lo = l.weight.type == onnx::DType::Int8 ? -128 : l.weight.type == onnx::DType::Uint8 ? 0 : INT32_MIN;
    const std::int64_t hi = l.weight.type == onnx::DType::Int8 ? 127 : l.weight.type == onnx::DType::Uint8 ? 255 : INT32_MAX;
    if (l.weight.zero_point != 0 || codes.min().item<std::int64_t>() < lo || codes.max().item<std::int64_t>() > hi) return false;
    at::Tensor scale = (l.weight.scale.to(at::kDouble).expand({factor.size(0)}) * factor.abs()).to(at::kFloat);
    g_.initializers[op.weight_init] = onnx::initializer(g_.initializers[op.weight_init].name, codes, l.weight.type);
    g_.initializers[op.scale_init] = onnx::initializer(g_.initializers[op.scale_init].name, scale, onnx::DType::Float);
    g_.initializers[op.zero_point_init] = onnx::initializer(g_.initializers[op.zero_point_init].name,
                                                            at::zeros({factor.size(0)}, at::kLong), l.weight.type);
    l.weight.codes = codes, l.weight.scale = scale;
    for (auto& node : g_.nodes)
      if (node.name == scope + "/weight_dequantize" && node.attributes.empty()) node.attributes.push_back(Attribute::integer("axis", 0));
  }
  bias = bias * factor + shift;
  if (op.layer >= 0) layers_[static_cast<size_t>(op.layer)].batch_norm_folded = true,
                     layers_[static_cast<size_t>(op.layer)].bias = bias.to(at::kFloat);
  if (op.bias.defined()) {
    for (auto& init : g_.initializers)
      if (init.name == scope + ".bias") init = onnx::initializer(init.name, bias, onnx::DType::Float);
  } else {
    conv.inputs.push_back(constant(scope + ".bias", bias));
  }
  return true;
}

void Converter::batch_norm(torch::jit::Node* n) {
  const at::Tensor gamma = constant_value(n->input(1)).toTensor().to(at::kDouble);
  const at::Tensor beta = constant_value(n->input(2)).toTensor().to(at::kDouble);
  const at::Tensor mean = constant_value(n->input(3)).toTensor().to(at::kDouble);
  const at::Tensor var = constant_value(n->input(4)).toTensor().to(at::kDouble);
  const double eps = number(n->input(7));
  Value* in = n->input(0);
  auto producer = emitted_.find(in);
  if (fold_ && producer != emitted_.end() && in->uses().size() == 1 && !producer->second.quantized_input) {
    const at::Tensor factor = gamma / at::sqrt(var + eps);
    if (fold(producer->second, factor, beta - mean * factor)) {
      names_[n->output()] = name_of(in);
      return;
    }
  }
  const std::string scope = fresh("batch_norm");
  const std::vector<std::string> inputs = {name_of(in), constant(scope + ".weight", gamma), constant(scope + ".bias", beta),
                                           constant(scope + ".running_mean", mean), constant(scope + ".running_var", var)};
  add({"BatchNormalization", scope, inputs, {scope + ".out"}, {Attribute::real("epsilon", static_cast<float>(eps))}});
  names_[n->output()] = scope + ".out";
}

void Converter::fake_quantize(torch::jit::Node* n) {
  if (act_next_ >= act_order_.size()) throw std::runtime_error("export: a fake_quantize the export did not insert");
  const LayerExport& l = layers_[act_order_[act_next_++]];
  const ActivationExport& a = l.activation;
  const std::string x = name_of(n->input(0)), scope = l.name;
  const std::string scale = constant(scope + ".input_scale", at::full({}, a.scale, at::kFloat));
  if (a.as_float) {  // the same grid in float: (round(x/s) + zp − zp)·s, the clip already applied
    add({"Div", scope + "/input_div", {x, scale}, {scope + ".input_div"}, {}});
    add({"Round", scope + "/input_round", {scope + ".input_div"}, {scope + ".input_codes"}, {}});
    add({"Mul", scope + "/input_mul", {scope + ".input_codes", scale}, {scope + ".input_dq"}, {}});
  } else {
    const std::string zp = constant(scope + ".input_zero_point", at::full({}, a.zero_point, at::kLong), a.type);
    add({"QuantizeLinear", scope + "/input_quantize", {x, scale, zp}, {scope + ".input_codes"}, {}});
    add({"DequantizeLinear", scope + "/input_dequantize", {scope + ".input_codes", scale, zp}, {scope + ".input_dq"}, {}});
  }
  names_[n->output()] = scope + ".input_dq";
}

onnx::Graph Converter::convert(torch::jit::Graph& graph) {
  names_[graph.inputs()[0]] = "input";
  for (torch::jit::Node* n : graph.nodes()) {
    const std::string kind = n->kind().toQualString();
    auto simple = [&](const std::string& op, std::vector<std::string> inputs, std::vector<Attribute> attrs = {}) {
      const std::string out = fresh(op);
      add({op, out, std::move(inputs), {out}, std::move(attrs)});
      names_[n->output()] = out;
    };
    auto scalar = [&](size_t i) { return constant(fresh("const"), at::full({}, number(n->input(i)), at::kFloat)); };
    if (kind == "prim::Constant" || kind == "prim::ListConstruct") continue;  // read by the ops that use them
    if (kind == "aten::_convolution" || kind == "aten::conv2d") conv(n);
    else if (kind == "aten::linear") linear(n);
    else if (kind == "aten::batch_norm") batch_norm(n);
    else if (kind == "aten::fake_quantize_per_tensor_affine") fake_quantize(n);
    else if (kind == "aten::relu") simple("Relu", {name_of(n->input(0))});
    else if (kind == "aten::relu6") simple("Clip", {name_of(n->input(0)), constant(fresh("const"), at::full({}, 0.0)), constant(fresh("const"), at::full({}, 6.0))});
    else if (kind == "aten::hardtanh" || kind == "aten::clamp") {
      auto lo = torch::jit::toIValue(n->input(1)), hi = torch::jit::toIValue(n->input(2));
      std::vector<std::string> in = {name_of(n->input(0)), lo && !lo->isNone() ? scalar(1) : "", hi && !hi->isNone() ? scalar(2) : ""};
      while (in.back().empty()) in.pop_back();
      simple("Clip", in);
    } else if (kind == "aten::add") {
      if (number(n->input(2)) != 1.0) throw std::runtime_error("export: aten::add with alpha ≠ 1");
      simple("Add", {name_of(n->input(0)), name_of(n->input(1))});
    } else if (kind == "aten::max_pool2d") {
      std::vector<std::int64_t> k = pair2(ints(n->input(1))), s = pair2(ints(n->input(2))), d = pair2(ints(n->input(4)));
      if (s.empty()) s = k;
      if (constant_value(n->input(5)).toBool() || d != std::vector<std::int64_t>{1, 1})
        throw std::runtime_error("export: max_pool2d with ceil_mode or dilation is not supported");
      simple("MaxPool", {name_of(n->input(0))}, {Attribute::list("kernel_shape", k), Attribute::list("strides", s),
                                                 Attribute::list("pads", pads(ints(n->input(3))))});
    } else if (kind == "aten::mean") {
      simple("ReduceMean", {name_of(n->input(0))}, {Attribute::list("axes", ints(n->input(1))),
                                                    Attribute::integer("keepdims", constant_value(n->input(2)).toBool())});
    } else if (kind == "aten::flatten") {
      if (constant_value(n->input(2)).toInt() != -1) throw std::runtime_error("export: flatten must run to the last dim");
      simple("Flatten", {name_of(n->input(0))}, {Attribute::integer("axis", constant_value(n->input(1)).toInt())});
    } else if (kind == "aten::dropout" || kind == "aten::contiguous") {
      names_[n->output()] = name_of(n->input(0));  // eval: the identity
    } else {
      throw std::runtime_error("export: the model runs " + kind + ", which saqhost export does not convert to ONNX");
    }
  }
  if (act_next_ != act_order_.size()) throw std::runtime_error("export: an activation quantizer was not traced");
  // the graph's output is called "logits"
  const std::string out = name_of(graph.outputs()[0]);
  for (auto& node : g_.nodes) {
    for (auto& o : node.outputs) if (o == out) o = "logits";
    for (auto& i : node.inputs) if (i == out) i = "logits";
  }
  return std::move(g_);
}

onnx::Graph trace_to_onnx(Model& model, std::vector<LayerExport>& layers, const TraceOptions& options) {
  model.eval();
  at::NoGradGuard no_grad;
  std::vector<size_t> order;
  Converter converter(layers, order, options.fold_batch_norm);
  std::vector<std::pair<std::shared_ptr<TensorQuantizer>, std::shared_ptr<TensorQuantizer>>> saved;
  std::vector<bool> requires_grad;
  for (auto& p : model.parameters()) requires_grad.push_back(p.requires_grad()), p.requires_grad_(false);
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerExport& l = layers[i];
    if (!l.layer->quantizable()) {
      saved.emplace_back();
      continue;
    }
    auto [w, a] = quantizers_of(*l.layer);  // the layer's own, where that side stays float
    if (l.quantized_weight) w = std::make_shared<ExportWeight>(converter.dequantized(i));
    if (l.quantized_activation) a = std::make_shared<ExportActivation>(l.activation, i, order);
    saved.push_back(l.layer->replace_quantizers(w, a));
  }
  struct Restore {  // the model leaves as it came, whatever the trace throws
    Model& m;
    std::vector<LayerExport>& layers;
    decltype(saved)& q;
    std::vector<bool>& rg;
    ~Restore() {
      for (size_t i = 0; i < layers.size(); ++i)
        if (q[i].first) layers[i].layer->replace_quantizers(q[i].first, q[i].second);
      size_t k = 0;
      for (auto& p : m.parameters()) p.requires_grad_(rg[k++]);
    }
  } restore{model, layers, saved, requires_grad};

  std::vector<std::int64_t> shape = {1};
  shape.insert(shape.end(), options.input_shape.begin(), options.input_shape.end());
  at::Tensor sample = at::zeros(shape, model.parameters().front().options());
  auto traced = torch::jit::tracer::trace(
      {sample}, [&](torch::jit::Stack in) -> torch::jit::Stack { return {model.forward(in[0].toTensor())}; },
      [](const at::Tensor&) { return std::string(); }, /*strict=*/false);
  const at::Tensor out = traced.second[0].toTensor();
  onnx::Graph g = converter.convert(*traced.first->graph);
  g.name = "saq";
  std::vector<std::int64_t> in_dims = {-1}, out_dims = {-1};
  in_dims.insert(in_dims.end(), options.input_shape.begin(), options.input_shape.end());
  out_dims.push_back(out.size(1));
  g.inputs.push_back({"input", onnx::DType::Float, in_dims});
  g.outputs.push_back({"logits", onnx::DType::Float, out_dims});
  return g;
}

}  // namespace saq::host

#include "quantize.hpp"

#include <fnmatch.h>

#include <fmt/format.h>

#include "errors.hpp"

namespace saq::host {

Schema quantizer_host_schema() {
  Schema s;
  s.integer("weight_bits", 4, "weight bits of every layer the policy or a rule does not set (2..8, 32 = none)");
  s.integer("activation_bits", 4, "input-activation bits of every layer not set otherwise (2..8, 32 = none)");
  s.integer("first_weight_bits", 8, "the first layer's weight bits (the paper: 8)");
  s.integer("first_activation_bits", 32, "the first layer's input bits (the paper: 32, the image is not quantized)");
  s.integer("last_weight_bits", 8, "the last layer's weight bits (the paper: 8)");
  s.integer("last_activation_bits", 8, "the last layer's input bits (the paper: 8)");
  Schema rule;
  rule.string("match", "", "glob on layer names, e.g. \"layer3.*\"").required();
  rule.integer("weight_bits", 4, "weight bits of the matching layers").optional();
  rule.integer("activation_bits", 4, "input bits of the matching layers").optional();
  s.tables("rule", rule, "per-layer rules ([[quantizer.rule]]), applied in order after the first/last policy");
  return s;
}

namespace {
int bits_of(const Params& p, const std::string& key) {
  auto v = p.get<std::int64_t>(key);
  if (!valid_bits(v)) p.fail(key, "must be 2..8, or 32 for full precision, got " + std::to_string(v));
  return static_cast<int>(v);
}
}  // namespace

void check_bits(const Params& q) {
  for (const char* key : {"weight_bits", "activation_bits", "first_weight_bits", "first_activation_bits",
                          "last_weight_bits", "last_activation_bits"})
    bits_of(q, key);
  for (const auto& rule : q.tables("rule"))
    for (const char* key : {"weight_bits", "activation_bits"})
      if (rule->has(key)) bits_of(*rule, key);
}

std::vector<LayerBits> resolve_bits(Model& model, const Params& q, std::vector<std::string>& warnings) {
  auto layers = quant_layers(model);
  std::vector<LayerBits> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerBits b{layers[i].first, bits_of(q, "weight_bits"), bits_of(q, "activation_bits"), "default"};
    if (i == 0) b = {b.name, bits_of(q, "first_weight_bits"), bits_of(q, "first_activation_bits"), "first layer"};
    else if (i + 1 == layers.size())
      b = {b.name, bits_of(q, "last_weight_bits"), bits_of(q, "last_activation_bits"), "last layer"};
    out.push_back(b);
  }
  for (const auto& rule : q.tables("rule")) {
    const std::string match = rule->get<std::string>("match");
    bool hit = false;
    for (auto& b : out) {
      if (::fnmatch(match.c_str(), b.name.c_str(), 0) != 0) continue;
      hit = true;
      if (rule->has("weight_bits")) b.weight_bits = bits_of(*rule, "weight_bits");
      if (rule->has("activation_bits")) b.activation_bits = bits_of(*rule, "activation_bits");
      b.source = rule->section() + " \"" + match + "\"";
    }
    if (!hit) warnings.push_back(rule->section() + " \"" + match + "\" matches no layer");
  }
  return out;
}

void attach_quantizers(Model& model, const Quantizer& quantizer) {
  auto layers = quant_layers(model);
  for (size_t i = 0; i < layers.size(); ++i) {
    auto& layer = *layers[i].second;
    if (layer.quantizable()) continue;
    QuantLayerInfo info{layers[i].first, layer.is_conv(), layer.weight.sizes().vec(), layer.groups(), i == 0,
                        i + 1 == layers.size()};
    auto wq = quantizer.weight_quantizer(info);
    auto aq = quantizer.activation_quantizer(info);
    wq->to(layer.weight.device());
    aq->to(layer.weight.device());
    layer.attach(wq, aq);
  }
}

void apply_bits(Model& model, const std::vector<LayerBits>& bits, bool full_precision) {
  auto layers = quant_layers(model);
  for (size_t i = 0; i < layers.size() && i < bits.size(); ++i) {
    if (full_precision) {
      if (layers[i].second->quantizable()) layers[i].second->set_bits(kFullPrecision, kFullPrecision);
    } else {
      layers[i].second->set_bits(bits[i].weight_bits, bits[i].activation_bits);
    }
  }
}

std::string bits_table(const std::vector<LayerBits>& bits) {
  std::string out = fmt::format("{:<32} {:>6} {:>6}  {}\n", "layer", "W", "A", "set by");
  for (const auto& b : bits)
    out += fmt::format("{:<32} {:>6} {:>6}  {}\n", b.name, b.weight_bits, b.activation_bits, b.source);
  return out;
}

}  // namespace saq::host

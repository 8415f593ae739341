#include "bops.hpp"

#include <algorithm>
#include <stdexcept>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <saq/layers.hpp>

#include "json.hpp"

namespace saq::host {

namespace {
std::string shape_text(const at::Tensor& w) {
  std::string out;
  for (auto d : w.sizes()) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}
}  // namespace

CostReport measure_costs(Model& model, const DataInfo& info, const std::vector<LayerBits>* bits) {
  const bool was_training = model.is_training();
  model.eval();
  {
    at::NoGradGuard no_grad;
    std::vector<std::int64_t> shape{1};
    shape.insert(shape.end(), info.input_shape.begin(), info.input_shape.end());
    model.forward(at::zeros(shape, model.parameters().front().options()));
  }
  model.train(was_training);

  CostReport r;
  auto layers = quant_layers(model);
  if (bits && bits->size() != layers.size())
    throw std::logic_error("measure_costs: " + std::to_string(bits->size()) + " bit entries for " +
                           std::to_string(layers.size()) + " layers");
  for (size_t i = 0; i < layers.size(); ++i) {
    const QuantLayer& l = *layers[i].second;
    LayerCost c;
    c.name = layers[i].first;
    const std::int64_t in_channels = l.is_conv() ? l.weight.size(1) * l.groups() : l.weight.size(1);
    c.kind = !l.is_conv() ? "linear" : l.groups() == 1 ? "conv" : l.groups() == in_channels ? "dwconv" : "gconv";
    c.shape = shape_text(l.weight);
    c.weight_bits = bits ? (*bits)[i].weight_bits : l.weight_bits();
    c.activation_bits = bits ? (*bits)[i].activation_bits : l.activation_bits();
    c.source = bits ? (*bits)[i].source : l.bits_from().empty() ? "" : "tied to " + l.bits_from();
    // The paper's rule: a quantized first layer is counted with 8-bit input.
    c.counted_activation_bits = i == 0 && c.weight_bits != 32 && c.activation_bits == 32 ? 8 : c.activation_bits;
    c.macs = l.macs_per_sample();
    c.bops = static_cast<double>(c.macs) * c.weight_bits * c.counted_activation_bits;
    c.weight_bits_total = static_cast<double>(l.weight.numel()) * c.weight_bits;
    std::int64_t input = 1;
    for (auto d : l.last_input_shape()) input *= d;
    c.activation_bits_total = static_cast<double>(input) * c.counted_activation_bits;
    r.bops += c.bops;
    r.macs += static_cast<double>(c.macs);
    r.weight_bits += c.weight_bits_total;
    r.activation_bits += c.activation_bits_total;
    r.max_activation_bits = std::max(r.max_activation_bits, c.activation_bits_total);
    r.layers.push_back(c);
  }
  return r;
}

std::string cost_markdown(const CostReport& r, const std::string& title, const std::string& lead) {
  auto kb = [](double bits) { return bits / 8.0 / 1e3; };
  std::string out = "# " + title + "\n\n" + (lead.empty() ? "" : lead + "\n");
  out += "| layer | kind | weight shape | W bits | A bits | MACs | MBOPs | weights KB | activations KB "
         "| bits set by |\n";
  out += "|---|---|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& c : r.layers) {
    std::string a = c.counted_activation_bits == c.activation_bits
                        ? std::to_string(c.activation_bits)
                        : fmt::format("{} (counted {})", c.activation_bits, c.counted_activation_bits);
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {} |\n", c.name, c.kind, c.shape,
                       c.weight_bits, a, c.macs, c.bops / 1e6, kb(c.weight_bits_total), kb(c.activation_bits_total),
                       c.source);
  }
  out += fmt::format(
      "\n**Total: {:.1f} MBOPs ({:.3f} GBOPs)**, {:.2f} M MACs. Weights {:.1f} KB, activations {:.1f} KB, "
      "total {:.1f} KB; weights + largest single activation {:.1f} KB.\n",
      r.bops / 1e6, r.bops / 1e9, r.macs / 1e6, kb(r.weight_bits), kb(r.activation_bits),
      kb(r.weight_bits + r.activation_bits), kb(r.weight_bits + r.max_activation_bits));
  out += "\nBOPs = MACs × weight bits × activation bits, at each layer's declared bits: a quantizer that uses fewer "
         "levels than its bits allow (ternary weights at 2 bits) is counted at the bits it declares.\n";
  return out;
}

std::string cost_json(const CostReport& r) {
  std::string bits = "{";
  for (const auto& c : r.layers)
    bits += (bits.size() > 1 ? ", " : "") + JsonObject::quote(c.name) + ": [" + std::to_string(c.weight_bits) + ", " +
            std::to_string(c.activation_bits) + "]";
  bits += "}";
  return JsonObject()
      .add("mbops", r.bops / 1e6)
      .add("gbops", r.bops / 1e9)
      .add("weights_kb", r.weight_bits / 8e3)
      .add("activations_kb", r.activation_bits / 8e3)
      .raw("layer_bits", bits)
      .str();
}

}  // namespace saq::host

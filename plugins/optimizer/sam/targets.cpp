#include "targets.hpp"

namespace saq::plugins {

TargetFinder::TargetFinder(torch::nn::Module& model, const TargetFlags& flags) : quantized_(flags.quantized) {
  layers_ = quant_layers(model);
  for (const auto& [name, layer] : layers_) {
    if (!layer->perturbed()) continue;
    if (!flags.quantized) params_.push_back({name + ".weight", layer->weight, nullptr, true});
    if (flags.bias && layer->bias.defined()) params_.push_back({name + ".bias", layer->bias, nullptr, false});
    for (const auto& child : layer->named_children()) {
      const bool weight_q = child.key() == "weight_quantizer";
      if ((weight_q && !flags.weight_clip) || (!weight_q && !flags.activation_clip)) continue;
      for (const auto& p : child.value()->named_parameters())
        params_.push_back({name + "." + child.key() + "." + p.key(), p.value(), nullptr, true});
    }
  }
  for (const auto& item : model.named_modules("", false)) {
    auto bn = std::dynamic_pointer_cast<BatchNorm2dLayer>(item.value());
    if (!bn) continue;
    norms_.push_back(bn);
    if (!flags.batch_norm) continue;
    params_.push_back({item.key() + ".weight", bn->weight, nullptr, true});
    params_.push_back({item.key() + ".bias", bn->bias, nullptr, false});
  }
}

std::vector<Target> TargetFinder::collect() const {
  std::vector<Target> out;
  if (quantized_)
    for (const auto& [name, layer] : layers_)
      if (layer->perturbed() && layer->quantized_weight().defined() && layer->quantized_weight().requires_grad())
        out.push_back({name + ".quantized_weight", layer->quantized_weight(), layer, true});
  for (const auto& t : params_)
    if (t.value.requires_grad()) out.push_back(t);
  return out;
}

std::vector<std::shared_ptr<QuantLayer>> TargetFinder::perturbed_layers() const {
  std::vector<std::shared_ptr<QuantLayer>> out;
  if (quantized_)
    for (const auto& [name, layer] : layers_)
      if (layer->perturbed()) out.push_back(layer);
  return out;
}

}  // namespace saq::plugins

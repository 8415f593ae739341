#include "supernet.hpp"

#include <algorithm>
#include <set>

#include <ATen/ATen.h>
#include <saq/supernet.hpp>

#include "quantize.hpp"

namespace saq::host {

SupernetScope::SupernetScope(Model& model, const Quantizer& quantizer, const DataInfo& info,
                             std::vector<size_t> searched, std::vector<int> choices)
    : model_(model), quantizer_(quantizer), info_(info), searched_(std::move(searched)), choices_(std::move(choices)) {}

void SupernetScope::build(const SupernetOptions& o) {
  restore();
  auto layers = quant_layers(model_);
  const std::vector<size_t> tie = tie_sources(model_);
  const std::set<size_t> searched(searched_.begin(), searched_.end());
  std::set<std::string> switching;  // searched layers and the layers tied to them: their bits vary
  for (size_t i = 0; i < layers.size(); ++i)
    if (searched.count(tie[i])) switching.insert(layers[i].first);

  // Norm producers are traced first: the trace runs at the model's current bits, which per-bit quantizers
  // would refuse when they are not among the choices.
  if (o.switchable_norms) {
    std::vector<std::int64_t> shape{1};
    shape.insert(shape.end(), info_.input_shape.begin(), info_.input_shape.end());
    const auto producers =
        norm_producers(model_, at::zeros(shape, model_.parameters().front().options().requires_grad(false)));
    for (const auto& item : model_.named_modules("", false)) {
      auto bn = std::dynamic_pointer_cast<BatchNorm2dLayer>(item.value());
      auto found = producers.find(item.key());
      if (!bn || found == producers.end() || !switching.count(found->second)) continue;
      auto producer = std::find_if(layers.begin(), layers.end(), [&](const auto& l) { return l.first == found->second; });
      bn->make_switchable(producer->second, choices_, o.same_bits);
      switched_.push_back(bn);
    }
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    auto& [name, layer] = layers[i];
    if (!switching.count(name)) continue;
    if (!o.perturb_searched) {
      layer->set_perturbed(false);
      exempted_.push_back(layer);
    }
    if (!o.per_bit_clips) continue;
    const QuantLayerInfo qi{name, layer->is_conv(), layer->weight.sizes().vec(), layer->groups(), i == 0,
                            i + 1 == layers.size()};
    const c10::Device device = layer->weight.device();
    auto w = layer->named_children()["weight_quantizer"], a = layer->named_children()["activation_quantizer"];
    auto wq = std::make_shared<SwitchableQuantizer>(choices_, [&] {
      auto q = quantizer_.weight_quantizer(qi);
      q->to(device);
      copy_matching_state(*w, *q);
      return q;
    });
    auto aq = std::make_shared<SwitchableQuantizer>(choices_, [&] {
      auto q = quantizer_.activation_quantizer(qi);
      q->to(device);
      copy_matching_state(*a, *q);
      return q;
    });
    replaced_.push_back({layer, layer->replace_quantizers(wq, aq)});
  }
}

void SupernetScope::restore() noexcept {
  for (auto& [layer, pair] : replaced_) layer->replace_quantizers(pair.first, pair.second);
  for (auto& layer : exempted_) layer->set_perturbed(true);
  for (auto& bn : switched_) bn->drop_switchable();
  replaced_.clear(), exempted_.clear(), switched_.clear();
}

}  // namespace saq::host

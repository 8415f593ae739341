#pragma once
/// Pieces of a switchable-bit supernet, the weight-shared network a bit search trains: a fake quantizer that
/// keeps one quantizer (one set of clip values) per bit-width, and a trace that finds which layer produces each
/// BatchNorm's input (the layer whose bits pick the norm's switchable copy, BatchNorm2dLayer::make_switchable).
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <saq/layers.hpp>
#include <saq/model.hpp>

namespace saq {

/// One inner quantizer per bit choice, registered as "bits<b>"; forward(x, b) runs the one for b, so each
/// bit-width learns its own clip values while the latent weight stays shared.
class SAQ_VISIBLE SwitchableQuantizer : public TensorQuantizer {
 public:
  /// `make` builds one fresh inner quantizer; it is called once per choice.
  SwitchableQuantizer(const std::vector<int>& choices, const std::function<std::shared_ptr<TensorQuantizer>()>& make);
  /// Throws std::invalid_argument for a bit-width that is not a choice.
  at::Tensor forward(const at::Tensor& x, int bits) override;
  TensorQuantizer& inner(int bits) const;
  const std::vector<int>& choices() const { return choices_; }

 private:
  std::vector<int> choices_;
  std::vector<std::shared_ptr<TensorQuantizer>> inner_;
};

/// Copies `from`'s parameters and buffers into `to` where names and shapes agree (a quantizer's trained clip
/// values and its "initialised" flag into a fresh one of the same plugin); returns how many tensors were copied.
SAQ_VISIBLE std::size_t copy_matching_state(const torch::nn::Module& from, torch::nn::Module& to);

/// For each BatchNorm2dLayer of `model` (by full name), the quantizable layer (by full name) whose forward ran
/// last before the norm's on one forward pass of `probe`: the layer that produced the norm's input (through
/// activations, pooling or a residual sum). Norms that run before any quantizable layer are absent. The pass
/// runs in eval mode without gradients, so no statistic changes.
SAQ_VISIBLE std::map<std::string, std::string> norm_producers(Model& model, const at::Tensor& probe);

}  // namespace saq

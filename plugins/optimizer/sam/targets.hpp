#pragma once
// What a sharpness-aware step perturbs, found on the model: quantized weights (SAQ) or latent weights (SAM),
// and, by flag, clip values, biases and BatchNorm γ/β.
#include <memory>
#include <string>
#include <vector>

#include <saq/sdk.hpp>

namespace saq::plugins {

struct TargetFlags {
  bool quantized = true;  ///< perturb Q(w) after the quantizer (SAQ), else the latent weight w
  bool weight_clip = false, activation_clip = true, bias = true, batch_norm = true;
};

/// One perturbed tensor. `layer` set: ε is the layer's additive perturbation of its quantized weight and `value`
/// is that weight as the last forward consumed it. Otherwise `value` is a parameter, perturbed in place.
struct Target {
  std::string name;
  at::Tensor value;
  std::shared_ptr<QuantLayer> layer;
  bool adaptive = false;  ///< ASAM scales it by |value| + η (weights, clips, BN γ); biases and BN β are not
};

class TargetFinder {
 public:
  TargetFinder(torch::nn::Module& model, const TargetFlags& flags);
  /// The targets as they stand after a forward pass (quantized weights change with every forward).
  std::vector<Target> collect() const;
  /// What is perturbed before any forward has run: in SAQ mode the layers whose quantized weight gets ε (their
  /// latent weight is `weight`), and the parameter targets (latent weights in latent mode, clips, biases, BN).
  std::vector<std::shared_ptr<QuantLayer>> perturbed_layers() const;
  const std::vector<Target>& parameter_targets() const { return params_; }
  bool quantized() const { return quantized_; }
  /// BatchNorm layers, whose running statistics the second pass may leave alone.
  const std::vector<std::shared_ptr<BatchNorm2dLayer>>& norms() const { return norms_; }

 private:
  std::vector<std::pair<std::string, std::shared_ptr<QuantLayer>>> layers_;
  std::vector<Target> params_;  ///< the parameter targets, fixed at construction
  std::vector<std::shared_ptr<BatchNorm2dLayer>> norms_;
  bool quantized_;
};

}  // namespace saq::plugins

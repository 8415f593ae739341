#pragma once
/// A trained model's loss on fixed batches as a function of a perturbation of its quantizable layers' weights, the
/// two ways sharpness-aware quantization can perturb them:
///   quantized: ε added to each layer's quantized weight, y = op(Qa(x), Qw(w) + ε) (SAQ's perturbation; a
///              full-precision layer's weight is its quantized weight);
///   latent:    δ added to the latent weight, y = op(Qa(x), Qw(w + δ)) (re-quantized: the paper's other case).
/// The model runs in eval mode (BatchNorm statistics and quantizer clips fixed); nothing it holds changes.
#include <cstdint>
#include <string>
#include <vector>

#include <saq/dataset.hpp>
#include <saq/layers.hpp>
#include <saq/model.hpp>

#include "curvature.hpp"

namespace saq::host {

enum class PerturbTarget { Quantized, Latent };
const char* target_name(PerturbTarget t);

class LossProbe {
 public:
  LossProbe(Model& model, std::vector<Batch> batches, PerturbTarget target);
  PerturbTarget target() const { return target_; }
  std::size_t batches() const { return batches_.size(); }
  std::int64_t samples() const { return samples_; }
  /// The latent weights of the quantizable layers, in order (what a perturbation is shaped like).
  const std::vector<at::Tensor>& weights() const { return weights_; }
  const std::vector<std::string>& names() const { return names_; }
  std::vector<at::Tensor> zeros() const;

  /// Mean cross-entropy at `delta` over every batch, or over batch `batch` alone.
  double loss(const std::vector<at::Tensor>& delta, long batch = -1) const;
  /// ∂loss/∂delta at `delta` (straight-through through the quantizers), over every batch or one.
  std::vector<at::Tensor> gradient(const std::vector<at::Tensor>& delta, long batch = -1) const;
  /// The loss as a sum over batches of leaves at delta = 0, for the curvature (curvature.hpp). The model must be
  /// in float64 then, so that the quantizers run their differentiable reference compositions (double backward).
  Objective objective() const;
  /// Elements of the quantized weights Qw(w + delta) that differ from Qw(w), over all layers (latent target).
  std::int64_t level_changes(const std::vector<at::Tensor>& delta) const;
  std::int64_t weight_count() const;

 private:
  at::Tensor batch_loss(std::size_t b) const;  // with the graph, at whatever is applied
  Model& model_;
  std::vector<Batch> batches_;
  PerturbTarget target_;
  std::vector<std::shared_ptr<QuantLayer>> layers_;
  std::vector<at::Tensor> weights_;
  std::vector<std::string> names_;
  std::int64_t samples_ = 0;
};

/// Runs the model in float64 while it lives (the reference quantizer compositions, which autograd differentiates
/// twice), then back in float32: both conversions are exact for float32 values.
class DoublePrecision {
 public:
  explicit DoublePrecision(Model& model);
  ~DoublePrecision();
  DoublePrecision(const DoublePrecision&) = delete;
  DoublePrecision& operator=(const DoublePrecision&) = delete;

 private:
  Model& model_;
};

}  // namespace saq::host

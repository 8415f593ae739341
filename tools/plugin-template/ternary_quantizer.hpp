#pragma once
// The template's quantizer, shared by the plugin and its test: ternary weights (TWN, Li & Liu 2016) and PACT
// activations with a data-initialised clip.
//   weights:     Δ = 0.7·mean|w|;  α = mean of |w| over |w| > Δ;  X = α·sign(w)·[|w| > Δ]   (straight-through)
//   activations: y = round(clamp(x, 0, c)·n/c)·c/n, n = 2^bits − 1, with the clip c learnt (PACT) and set, on the
//                first training batch, to the batch's 99th percentile of x.
#include <ATen/ATen.h>

#include <saq/fake_quant.hpp>
#include <saq/sdk.hpp>

namespace ternary {

/// A weight quantizer that ignores the layer's bits: its codes are {−1, 0, +1} whatever they are.
class TernaryWeight final : public saq::TensorQuantizer {
 public:
  at::Tensor forward(const at::Tensor& w, int /*bits*/) override {
    const at::Tensor delta = 0.7 * w.abs().mean().detach();
    const at::Tensor mask = (w.abs() > delta).to(w.scalar_type());
    const at::Tensor alpha = (w.abs() * mask).sum().detach() / mask.sum().clamp_min(1);
    const at::Tensor ternary = alpha * at::sign(w) * mask;
    return w + (ternary - w).detach();  // straight-through: the op sees the ternary weight, w gets the gradient
  }
  /// For `saqhost export`: the weight is α·code with codes −1, 0, +1 (α is what forward computes from w).
  saq::QuantGrid grid(const at::Tensor& w, int /*bits*/) override {
    at::NoGradGuard no_grad;
    const at::Tensor mask = (w.abs() > 0.7 * w.abs().mean()).to(at::kFloat);
    const at::Tensor alpha = (w.abs().to(at::kFloat) * mask).sum() / mask.sum().clamp_min(1);
    return {alpha.reshape({1}), 0, -1, 1};
  }
};

/// PACT with the SDK's fused kernel. The conventions every saq quantizer follows:
/// - a learnable clip is named "clip_value", so the configs' [[stage.group]] match = "*.clip_value" finds it;
/// - data-driven initialisation runs once, in training only, and is remembered in a buffer "initialized" so that
///   a checkpoint (and a resumed run) carries it;
/// - forward is never called at 32 bits (the layer skips its quantizers) and gets bits the host checked (2..8).
class PactActivation final : public saq::TensorQuantizer {
 public:
  PactActivation() {
    clip_ = register_parameter("clip_value", at::full({1}, 1.0));
    initialized_ = register_buffer("initialized", at::zeros({1}));
  }
  at::Tensor forward(const at::Tensor& x, int bits) override {
    if (is_training() && initialized_.item<double>() == 0) {
      at::NoGradGuard no_grad;
      const at::Tensor flat = x.detach().flatten().to(at::kFloat);
      const auto k = std::max<std::int64_t>(1, static_cast<std::int64_t>(0.99 * static_cast<double>(flat.numel())));
      clip_.fill_(std::max(1e-3, std::get<0>(flat.kthvalue(k)).item<double>()));  // α must be positive
      initialized_.fill_(1);
    }
    return saq::fake_quant::pact_activation(x, clip_, bits);
  }
  /// For `saqhost export`: codes 0..n of the step c/n.
  saq::QuantGrid grid(const at::Tensor&, int bits) override {
    const std::int64_t n = (std::int64_t{1} << bits) - 1;
    return {clip_.detach().to(at::kFloat) / static_cast<double>(n), 0, 0, n};
  }

 private:
  at::Tensor clip_, initialized_;
};

class Ternary final : public saq::Quantizer {
 public:
  Ternary(const saq::Params&, const saq::Context&) {}
  static saq::Schema schema() { return {}; }
  std::shared_ptr<saq::TensorQuantizer> weight_quantizer(const saq::QuantLayerInfo&) const override {
    return std::make_shared<TernaryWeight>();
  }
  std::shared_ptr<saq::TensorQuantizer> activation_quantizer(const saq::QuantLayerInfo&) const override {
    return std::make_shared<PactActivation>();
  }
  /// Three levels take two bits: a layer set to more would be counted at bits it does not use (BOPs, memory).
  std::string refuse_bits(const saq::QuantLayerInfo&, int weight_bits, int) const override {
    if (weight_bits == 2 || weight_bits == saq::kFullPrecision) return {};
    return "ternary weights take 2 bits, not " + std::to_string(weight_bits) +
           " (set weight_bits, first_weight_bits and last_weight_bits to 2, or 32 to keep a layer in float)";
  }
};

}  // namespace ternary

#pragma once
#include <saq/sdk.hpp>
#include <saq/torch_optimizer.hpp>

namespace saq::plugins {

/// SGD with momentum μ, dampening τ, weight decay λ (inside the momentum buffer, as PyTorch):
///   d = g + λw;  b ← μb + (1 − τ)d;  w ← w − lr·(nesterov ? d + μb : b)
class Sgd final : public TorchOptimizer {
 public:
  Sgd(const Params& p, const Context& ctx);
  static Schema schema();
};

/// Adam (Kingma & Ba) with L2 weight decay added to the gradient: d = g + λw;
///   m ← β₁m + (1 − β₁)d;  v ← β₂v + (1 − β₂)d²;  w ← w − lr·m̂/(√v̂ + ε), hats = bias-corrected.
class Adam final : public TorchOptimizer {
 public:
  Adam(const Params& p, const Context& ctx);
  static Schema schema();
};

/// AdamW (Loshchilov & Hutter): decoupled decay w ← w(1 − lr·λ) before the Adam update of g.
class AdamW final : public TorchOptimizer {
 public:
  AdamW(const Params& p, const Context& ctx);
  static Schema schema();
};

}  // namespace saq::plugins

#pragma once
// ESAM, as its authors' code runs it.
#include "sharpness_aware.hpp"

namespace saq::plugins {

/// ESAM (Du et al., 2022). Stochastic weight perturbation: each target tensor joins the step with probability β
/// (drawn per tensor from (seed, step), so a resumed run draws the same); the ascent backward computes the
/// gradients of the chosen tensors only — autograd runs no weight-gradient kernel for the others — and
///   ε_t = ρ·g_t / (β·‖g_A‖) on the chosen set A, 0 elsewhere, so ‖ε‖ = ρ/β.
/// Sharpness-sensitive data selection (γ < 1): a no-grad forward at w + ε gives each sample's rise
/// ℓ_i(w + ε) − ℓ_i(w); the descent pass runs on the ⌊γ·B⌋ samples that rose most (explicit indices, so ties
/// cannot shrink it). Cost ≈ (3 + β + 3γ)/3 of a plain step in FLOPs: 1.67 at β = γ = 0.5, against SAM's 2.
class Esam : public SharpnessAware {
 public:
  Esam(const Params& p, const Context& ctx);
  static Schema schema();

 protected:
  StepResult method_step(const LossFn& loss_fn) override;

 private:
  double beta_, gamma_;
};

}  // namespace saq::plugins

#pragma once
// GSAM: SAM's perturbed gradient, minus a share of the clean gradient's part orthogonal to it.
#include "sharpness_aware.hpp"

namespace saq::plugins {

/// GSAM (Zhuang et al., 2022), with g = ∇L(w) over every parameter the base optimizer steps:
///   ρ_t = ρ_min + (ρ − ρ_min)·(f − f_min)/(1 − f_min), f the schedule's learning-rate factor (f_min its last),
///   ε as SAM's at ρ_t on the targets, g_p = ∇L(w + ε),
///   g_⊥ = g − (⟨g, g_p⟩/‖g_p‖²)·g_p,   step with d = g_p − α·g_⊥.
/// α = 0 with ρ_min = ρ is SAM. In SAQ mode ε is on the quantized weights and g, g_p are the latent weights'
/// gradients. Two forward and two backward passes, as SAM.
class Gsam : public SharpnessAware {
 public:
  Gsam(const Params& p, const Context& ctx);
  static Schema schema();
  /// ρ_t at learning-rate factor f.
  double rho_t(double f) const;

 protected:
  StepResult method_step(const LossFn& loss_fn) override;

 private:
  double rho_min_, alpha_, lr_min_factor_;
};

}  // namespace saq::plugins

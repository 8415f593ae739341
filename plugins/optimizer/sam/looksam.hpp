#pragma once
// LookSAM: SAM's ascent every k steps, its direction reused in between.
#include <vector>

#include "sharpness_aware.hpp"

namespace saq::plugins {

/// LookSAM (Liu et al., 2022), with g = ∇L(w) over every parameter the base optimizer steps:
///   every k-th step (and the first):  ε as SAM's on the targets, g_s = ∇L(w + ε),
///       g_v = g_s − (⟨g_s, g⟩/‖g‖²)·g   (one global dot product and norm, as the paper; kept), step with g_s;
///   the other steps, one pass:  step with g + α·(‖g‖/‖g_v‖)·g_v.
/// In SAQ mode ε is on the quantized weights and g, g_s, g_v are the latent weights' gradients (what the base
/// optimizer steps). Cost: (k + 1)/k passes on average. g_v is in the resume checkpoint. Data parallel: g and
/// g_v are each rank's own; the base optimizer averages the gradient it steps with.
class LookSam : public SharpnessAware {
 public:
  LookSam(const Params& p, const Context& ctx);
  static Schema schema();

 protected:
  StepResult method_step(const LossFn& loss_fn) override;
  void save_method(StateDict& state) const override;
  void load_method(const StateDict& state) override;

 private:
  StepResult refresh(const LossFn& loss_fn);
  StepResult reuse(const LossFn& loss_fn);
  std::int64_t k_;
  double alpha_;
  std::vector<at::Tensor> g_v_;  ///< per parameter; empty until the first refresh
};

}  // namespace saq::plugins

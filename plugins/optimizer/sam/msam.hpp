#pragma once
// MSAM: one pass, perturbed against the base optimizer's momentum.
#include <unordered_map>
#include <vector>

#include "sharpness_aware.hpp"

namespace saq::plugins {

/// Momentum-SAM (Becker et al., 2024), with v the base optimizer's momentum (SGD's buffer, Adam's first moment):
///   w̃ = w − ρ·v/‖v‖   (one global norm over the perturbed tensors' v),  g = ∇L(w̃),
///   the base optimizer steps from w with g (it updates v with g as it always does).
/// One forward and one backward pass. The model holds w̃ only inside the step (restored by copy before the base
/// step), so evaluation and checkpoints always see w. The first step, with no momentum yet, is a plain step.
/// On quantized weights (perturb = "quantized") the latent weight's momentum sets the direction and the shift
/// −ρ·v_w/‖v‖ is added to the quantized weight Q(w) the layer consumes; clips, biases and BN γ/β (by flag) move
/// along their own momentum. The reported loss is L(w̃); there is no clean pass, so no sharpness.
/// Differs from the authors' code in one place: weight decay acts at w, not at w̃.
class Msam : public SharpnessAware {
 public:
  Msam(const Params& p, const Context& ctx);
  static Schema schema();

 protected:
  StepResult method_step(const LossFn& loss_fn) override;

 private:
  /// v of every parameter the base optimizer steps, in params() order (undefined before its first step).
  std::vector<at::Tensor> momenta() const;
  std::unordered_map<const void*, std::size_t> index_;  ///< parameter (TensorImpl) → its position in params()
};

}  // namespace saq::plugins

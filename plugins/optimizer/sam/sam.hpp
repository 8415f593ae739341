#pragma once
// SAM and ASAM.
#include "sharpness_aware.hpp"

namespace saq::plugins {

/// SAM (Foret et al., 2021), with g the clean-pass gradient of each target tensor t:
///   ε_t = ρ·g_t / ‖g‖,  ‖g‖ the one L2 norm over every target together
/// ASAM (Kwon et al., 2021): ε_t = ρ·T_t² g_t / ‖T g‖, T_t = |t| + η for adaptive targets (weights, clips, BN γ),
/// 1 otherwise. Then the base optimizer steps with ∇L(w + ε), every perturbed tensor restored by copy first
/// (quantized weights: the layer drops ε; latent weights never move in SAQ mode). Two forward and two backward
/// passes. Data parallel: the first pass is local to each rank (its own ε from its own shard, m-sharpness)
/// unless sync_perturbation averages g over the ranks; the base optimizer averages the second pass's gradient.
class Sam : public SharpnessAware {
 public:
  Sam(const Params& p, const Context& ctx, bool adaptive);
  static Schema schema(bool adaptive);

 protected:
  StepResult method_step(const LossFn& loss_fn) override;

 private:
  double eta_;  ///< ASAM's η; < 0 for SAM
};

}  // namespace saq::plugins

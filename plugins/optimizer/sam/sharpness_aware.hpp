#pragma once
// SAM, ASAM and ESAM around any base optimizer, on quantized weights (SAQ) or latent weights.
#include <memory>
#include <vector>

#include <saq/sdk.hpp>

#include "targets.hpp"

namespace saq::plugins {

/// One step on a batch, with g the clean-pass gradient of each target tensor t:
///   SAM:  ε_t = ρ·g_t / ‖g‖,  ‖g‖ the one L2 norm over every target together
///   ASAM: ε_t = ρ·T_t² g_t / ‖T g‖, T_t = |t| + η for adaptive targets (weights, clips, BN γ), 1 otherwise
///   ESAM: each target joins with probability β and ε is divided by β (stochastic weight perturbation); with
///         γ < 1 the second pass uses the ⌊γ·B⌋ samples whose loss rose most under ε (data selection)
/// then the base optimizer steps with the gradient at the perturbed point, after every perturbed tensor is
/// restored by copy (quantized weights: the layer drops ε; latent weights never move in SAQ mode).
/// Data parallel: the first pass is local to each rank (its own ε from its own shard, m-sharpness) unless
/// sync_perturbation averages g over the ranks first; the base optimizer averages the second pass's gradient.
class SharpnessAware : public Optimizer {
 public:
  enum class Variant { Sam, Asam, Esam };
  SharpnessAware(const Params& p, const Context& ctx, Variant variant);
  static Schema schema(Variant variant);

  void begin_step(const Progress& progress) override;
  StepResult step(const LossFn& loss_fn) override;
  void apply_gradients() override { base_->apply_gradients(); }
  void zero_grad() override { base_->zero_grad(); }
  void set_lr_factor(double factor) override { base_->set_lr_factor(factor); }
  double lr() const override { return base_->lr(); }
  void save(StateDict& state) const override { base_->save(state); }
  void load(const StateDict& state) override { base_->load(state); }

  /// ρ at a point of training (epochs done, fractional), per the schedule.
  double rho_at(double epoch, std::int64_t epochs) const;

 private:
  Variant variant_;
  std::shared_ptr<Optimizer> base_;
  TargetFinder targets_;
  double rho_, rho_final_, warmup_epochs_, eta_ = 0, beta_ = 1, gamma_ = 1;
  std::string rho_schedule_;
  bool single_pass_, freeze_bn_, sync_perturbation_;
  Collective* collective_;  ///< null in a single process; the first pass is local unless sync_perturbation_
  double rho_now_;
  std::uint64_t seed_;
  SplitMix rng_;  ///< ESAM's draws, reseeded from (seed, step) each step so a resumed run draws the same
};

}  // namespace saq::plugins

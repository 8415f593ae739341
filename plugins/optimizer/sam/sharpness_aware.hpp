#pragma once
// What every sharpness-aware optimizer here shares: a base optimizer that takes the step, the perturbation
// targets (quantized weights in SAQ mode, latent weights otherwise, and by flag clips, biases and BN γ/β), a ρ
// schedule, and the toolkit each method's step is written with — the ascent pass, one global norm, ε applied
// and exactly restored, the descent pass. Each method (sam.hpp, esam.hpp, looksam.hpp, gsam.hpp) writes its
// update rule as math in its class comment and only its own step.
#include <functional>
#include <memory>
#include <vector>

#include <saq/sdk.hpp>

#include "targets.hpp"

namespace saq::plugins {

/// Undoes a step's perturbation: parameters back to their saved values, layers without ε, BatchNorm momenta
/// back. Runs at the latest when the step unwinds, so an exception mid-step leaves the model as it was.
struct Restore {
  std::vector<std::pair<at::Tensor, at::Tensor>> params;  ///< (parameter, its value before ε)
  std::vector<std::shared_ptr<QuantLayer>> layers;
  std::vector<std::pair<std::shared_ptr<BatchNorm2dLayer>, double>> momenta;
  void now();
  ~Restore() { now(); }
};

/// The clean pass: per-sample losses at w, their mean, and gradients of the chosen targets (and, when asked, of
/// every parameter the base optimizer steps, in the order of its groups), all from one backward.
struct Ascent {
  at::Tensor per_sample, loss;
  std::vector<Target> targets;
  std::vector<at::Tensor> grads;        ///< of `targets`; undefined where the loss does not reach one
  std::vector<at::Tensor> param_grads;  ///< of params(), when asked for; undefined where unreached
};

class SharpnessAware : public Optimizer {
 public:
  SharpnessAware(const Params& p, const Context& ctx);
  /// The keys every method has (`default_rho` differs: ASAM's ρ lives on another scale).
  static Schema common_schema(double default_rho);

  void begin_step(const Progress& progress) override;
  /// ρ = 0 with single_pass_when_zero: the base step alone; otherwise the method's step.
  StepResult step(const LossFn& loss_fn) override;
  void apply_gradients() override { base_->apply_gradients(); }
  void zero_grad() override { base_->zero_grad(); }
  void set_lr_factor(double factor) override;
  double lr() const override { return base_->lr(); }
  /// The base optimizer's state under "base", then the method's own (save_method / load_method).
  void save(StateDict& state) const override;
  void load(const StateDict& state) override;

  /// ρ at a point of training (epochs done, fractional), per the schedule.
  double rho_at(double epoch, std::int64_t epochs) const;

 protected:
  virtual StepResult method_step(const LossFn& loss_fn) = 0;
  virtual void save_method(StateDict& state) const { (void)state; }
  virtual void load_method(const StateDict& state) { (void)state; }

  /// The clean pass over the targets `choose` keeps (all when null), with every parameter's gradient too when
  /// `with_params`; averaged over the ranks first when sync_perturbation asks for it.
  Ascent ascend(const LossFn& loss_fn, const std::function<bool(const Target&)>& choose, bool with_params);
  /// ‖g‖ over the ascent's target gradients; ASAM's ‖T g‖ when `eta` ≥ 0 (T = |t| + η on adaptive targets).
  double gradient_norm(const Ascent& a, double eta = -1) const;
  /// ε_t = scale·g_t (ASAM: scale·T_t²·g_t when `eta` ≥ 0) added to every target with a gradient; returns ‖ε‖.
  double perturb(const Ascent& a, double scale, Restore& restore, double eta = -1) const;
  /// bn_second_pass = "freeze": BatchNorm momenta 0 until `restore` runs.
  void freeze_norms(Restore& restore) const;
  /// The descent pass: gradients dropped, then the mean loss over `rows` (all when undefined) backward into .grad.
  at::Tensor descend(const LossFn& loss_fn, const at::Tensor& rows);
  /// A two-pass step's result: the clean loss, sharpness = `perturbed_loss` − it, ‖ε‖ and the ρ used.
  static StepResult two_pass_result(const Ascent& a, double perturbed_loss, double eps_norm, double rho);

  const TargetFinder& targets() const { return targets_; }
  /// The base optimizer's state as it saves it (its tensors themselves, not copies).
  StateDict base_state() const;
  /// The parameters the base optimizer steps, in its groups' order (the .grad LookSAM and GSAM rework).
  const std::vector<at::Tensor>& params() const { return params_; }
  std::int64_t global_step() const { return global_step_; }
  double rho_now() const { return rho_now_; }
  double lr_factor() const { return lr_factor_; }
  SplitMix& rng() { return rng_; }

 private:
  std::shared_ptr<Optimizer> base_;
  TargetFinder targets_;
  std::vector<at::Tensor> params_;
  double rho_, rho_final_, warmup_epochs_;
  std::string rho_schedule_;
  bool single_pass_, freeze_bn_, sync_perturbation_;
  Collective* collective_;  ///< null in a single process; the first pass is local unless sync_perturbation_
  double rho_now_, lr_factor_ = 1.0;
  std::int64_t global_step_ = 0;
  std::uint64_t seed_;
  SplitMix rng_;  ///< random draws, reseeded from (seed, step) each step so a resumed run draws the same
};

/// ∑ ⟨a_i, b_i⟩ over tensor lists (undefined entries count as zero), in double, with one host sync.
double dot(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b);

}  // namespace saq::plugins

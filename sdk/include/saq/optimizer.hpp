#pragma once
/// Optimizer plugins. The engine calls only step(loss_fn): the optimizer owns every forward/backward pass,
/// so one-pass (SGD), two-pass (SAM, ASAM) and subset (ESAM) methods share one contract.
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include <saq/params.hpp>
#include <saq/state.hpp>

namespace saq {

/// Runs a forward pass on the current batch (or only its rows `rows`, when defined) and returns the
/// per-sample losses [B], not reduced, with no backward. Owned by the host.
using LossFn = std::function<at::Tensor(const at::Tensor& rows)>;

/// Parameters that share learning-rate and weight-decay settings; unset values take the optimizer's own.
struct ParamGroup {
  std::string name;
  std::vector<at::Tensor> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

/// What one step measured: the clean loss; for sharpness-aware optimizers the sharpness L(w+ε) − L(w), the norm
/// of ε and the radius ρ in force (NaN where the optimizer does not perturb).
struct StepResult {
  double loss = std::numeric_limits<double>::quiet_NaN();
  double sharpness = std::numeric_limits<double>::quiet_NaN();
  double perturbation_norm = std::numeric_limits<double>::quiet_NaN();
  double rho = std::numeric_limits<double>::quiet_NaN();
};

/// Where training stands, given before every step (schedules of ρ and the like read it).
struct Progress {
  std::int64_t epoch = 0, epochs = 1;           ///< epoch counts from 0
  std::int64_t step = 0, steps_per_epoch = 1;   ///< step within the epoch, from 0
  /// Fractional epochs done: epoch + step/steps_per_epoch.
  double epoch_fraction() const { return static_cast<double>(epoch) + static_cast<double>(step) / static_cast<double>(steps_per_epoch); }
};

/// A step whose loss or gradients hold NaN or Inf, thrown before any parameter is updated: the host stops the run
/// or skips the step (run.on_nonfinite). Wrapping optimizers let it pass after restoring what they perturbed.
class SAQ_VISIBLE NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  ~NonFiniteError() override;
};

/// Throws NonFiniteError when a gradient of `params` holds NaN or Inf. One host sync, however many tensors.
SAQ_VISIBLE void check_finite_gradients(const std::vector<at::Tensor>& params);

class SAQ_VISIBLE Optimizer {
 public:
  static constexpr Kind kind = Kind::Optimizer;
  using Interface = Optimizer;
  virtual ~Optimizer() = default;
  /// Called before each step with the training position.
  virtual void begin_step(const Progress& progress) { (void)progress; }
  /// One training step on the current batch: every pass it needs, then the parameter update.
  virtual StepResult step(const LossFn& loss_fn) = 0;
  /// One update from the gradients already in .grad() (what a wrapping optimizer calls). Throws NonFiniteError,
  /// updating nothing, when a gradient is not finite.
  virtual void apply_gradients() = 0;
  /// Drops the gradients (undefined, not zero), so that a parameter the next step does not reach is left alone.
  virtual void zero_grad() = 0;
  /// Sets every group's learning rate to factor × its base rate (the host's schedule).
  virtual void set_lr_factor(double factor) = 0;
  /// The current learning rate of the first group.
  virtual double lr() const = 0;
  /// Everything a resumed run needs to step exactly as an uninterrupted one (momenta, step counts, rates).
  virtual void save(StateDict& state) const = 0;
  /// Restores what save wrote; std::runtime_error naming `state.where()` when it does not fit this optimizer.
  virtual void load(const StateDict& state) = 0;
};

}  // namespace saq

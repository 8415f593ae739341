#pragma once
/// Learning-rate schedules as a factor of the base rate, with an optional linear warm-up.
#include <cstdint>
#include <string>
#include <vector>

#include <saq/params.hpp>

namespace saq::host {

/// factor(t) with t the epoch (lr_update = "epoch") or epoch + step/steps_per_epoch ("step"), E = epochs:
///   constant 1 · cosine m + (1 − m)(1 + cos πt/E)/2 · multistep γ^|{milestones ≤ t}| · step γ^⌊t/step_size⌋
/// times (g + 1)/W during warm-up, g the global step and W = warmup_epochs · steps_per_epoch.
class LrSchedule {
 public:
  LrSchedule(const Params& stage, std::int64_t steps_per_epoch);
  double factor(std::int64_t epoch, std::int64_t step) const;

 private:
  std::string kind_;
  bool per_step_;
  double epochs_, gamma_, min_factor_, warmup_steps_;
  std::int64_t step_size_, steps_per_epoch_;
  std::vector<std::int64_t> milestones_;
};

}  // namespace saq::host

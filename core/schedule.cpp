#include "schedule.hpp"

#include <algorithm>
#include <cmath>

namespace saq::host {

LrSchedule::LrSchedule(const Params& s, std::int64_t steps_per_epoch)
    : kind_(s.get<std::string>("schedule")),
      per_step_(s.get<std::string>("lr_update") == "step"),
      epochs_(static_cast<double>(s.get<std::int64_t>("epochs"))),
      gamma_(s.get<double>("gamma")),
      min_factor_(s.get<double>("min_lr_factor")),
      warmup_steps_(s.get<double>("warmup_epochs") * static_cast<double>(steps_per_epoch)),
      step_size_(s.get<std::int64_t>("step_size")),
      steps_per_epoch_(steps_per_epoch),
      milestones_(s.get<std::vector<std::int64_t>>("milestones")) {}

double LrSchedule::factor(std::int64_t epoch, std::int64_t step) const {
  double t = static_cast<double>(epoch);
  if (per_step_) t += static_cast<double>(step) / static_cast<double>(steps_per_epoch_);
  double f = 1.0;
  if (kind_ == "cosine") {
    f = min_factor_ + (1.0 - min_factor_) * 0.5 * (1.0 + std::cos(M_PI * t / epochs_));
  } else if (kind_ == "multistep") {
    for (auto m : milestones_)
      if (static_cast<double>(m) <= t) f *= gamma_;
  } else if (kind_ == "step") {
    f = std::pow(gamma_, std::floor(t / static_cast<double>(step_size_)));
  }
  double g = static_cast<double>(epoch * steps_per_epoch_ + step);
  if (g < warmup_steps_) f *= std::min(1.0, (g + 1.0) / warmup_steps_);
  return f;
}

}  // namespace saq::host

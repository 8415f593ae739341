#include "esam.hpp"

#include <cmath>

#include <ATen/ATen.h>

namespace saq::plugins {

Esam::Esam(const Params& p, const Context& ctx)
    : SharpnessAware(p, ctx), beta_(p.get<double>("beta")), gamma_(p.get<double>("gamma")) {}

Schema Esam::schema() {
  Schema s = common_schema(0.05);
  s.real("beta", 0.5, "probability that a tensor is perturbed (stochastic weight perturbation)").above(0).max(1);
  s.real("gamma", 0.5, "fraction of the batch the second pass uses (sharpness-sensitive data selection)")
      .above(0).max(1);
  return s;
}

StepResult Esam::method_step(const LossFn& loss_fn) {
  const Ascent a = ascend(loss_fn, [&](const Target&) { return beta_ >= 1.0 || rng().uniform() < beta_; }, false);
  Restore restore;
  const double eps_norm = perturb(a, rho_now() / (gradient_norm(a) + 1e-12) / beta_, restore);
  // BN running statistics: every pass at w + ε (the selection forward included) leaves them, when frozen
  freeze_norms(restore);
  at::Tensor rows, perturbed_all;
  if (gamma_ < 1.0) {
    at::NoGradGuard no_grad;
    perturbed_all = loss_fn(at::Tensor()).detach();
    // ⌊γ·B⌋, robust to γ·B landing a hair below an integer in floating point (0.29·100)
    const auto k = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(std::floor(gamma_ * static_cast<double>(a.per_sample.size(0)) + 1e-9)));
    rows = std::get<1>((perturbed_all - a.per_sample.detach()).topk(k));
  }
  const at::Tensor perturbed = descend(loss_fn, rows);
  restore.now();
  apply_gradients();
  // sharpness over the whole batch when the selection pass measured it there
  return two_pass_result(a, (perturbed_all.defined() ? perturbed_all.mean() : perturbed).item<double>(), eps_norm,
                         rho_now());
}

}  // namespace saq::plugins

#include "sam.hpp"

#include <ATen/ATen.h>

namespace saq::plugins {

Sam::Sam(const Params& p, const Context& ctx, bool adaptive)
    : SharpnessAware(p, ctx), eta_(adaptive ? p.get<double>("eta") : -1.0) {}

Schema Sam::schema(bool adaptive) {
  Schema s = common_schema(adaptive ? 0.5 : 0.05);
  if (adaptive) s.real("eta", 0.01, "ASAM's η in T = |w| + η").min(0);
  return s;
}

StepResult Sam::method_step(const LossFn& loss_fn) {
  const Ascent a = ascend(loss_fn, nullptr, false);
  Restore restore;
  const double eps_norm = perturb(a, rho_now() / (gradient_norm(a, eta_) + 1e-12), restore, eta_);
  freeze_norms(restore);
  const at::Tensor perturbed = descend(loss_fn, at::Tensor());
  restore.now();
  apply_gradients();
  return two_pass_result(a, perturbed.item<double>(), eps_norm, rho_now());
}

}  // namespace saq::plugins

#include "gsam.hpp"

#include <algorithm>

#include <ATen/ATen.h>

namespace saq::plugins {

Gsam::Gsam(const Params& p, const Context& ctx)
    : SharpnessAware(p, ctx),
      rho_min_(p.get<double>("rho_min")),
      alpha_(p.get<double>("alpha")),
      lr_min_factor_(p.get<double>("lr_min_factor")) {
  if (rho_min_ > p.get<double>("rho"))
    p.fail("rho_min", "must be at most rho (" + std::to_string(p.get<double>("rho")) + "), got " + std::to_string(rho_min_));
}

Schema Gsam::schema() {
  Schema s = common_schema(0.04);
  s.real("rho_min", 0.02, "ρ at the schedule's lowest learning rate (ρ is the highest)").min(0);
  s.real("alpha", 0.01, "α: the share of the clean gradient's orthogonal part taken out (paper, ResNets: 0.01)")
      .min(0).max(1);
  s.real("lr_min_factor", 0.0, "the learning-rate factor at the schedule's end (cosine's min_lr_factor)").min(0).below(1);
  return s;
}

double Gsam::rho_t(double f) const {
  const double t = std::clamp((f - lr_min_factor_) / (1.0 - lr_min_factor_), 0.0, 1.0);
  return rho_min_ + (rho_now() - rho_min_) * t;
}

StepResult Gsam::method_step(const LossFn& loss_fn) {
  const Ascent a = ascend(loss_fn, nullptr, true);
  const double rho = rho_t(lr_factor());
  Restore restore;
  const double eps_norm = perturb(a, rho / (gradient_norm(a) + 1e-12), restore);
  freeze_norms(restore);
  const at::Tensor perturbed = descend(loss_fn, at::Tensor());
  restore.now();
  std::vector<at::Tensor> g_p;
  for (const auto& p : params()) g_p.push_back(p.grad());
  const std::vector<at::Tensor>& g = a.param_grads;
  const double pp = dot(g_p, g_p), coef = pp > 0 ? dot(g, g_p) / pp : 0.0;
  {
    // d = g_p − α·(g − coef·g_p) = (1 + α·coef)·g_p − α·g
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params().size(); ++i) {
      at::Tensor p = params()[i];
      if (!g[i].defined()) {
        if (g_p[i].defined()) p.mutable_grad().mul_(1.0 + alpha_ * coef);
        continue;
      }
      if (g_p[i].defined()) p.mutable_grad().mul_(1.0 + alpha_ * coef).sub_(g[i], alpha_);
      else p.mutable_grad() = g[i] * -alpha_;
    }
  }
  apply_gradients();
  return two_pass_result(a, perturbed.item<double>(), eps_norm, rho);
}

}  // namespace saq::plugins

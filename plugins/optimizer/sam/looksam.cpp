#include "looksam.hpp"

#include <cmath>

#include <ATen/ATen.h>

namespace saq::plugins {

LookSam::LookSam(const Params& p, const Context& ctx)
    : SharpnessAware(p, ctx), k_(p.get<std::int64_t>("k")), alpha_(p.get<double>("alpha")) {}

Schema LookSam::schema() {
  Schema s = common_schema(0.05);
  s.integer("k", 5, "SAM's two passes every k steps; one pass reusing their direction in between").min(1);
  s.real("alpha", 0.7, "weight α of the reused direction g_v, scaled by ‖g‖/‖g_v‖").min(0).max(1);
  return s;
}

StepResult LookSam::method_step(const LossFn& loss_fn) {
  return g_v_.empty() || global_step() % k_ == 0 ? refresh(loss_fn) : reuse(loss_fn);
}

StepResult LookSam::refresh(const LossFn& loss_fn) {
  const Ascent a = ascend(loss_fn, nullptr, true);
  Restore restore;
  const double eps_norm = perturb(a, rho_now() / (gradient_norm(a) + 1e-12), restore);
  freeze_norms(restore);
  const at::Tensor perturbed = descend(loss_fn, at::Tensor());
  restore.now();
  std::vector<at::Tensor> g_s;
  for (const auto& p : params()) g_s.push_back(p.grad());
  const std::vector<at::Tensor>& g = a.param_grads;
  const double gg = dot(g, g), coef = gg > 0 ? dot(g_s, g) / gg : 0.0;
  std::vector<at::Tensor> g_v(params().size());
  {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < g_v.size(); ++i) {
      if (g_s[i].defined()) g_v[i] = g[i].defined() ? g_s[i] - coef * g[i] : g_s[i].clone();
      else if (g[i].defined()) g_v[i] = -coef * g[i];
    }
  }
  apply_gradients();  // a non-finite step throws here, and keeps the previous g_v
  g_v_ = std::move(g_v);
  return two_pass_result(a, perturbed.item<double>(), eps_norm, rho_now());
}

StepResult LookSam::reuse(const LossFn& loss_fn) {
  const at::Tensor loss = descend(loss_fn, at::Tensor());
  std::vector<at::Tensor> g;
  for (const auto& p : params()) g.push_back(p.grad());
  const double g_norm = std::sqrt(dot(g, g)), v_norm = std::sqrt(dot(g_v_, g_v_));
  if (v_norm > 0) {
    at::NoGradGuard no_grad;
    const double scale = alpha_ * g_norm / v_norm;
    for (size_t i = 0; i < params().size(); ++i) {
      if (!g_v_[i].defined()) continue;
      at::Tensor p = params()[i];
      if (p.grad().defined()) p.mutable_grad().add_(g_v_[i], scale);
      else p.mutable_grad() = g_v_[i] * scale;
    }
  }
  apply_gradients();
  StepResult r;
  r.loss = loss.item<double>();
  r.rho = rho_now();
  return r;
}

void LookSam::save_method(StateDict& state) const {
  StateDict& d = state.child("looksam");
  d.put_int("parameters", static_cast<std::int64_t>(g_v_.size()));
  for (size_t i = 0; i < g_v_.size(); ++i)
    if (g_v_[i].defined()) d.put_tensor(std::to_string(i), g_v_[i]);
}

void LookSam::load_method(const StateDict& state) {
  const StateDict& d = state.child("looksam");
  const std::int64_t n = d.integer("parameters");
  if (n != 0 && n != static_cast<std::int64_t>(params().size()))
    throw std::runtime_error(d.where() + ": g_v of " + std::to_string(n) + " parameters, the optimizer has " +
                             std::to_string(params().size()));
  std::vector<at::Tensor> g_v(static_cast<size_t>(n));
  for (size_t i = 0; i < g_v.size(); ++i) {
    if (!d.has(std::to_string(i))) continue;
    const at::Tensor& t = d.tensor(std::to_string(i));
    if (t.sizes() != params()[i].sizes() || t.scalar_type() != params()[i].scalar_type())
      throw std::runtime_error(d.where() + ": g_v of parameter " + std::to_string(i) + " does not match its shape or dtype");
    g_v[i] = t.to(params()[i].device()).clone();
  }
  g_v_ = std::move(g_v);
}

}  // namespace saq::plugins

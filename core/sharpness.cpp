#include "sharpness.hpp"

#include <cmath>
#include <stdexcept>

#include <ATen/ATen.h>

namespace saq::host {

namespace {

double norm(const std::vector<at::Tensor>& v) {
  double s = 0;
  for (const auto& t : v) s += t.to(at::kDouble).pow(2).sum().item<double>();
  return std::sqrt(s);
}

std::vector<at::Tensor> scaled(const std::vector<at::Tensor>& v, double c) {
  std::vector<at::Tensor> out;
  for (const auto& t : v) out.push_back(t * c);
  return out;
}

/// The largest rise found within ‖ε‖ ≤ ρ from the one-step point, on one batch or all (batch = −1).
SharpnessPoint rise(const LossProbe& probe, double rho, int steps, long batch, double base) {
  SharpnessPoint p;
  p.rho = rho;
  std::vector<at::Tensor> eps = sam_direction(probe, rho, batch);
  p.one_step = probe.loss(eps, batch) - base;
  p.ascent = p.one_step;
  for (int k = 0; k < steps; ++k) {
    const auto g = probe.gradient(eps, batch);
    const double gn = norm(g);
    if (gn == 0) break;
    for (size_t i = 0; i < eps.size(); ++i) eps[i] = eps[i] + g[i] * (rho / steps / gn);
    const double en = norm(eps);
    if (en > rho) eps = scaled(eps, rho / en);
    p.ascent = std::max(p.ascent, probe.loss(eps, batch) - base);
  }
  return p;
}

}  // namespace

std::vector<at::Tensor> sam_direction(const LossProbe& probe, double rho, long batch) {
  const auto g = probe.gradient(probe.zeros(), batch);
  const double gn = norm(g);
  return scaled(g, gn > 0 ? rho / gn : 0.0);
}

Sharpness measure_sharpness(const LossProbe& probe, const std::vector<double>& rhos, int ascent_steps, bool per_batch) {
  for (double r : rhos)
    if (!(r > 0)) throw std::invalid_argument("sharpness: rho must be > 0, got " + std::to_string(r));
  Sharpness s;
  s.target = target_name(probe.target());
  s.m = per_batch ? "batch" : "subset";
  s.ascent_steps = ascent_steps;
  s.loss = probe.loss(probe.zeros());
  for (double rho : rhos) {
    if (!per_batch) {
      s.points.push_back(rise(probe, rho, ascent_steps, -1, s.loss));
      continue;
    }
    SharpnessPoint mean;
    mean.rho = rho;
    for (std::size_t b = 0; b < probe.batches(); ++b) {
      const long batch = static_cast<long>(b);
      const SharpnessPoint p = rise(probe, rho, ascent_steps, batch, probe.loss(probe.zeros(), batch));
      mean.one_step += p.one_step / static_cast<double>(probe.batches());
      mean.ascent += p.ascent / static_cast<double>(probe.batches());
    }
    s.points.push_back(mean);
  }
  return s;
}

}  // namespace saq::host

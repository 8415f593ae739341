#include "landscape.hpp"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>

namespace saq::host {

std::vector<at::Tensor> filter_normalized(const std::vector<at::Tensor>& direction, const std::vector<at::Tensor>& weights) {
  std::vector<at::Tensor> d;
  for (size_t i = 0; i < weights.size(); ++i) {
    const at::Tensor w = weights[i].detach().to(at::kDouble), r = direction[i].detach().to(w.device(), at::kDouble);
    const at::Tensor wf = w.reshape({w.size(0), -1}).norm(2, 1), rf = r.reshape({r.size(0), -1}).norm(2, 1);
    std::vector<std::int64_t> shape(static_cast<size_t>(w.dim()), 1);
    shape[0] = -1;
    d.push_back((r * (wf / rf.clamp_min(1e-30)).reshape(shape)).to(weights[i].scalar_type()));
  }
  return d;
}

std::vector<at::Tensor> filter_normalized_direction(const std::vector<at::Tensor>& weights, std::uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<at::Tensor> raw;
  for (const auto& w : weights)
    raw.push_back(at::randn(w.sizes(), gen, at::TensorOptions().dtype(at::kDouble)).to(w.device()));
  return filter_normalized(raw, weights);
}

std::vector<double> linspace(double lo, double hi, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(lo + (hi - lo) * i / (n - 1));
  return v;
}

std::vector<Jump> find_jumps(const std::vector<double>& alphas, const std::vector<double>& loss,
                             const std::vector<double>& levels) {
  std::vector<Jump> out;
  if (loss.size() < 3) return out;
  std::vector<double> steps;
  for (size_t i = 0; i + 1 < loss.size(); ++i) steps.push_back(std::abs(loss[i + 1] - loss[i]));
  std::vector<double> sorted = steps;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const auto [lo, hi] = std::minmax_element(loss.begin(), loss.end());
  const double range = *hi - *lo;
  for (size_t i = 0; i < steps.size(); ++i)
    if (std::isfinite(steps[i]) && steps[i] > 3 * median && steps[i] > 0.01 * range)
      out.push_back({i, alphas[i], alphas[i + 1], loss[i + 1] - loss[i],
                     levels.size() == loss.size() ? levels[i + 1] - levels[i] : std::nan("")});
  return out;
}

namespace {
std::vector<at::Tensor> combo(const std::vector<at::Tensor>& a, double x, const std::vector<at::Tensor>* b, double y) {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(b ? a[i] * x + (*b)[i] * y : a[i] * x);
  return out;
}
}  // namespace

Slice slice(const LossProbe& probe, const LossProbe* test, const std::vector<at::Tensor>& direction,
            const std::string& name, const std::vector<double>& alphas) {
  Slice s;
  s.direction = name;
  s.alphas = alphas;
  const double weights = static_cast<double>(probe.weight_count());
  for (double a : alphas) {
    const auto delta = combo(direction, a, nullptr, 0);
    s.loss.push_back(probe.loss(delta));
    if (test) s.test_loss.push_back(test->loss(delta));
    if (probe.target() == PerturbTarget::Latent)
      s.level_changes.push_back(static_cast<double>(probe.level_changes(delta)) / weights);
  }
  s.jumps = find_jumps(s.alphas, s.loss, s.level_changes);
  return s;
}

Surface surface(const LossProbe& probe, const std::vector<at::Tensor>& d1, const std::vector<at::Tensor>& d2,
                const std::vector<double>& alphas, const std::vector<double>& betas) {
  Surface s;
  s.alphas = alphas, s.betas = betas;
  for (double b : betas)
    for (double a : alphas) s.loss.push_back(probe.loss(combo(d1, a, &d2, b)));
  return s;
}

}  // namespace saq::host

#include "curvature.hpp"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

namespace saq::host {

namespace {

double dot(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i].to(at::kDouble) * b[i].to(at::kDouble)).sum().item<double>();
  return s;
}

void scale(std::vector<at::Tensor>& v, double c) {
  for (auto& t : v) t.mul_(c);
}

}  // namespace

std::vector<at::Tensor> hessian_vector_product(const Objective& f, const std::vector<at::Tensor>& v) {
  std::vector<at::Tensor> hv;
  for (auto& p : f.params) hv.push_back(at::zeros_like(p));
  for (std::size_t i = 0; i < f.terms; ++i) {
    const at::Tensor loss = f.term(i);
    const auto g = torch::autograd::grad({loss}, f.params, {}, /*retain_graph=*/true, /*create_graph=*/true,
                                         /*allow_unused=*/true);
    at::Tensor gv = at::zeros({}, loss.options());
    for (size_t k = 0; k < g.size(); ++k)
      if (g[k].defined()) gv = gv + (g[k] * v[k]).sum();
    if (!gv.requires_grad()) continue;  // this term does not depend on the params
    const auto h = torch::autograd::grad({gv}, f.params, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                         /*allow_unused=*/true);
    for (size_t k = 0; k < h.size(); ++k)
      if (h[k].defined()) hv[k].add_(h[k].detach());
  }
  return hv;
}

EigenEstimate top_eigenvalue(const Objective& f, int max_iterations, double tol, std::uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<at::Tensor> v;
  for (auto& p : f.params) v.push_back(at::randn(p.sizes(), gen, at::TensorOptions().dtype(at::kDouble)).to(p.options()));
  scale(v, 1.0 / std::sqrt(dot(v, v)));
  EigenEstimate e;
  double previous = 0;
  for (int k = 1; k <= max_iterations; ++k) {
    std::vector<at::Tensor> hv = hessian_vector_product(f, v);
    e.value = dot(v, hv);  // Rayleigh quotient of the unit iterate
    e.iterations = k;
    e.relative_change = k == 1 ? 1.0 : std::abs(e.value - previous) / std::max(std::abs(e.value), 1e-30);
    const double norm = std::sqrt(dot(hv, hv));
    if (norm == 0) {  // v lies in the null space: the largest |λ| seen is 0
      e.converged = true;
      break;
    }
    if (k > 1 && e.relative_change <= tol) {
      e.converged = true;
      break;
    }
    previous = e.value;
    v = std::move(hv);
    scale(v, 1.0 / norm);
  }
  return e;
}

TraceEstimate hessian_trace(const Objective& f, int samples, std::uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<double> q;
  for (int s = 0; s < samples; ++s) {
    std::vector<at::Tensor> z;
    for (auto& p : f.params)
      z.push_back((at::randint(0, 2, p.sizes(), gen, at::TensorOptions().dtype(at::kDouble)) * 2 - 1).to(p.options()));
    q.push_back(dot(z, hessian_vector_product(f, z)));
  }
  TraceEstimate t;
  t.samples = samples;
  for (double x : q) t.value += x / samples;
  if (samples > 1) {
    double var = 0;
    for (double x : q) var += (x - t.value) * (x - t.value) / (samples - 1);
    t.std_error = std::sqrt(var / samples);
  }
  return t;
}

}  // namespace saq::host

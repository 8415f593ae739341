#pragma once
/// Curvature of a loss at a point, from Hessian-vector products (Pearlmutter: Hv = ∇(∇L·v), double backward):
/// the largest eigenvalue by power iteration and the trace by Hutchinson's estimator, tr H = E[zᵀHz] over
/// Rademacher z. The loss is a sum of terms (one per batch), so that no graph holds more than one batch.
#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace saq::host {

/// L = Σ_i term(i), each term a scalar with its graph to `params` (leaves that require grad).
struct Objective {
  std::vector<at::Tensor> params;
  std::size_t terms = 1;
  std::function<at::Tensor(std::size_t)> term;
};

/// H·v, with v shaped as the params.
std::vector<at::Tensor> hessian_vector_product(const Objective& f, const std::vector<at::Tensor>& v);

struct EigenEstimate {
  double value = 0;           ///< the Rayleigh quotient vᵀHv of the last iterate (‖v‖ = 1)
  int iterations = 0;
  bool converged = false;     ///< |λ_k − λ_{k−1}| ≤ tol·|λ_k| before max_iterations
  double relative_change = 0; ///< of the last iteration
};
/// Power iteration from a seeded Gaussian start: the eigenvalue of largest magnitude.
EigenEstimate top_eigenvalue(const Objective& f, int max_iterations, double tol, std::uint64_t seed);

struct TraceEstimate {
  double value = 0, std_error = 0;  ///< mean of zᵀHz and its standard error over the samples
  int samples = 0;
};
/// Hutchinson's estimator with `samples` seeded Rademacher vectors.
TraceEstimate hessian_trace(const Objective& f, int samples, std::uint64_t seed);

}  // namespace saq::host

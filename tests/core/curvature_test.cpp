// Hessian-vector products, power iteration and Hutchinson's trace against closed forms: a linear layer under MSE
// (H = I ⊗ XᵀX/N: its eigenvalues are those of XᵀX/N, its trace out·tr(XᵀX/N)), and a tiny tanh network whose
// Hessian is built explicitly, entry by entry, by autograd.
#include "unit.hpp"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "curvature.hpp"

using saq::host::Objective;

namespace {

struct Quadratic {
  at::Tensor w, x, t;
  Objective objective() {
    Objective f;
    f.params = {w};
    f.terms = 2;  // two halves of the data: the products add up over terms
    f.term = [this](std::size_t i) {
      const at::Tensor xi = x.narrow(0, static_cast<std::int64_t>(i) * 16, 16), ti = t.narrow(0, static_cast<std::int64_t>(i) * 16, 16);
      return 0.5 * (at::matmul(xi, w.t()) - ti).pow(2).sum() / 32.0;
    };
    return f;
  }
};

Quadratic quadratic() {
  at::manual_seed(3);
  Quadratic q;
  q.w = at::randn({3, 5}, at::kDouble).requires_grad_(true);
  q.x = at::randn({32, 5}, at::kDouble) * at::tensor({3.0, 1.0, 0.5, 0.2, 2.0}, at::kDouble);
  q.t = at::randn({32, 3}, at::kDouble);
  return q;
}

}  // namespace

TEST_CASE("curvature of a linear layer under MSE: Hv, λ_max and the trace of I ⊗ XᵀX/N") {
  Quadratic q = quadratic();
  const Objective f = q.objective();
  const at::Tensor gram = at::matmul(q.x.t(), q.x) / 32.0;
  // H·v = v·XᵀX/N for a [3, 5] direction v
  const at::Tensor v = at::randn({3, 5}, at::kDouble);
  const auto hv = saq::host::hessian_vector_product(f, {v});
  CHECK(at::allclose(hv[0], at::matmul(v, gram), 1e-12, 1e-12));
  const double lambda = at::linalg_eigvalsh(gram).max().item<double>();
  const auto e = saq::host::top_eigenvalue(f, 500, 1e-10, 7);
  CHECK(e.converged);
  CHECK(e.value == doctest::Approx(lambda).epsilon(1e-6));
  const double trace = 3 * at::trace(gram).item<double>();
  const auto t = saq::host::hessian_trace(f, 400, 11);
  CHECK(t.samples == 400);
  CHECK(std::abs(t.value - trace) <= 4 * t.std_error);
  CHECK(t.std_error < 0.1 * trace);
  // seeded: the same numbers again
  CHECK(saq::host::hessian_trace(f, 400, 11).value == t.value);
}

TEST_CASE("curvature of a tiny tanh network against its explicit Hessian") {
  at::manual_seed(5);
  at::Tensor w1 = at::randn({4, 3}, at::kDouble).requires_grad_(true);
  at::Tensor w2 = at::randn({2, 4}, at::kDouble).requires_grad_(true);
  const at::Tensor x = at::randn({8, 3}, at::kDouble);
  const at::Tensor y = at::randint(0, 2, {8}, at::kLong);
  Objective f;
  f.params = {w1, w2};
  f.term = [&](std::size_t) { return at::cross_entropy_loss(at::matmul(at::tanh(at::matmul(x, w1.t())), w2.t()), y); };
  // the explicit 20×20 Hessian, one row per gradient entry
  const at::Tensor loss = f.term(0);
  const auto g = torch::autograd::grad({loss}, f.params, {}, true, true);
  const at::Tensor flat = at::cat({g[0].reshape(-1), g[1].reshape(-1)});
  std::vector<at::Tensor> rows;
  for (std::int64_t i = 0; i < flat.numel(); ++i) {
    const auto h = torch::autograd::grad({flat[i]}, f.params, {}, true, false);
    rows.push_back(at::cat({h[0].reshape(-1), h[1].reshape(-1)}));
  }
  const at::Tensor hessian = at::stack(rows);
  const at::Tensor v = at::randn({20}, at::kDouble);
  const auto hv = saq::host::hessian_vector_product(f, {v.narrow(0, 0, 12).reshape({4, 3}), v.narrow(0, 12, 8).reshape({2, 4})});
  CHECK(at::allclose(at::cat({hv[0].reshape(-1), hv[1].reshape(-1)}), at::matmul(hessian, v), 1e-10, 1e-12));
  const at::Tensor eig = at::linalg_eigvalsh((hessian + hessian.t()) / 2);
  const double largest = eig.abs().max().item<double>();
  const auto e = saq::host::top_eigenvalue(f, 2000, 1e-12, 1);
  CHECK(e.converged);
  CHECK(std::abs(e.value) == doctest::Approx(largest).epsilon(1e-5));
  const auto t = saq::host::hessian_trace(f, 2000, 2);
  CHECK(std::abs(t.value - at::trace(hessian).item<double>()) <= 4 * t.std_error);
}

// The unfused compositions: each straight-through estimator written as x + (f(x) − x).detach() patterns.
#include <cmath>

#include <ATen/ATen.h>

#include <saq/fake_quant.hpp>

namespace saq::fake_quant::reference {

namespace {
double levels(int bits) { return std::ldexp(1.0, bits) - 1.0; }
/// round with a straight-through gradient
at::Tensor round_ste(const at::Tensor& t) { return t + (t.round() - t).detach(); }
}  // namespace

at::Tensor uniform_ste(const at::Tensor& u, int bits) {
  const double n = levels(bits);
  return round_ste(u * n) / n;
}

at::Tensor liq_activation(const at::Tensor& x, const at::Tensor& alpha, int bits) {
  at::Tensor a = alpha.abs();
  return uniform_ste(at::clamp(x / a, 0.0, 1.0), bits) * a;
}

at::Tensor liq_weight(const at::Tensor& v, const at::Tensor& alpha, int bits) {
  at::Tensor a = alpha.abs();
  at::Tensor u = (at::clamp(v / a, -1.0, 1.0) + 1.0) / 2.0;
  return (2.0 * uniform_ste(u, bits) - 1.0) * a;
}

at::Tensor pact_activation(const at::Tensor& x, const at::Tensor& alpha, int bits) {
  // clamp(x, 0, α) written so the gradient reaches α where x ≥ α
  at::Tensor y = at::relu(x);
  y = at::where(y >= alpha, alpha.expand_as(y), y);
  const double n = levels(bits);
  // the quantizer is straight-through as a whole (PACT's ∂y_q/∂y = 1): α gets its gradient from the clamp only, not
  // from the n/α and α/n scalings of the grid
  at::Tensor q = (y * n / alpha).round() * alpha / n;
  return y + (q - y).detach();
}

at::Tensor lsq(const at::Tensor& v, const at::Tensor& step, std::int64_t qn, std::int64_t qp, double grad_scale) {
  at::Tensor s = step;
  if (s.numel() > 1) {  // one step per slice of dim 0
    std::vector<std::int64_t> shape(static_cast<size_t>(v.dim()), 1);
    shape[0] = s.numel();
    s = s.view(shape);
  }
  s = (s - s * grad_scale).detach() + s * grad_scale;  // same value, gradient scaled
  return round_ste(at::clamp(v / s, -static_cast<double>(qn), static_cast<double>(qp))) * s;
}

}  // namespace saq::fake_quant::reference

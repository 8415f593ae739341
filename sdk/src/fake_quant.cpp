// Fused CPU kernels of saq/fake_quant.hpp. Until they are written, every entry point runs the reference.
#include <saq/fake_quant.hpp>

namespace saq::fake_quant {

at::Tensor liq_activation(const at::Tensor& x, const at::Tensor& alpha, int bits) {
  return reference::liq_activation(x, alpha, bits);
}
at::Tensor liq_weight(const at::Tensor& v, const at::Tensor& alpha, int bits) {
  return reference::liq_weight(v, alpha, bits);
}
at::Tensor pact_activation(const at::Tensor& x, const at::Tensor& alpha, int bits) {
  return reference::pact_activation(x, alpha, bits);
}
at::Tensor lsq(const at::Tensor& v, const at::Tensor& step, std::int64_t qn, std::int64_t qp, double grad_scale) {
  return reference::lsq(v, step, qn, qp, grad_scale);
}
at::Tensor uniform_ste(const at::Tensor& u, int bits) { return reference::uniform_ste(u, bits); }

}  // namespace saq::fake_quant

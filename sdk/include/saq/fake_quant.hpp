#pragma once
/// Fake quantization with straight-through gradients, as single fused passes on CPU (one loop forward, one loop
/// backward, per-thread partial sums for the scalar parameters). n = 2^bits − 1 throughout; x, v are the tensor
/// being quantized; α (clip) and s (step) are learnable, receive gradients, and are 1-element tensors unless said.
/// Non-float32 or non-CPU inputs run the `reference` compositions instead. Each function takes bits 2..8 — what
/// a quantized layer runs at, the same rule as saq::valid_bits (32, full precision, never reaches a quantizer) —
/// and throws std::invalid_argument naming the bits for others, and for an α of more than one element where one
/// is expected. α is used through |α|: its sign only flips ∂/∂α; α = 0 divides by zero (NaN/Inf outputs, which
/// the host's non-finite check stops), so a quantizer keeps its clip away from 0.
#include <cstdint>

#include <ATen/core/Tensor.h>

#include <saq/abi.hpp>

namespace saq::fake_quant {

/// LIQ activation (unsigned): a = |α|; y = round(clamp(x/a, 0, 1)·n)/n · a.
///   ∂y/∂x = 1 where 0 < x < a, else 0;  ∂y/∂α = sign(α)·(y/a − x/a) where 0 < x < a, sign(α) where x ≥ a, 0 where x ≤ 0.
SAQ_VISIBLE at::Tensor liq_activation(const at::Tensor& x, const at::Tensor& alpha, int bits);

/// LIQ weight (symmetric, 2^bits levels, no zero level): a = |α|; u = (clamp(v/a, −1, 1) + 1)/2;
///   X = (2·round(u·n)/n − 1)·a.   ∂X/∂v = 1 where |v| < a, else 0;
///   ∂X/∂α = sign(α)·(X − v)/a where |v| < a, sign(α)·sign(v) elsewhere.
SAQ_VISIBLE at::Tensor liq_weight(const at::Tensor& v, const at::Tensor& alpha, int bits);

/// PACT activation (Choi et al.): y = round(clamp(x, 0, α)·n/α)·α/n.
///   ∂y/∂x = 1 where 0 ≤ x < α, else 0;  ∂y/∂α = 1 where x ≥ α, else 0.
SAQ_VISIBLE at::Tensor pact_activation(const at::Tensor& x, const at::Tensor& alpha, int bits);

/// LSQ (Esser et al.): v̂ = round(clamp(v/s, −qn, qp))·s, with s one element or one per slice of dim 0 (per channel).
///   ∂v̂/∂v = 1 where −qn < v/s < qp, else 0;
///   ∂v̂/∂s = grad_scale·(round(v/s) − v/s) inside, grad_scale·(−qn) below, grad_scale·qp above.
SAQ_VISIBLE at::Tensor lsq(const at::Tensor& v, const at::Tensor& step, std::int64_t qn, std::int64_t qp,
                           double grad_scale);

/// quantize_k of DoReFa with a straight-through gradient: y = round(u·n)/n, ∂y/∂u = 1.
SAQ_VISIBLE at::Tensor uniform_ste(const at::Tensor& u, int bits);

/// The same functions composed from ATen ops, unfused: the reference the fused kernels are tested against.
namespace reference {
SAQ_VISIBLE at::Tensor liq_activation(const at::Tensor& x, const at::Tensor& alpha, int bits);
SAQ_VISIBLE at::Tensor liq_weight(const at::Tensor& v, const at::Tensor& alpha, int bits);
SAQ_VISIBLE at::Tensor pact_activation(const at::Tensor& x, const at::Tensor& alpha, int bits);
SAQ_VISIBLE at::Tensor lsq(const at::Tensor& v, const at::Tensor& step, std::int64_t qn, std::int64_t qp,
                           double grad_scale);
SAQ_VISIBLE at::Tensor uniform_ste(const at::Tensor& u, int bits);
}  // namespace reference

}  // namespace saq::fake_quant

// Fused CPU kernels of saq/fake_quant.hpp. Each quantizer is a Rule: the value of one element (forward) and, for
// backward, the straight-through gradient of that element plus its term of the parameter's gradient. One autograd
// Function runs any Rule as one loop forward and one loop backward, over blocks whose partial sums (in double) are
// reduced in block order, so the result does not depend on the number of threads.
// The forward loops repeat the reference's float operations in the reference's order (x/a, not x·(1/a)), so both
// round the same elements the same way; the masks follow the header where the reference's clamp/relu subgradients
// differ from it (on the boundaries only).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <saq/fake_quant.hpp>

namespace saq::fake_quant {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr std::int64_t kBlock = 16384;  // elements per partial sum; also the grain of the parallel loops
constexpr int kLanes = 8;               // independent double accumulators, so the compiler can vectorize the sums

// The one rule of saq/quantizer.hpp: a layer quantizes at 2..8 bits; 32 means its quantizers are not called.
void check_bits(int bits) {
  if (bits < 2 || bits > 8)
    throw std::invalid_argument("bits must be in 2..8 (32 = full precision, which is never quantized), got " +
                                std::to_string(bits));
}

void check_scalar(const at::Tensor& alpha) {
  if (alpha.numel() != 1)
    throw std::invalid_argument("alpha must have one element, got " + std::to_string(alpha.numel()));
}

/// The fused path takes float32 strided CPU tensors; everything else runs the reference.
bool fusable(const at::Tensor& x, const at::Tensor& p) {
  for (const at::Tensor* t : {&x, &p})
    if (!t->defined() || t->scalar_type() != at::kFloat || !t->device().is_cpu() || t->layout() != at::kStrided)
      return false;
  return true;
}

float levels(std::int64_t bits) { return static_cast<float>(std::ldexp(1.0, static_cast<int>(bits)) - 1.0); }

/// c ? a : b, selected with integer masks: the compiler may neither branch nor move the arithmetic that produced a
/// and b into a branch, which (under the default -ftrapping-math) would stop it from vectorizing the loops.
inline float pick(bool c, float a, float b) {
  const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
  std::uint32_t ua, ub;
  std::memcpy(&ua, &a, sizeof ua);
  std::memcpy(&ub, &b, sizeof ub);
  const std::uint32_t r = (ua & m) | (ub & ~m);
  float out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

/// at::clamp's value: lo below, hi above, t itself otherwise (NaN stays NaN).
inline float clamp(float t, float lo, float hi) { return pick(t < lo, lo, pick(t > hi, hi, t)); }

/// Round half to even, as at::round (nearbyint in the default rounding mode): adding 2^23 pushes the fraction out of
/// the 24-bit mantissa with the FPU's own round-half-to-even; floats from 2^23 on are integers already.
inline float round_even(float t) {
  constexpr float big = 8388608.0f;
  const float m = std::fabs(t);
  return pick(m < big, std::copysign((m + big) - big, t), t);
}

/// Everything a Rule needs besides its parameter; one struct for all, saved into ctx->saved_data.
struct Config {
  std::int64_t bits = 0, qn = 0, qp = 0;
  double grad_scale = 1.0;
};

// Rules. value(x) repeats the reference's float operations in its order; grad(x, g, term) returns ∂L/∂x and sets
// term to this element's share of ∂L/∂p before factor(p), which multiplies the whole sum. Every branch is a pick, so
// the loops vectorize.

double sign(float p) { return p > 0 ? 1.0 : p < 0 ? -1.0 : 0.0; }

/// LIQ activation: a = |α|, y = round(clamp(x/a, 0, 1)·n)/n·a
struct LiqActivationRule {
  float a, n;
  LiqActivationRule(float p, const Config& c) : a(std::fabs(p)), n(levels(c.bits)) {}
  static double factor(float p, const Config&) { return sign(p); }
  float value(float x) const { return round_even(clamp(x / a, 0.0f, 1.0f) * n) / n * a; }
  float grad(float x, float g, float& term) const {
    const float t = x / a;
    const bool inside = (t > 0.0f) & (t < 1.0f);
    term = pick(inside, g * (round_even(t * n) / n - t), pick(t >= 1.0f, g, 0.0f));
    return pick(inside, g, 0.0f);
  }
};

/// LIQ weight: a = |α|, u = (clamp(v/a, −1, 1) + 1)/2, X = (2·round(u·n)/n − 1)·a
struct LiqWeightRule {
  float a, n;
  LiqWeightRule(float p, const Config& c) : a(std::fabs(p)), n(levels(c.bits)) {}
  static double factor(float p, const Config&) { return sign(p); }
  float value(float v) const {
    const float u = (clamp(v / a, -1.0f, 1.0f) + 1.0f) / 2.0f;
    return (2.0f * (round_even(u * n) / n) - 1.0f) * a;
  }
  float grad(float v, float g, float& term) const {
    const float t = v / a;
    const bool inside = (t > -1.0f) & (t < 1.0f);
    const float level = 2.0f * (round_even((t + 1.0f) / 2.0f * n) / n) - 1.0f;  // X/a inside
    term = pick(inside, g * (level - t), pick(t >= 1.0f, g, pick(t <= -1.0f, -g, 0.0f)));
    return pick(inside, g, 0.0f);
  }
};

/// PACT activation: y = round(clamp(x, 0, α)·n/α)·α/n, the clamp as the reference's relu, then α where relu(x) ≥ α
struct PactRule {
  float a, n;
  PactRule(float p, const Config& c) : a(p), n(levels(c.bits)) {}
  static double factor(float, const Config&) { return 1.0; }
  float value(float x) const {
    const float r = pick(x < 0.0f, 0.0f, x);
    const float y = pick(r >= a, a, r);
    return round_even(y * n / a) * a / n;
  }
  float grad(float x, float g, float& term) const {
    const bool clipped = pick(x < 0.0f, 0.0f, x) >= a;
    term = pick(clipped, g, 0.0f);
    return pick(!clipped & (x >= 0.0f), g, 0.0f);
  }
};

/// LSQ: v̂ = round(clamp(v/s, −qn, qp))·s
struct LsqRule {
  float s, lo, hi;
  LsqRule(float p, const Config& c) : s(p), lo(-static_cast<float>(c.qn)), hi(static_cast<float>(c.qp)) {}
  static double factor(float, const Config& c) { return c.grad_scale; }
  float value(float v) const { return round_even(clamp(v / s, lo, hi)) * s; }
  float grad(float v, float g, float& term) const {
    const float t = v / s;
    const bool inside = (t > lo) & (t < hi);
    term = pick(inside, g * (round_even(t) - t), pick(t >= hi, g * hi, pick(t <= lo, g * lo, 0.0f)));
    return pick(inside, g, 0.0f);
  }
};

/// Splits [0, numel) into `groups` equal contiguous slices (one per parameter element) and each slice into blocks of
/// at most kBlock elements; runs body(group, begin, end) -> double on all blocks in parallel and returns the sum of
/// each group, added in block order.
template <class Body>
std::vector<double> block_sums(std::int64_t numel, std::int64_t groups, const Body& body) {
  if (groups == 0) return {};
  const std::int64_t inner = numel / groups;
  const std::int64_t per_group = std::max<std::int64_t>(1, (inner + kBlock - 1) / kBlock);
  const std::int64_t block = (inner + per_group - 1) / per_group;  // balanced blocks of one group
  std::vector<double> partial(static_cast<size_t>(groups * per_group), 0.0);
  const std::int64_t grain = std::max<std::int64_t>(1, kBlock / std::max<std::int64_t>(block, 1));
  at::parallel_for(0, groups * per_group, grain, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t g = b / per_group, begin = g * inner + (b % per_group) * block;
      const std::int64_t end = std::min(begin + block, (g + 1) * inner);
      if (begin < end) partial[static_cast<size_t>(b)] = body(g, begin, end);
    }
  });
  std::vector<double> sums(static_cast<size_t>(groups), 0.0);
  for (size_t b = 0; b < partial.size(); ++b) sums[b / static_cast<size_t>(per_group)] += partial[b];
  return sums;
}

/// The backward loop of one block: writes ∂L/∂x when kGradX, returns the block's sum of terms when kTerms (0
/// otherwise: the terms are then never computed, which roughly halves the loop for a pass that wants ∂L/∂x alone,
/// as a sharpness-aware ascent towards the quantized weights does).
template <class Rule, bool kGradX, bool kTerms>
double grad_block(const Rule& r, const float* x, const float* g, float* gx, std::int64_t begin, std::int64_t end) {
  double lanes[kLanes] = {};
  std::int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      float term;
      const float d = r.grad(x[i + l], g[i + l], term);
      if constexpr (kGradX) gx[i + l] = d;
      if constexpr (kTerms) lanes[l] += term;
    }
  for (; i < end; ++i) {
    float term;
    const float d = r.grad(x[i], g[i], term);
    if constexpr (kGradX) gx[i] = d;
    if constexpr (kTerms) lanes[0] += term;
  }
  double sum = 0.0;
  for (double v : lanes) sum += v;
  return sum;
}

/// x quantized with one parameter element per slice of dim 0 (one element in all: per tensor).
template <class Rule>
struct FusedQuant : torch::autograd::Function<FusedQuant<Rule>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& param, Config cfg) {
    const at::Tensor xc = x.contiguous(), p = param.contiguous();
    at::Tensor y = at::empty(xc.sizes(), xc.options());
    const float* px = xc.data_ptr<float>();
    const float* pp = p.data_ptr<float>();
    float* py = y.data_ptr<float>();
    block_sums(xc.numel(), p.numel(), [&](std::int64_t g, std::int64_t begin, std::int64_t end) {
      const Rule r(pp[g], cfg);
      for (std::int64_t i = begin; i < end; ++i) py[i] = r.value(px[i]);
      return 0.0;
    });
    ctx->save_for_backward({xc, p});
    ctx->saved_data["bits"] = cfg.bits;
    ctx->saved_data["qn"] = cfg.qn;
    ctx->saved_data["qp"] = cfg.qp;
    ctx->saved_data["grad_scale"] = cfg.grad_scale;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& p = saved[1];
    Config cfg;
    cfg.bits = ctx->saved_data["bits"].toInt();
    cfg.qn = ctx->saved_data["qn"].toInt();
    cfg.qp = ctx->saved_data["qp"].toInt();
    cfg.grad_scale = ctx->saved_data["grad_scale"].toDouble();
    // needs_input_grad follows the graph task: a backward towards other inputs (autograd::grad) skips the parameter
    const bool want_x = ctx->needs_input_grad(0), want_p = ctx->needs_input_grad(1);
    if (!want_x && !want_p) return {at::Tensor(), at::Tensor(), at::Tensor()};
    const at::Tensor g = grads[0].contiguous();
    at::Tensor gx = want_x ? at::empty(x.sizes(), x.options()) : at::Tensor();
    const float* px = x.data_ptr<float>();
    const float* pg = g.data_ptr<float>();
    const float* pp = p.data_ptr<float>();
    float* pgx = gx.defined() ? gx.data_ptr<float>() : nullptr;
    const std::vector<double> sums =
        block_sums(x.numel(), p.numel(), [&](std::int64_t grp, std::int64_t begin, std::int64_t end) {
          const Rule r(pp[grp], cfg);
          if (!want_p) return grad_block<Rule, true, false>(r, px, pg, pgx, begin, end);
          return pgx ? grad_block<Rule, true, true>(r, px, pg, pgx, begin, end)
                     : grad_block<Rule, false, true>(r, px, pg, nullptr, begin, end);
        });
    at::Tensor gp;
    if (want_p) {
      gp = at::empty(p.sizes(), p.options());
      float* out = gp.data_ptr<float>();
      for (std::int64_t k = 0; k < p.numel(); ++k)
        out[k] = static_cast<float>(Rule::factor(pp[k], cfg) * sums[static_cast<size_t>(k)]);
    }
    return {gx, gp, at::Tensor()};
  }
};

/// quantize_k with a straight-through gradient: the backward passes the gradient through unchanged.
struct UniformSte : torch::autograd::Function<UniformSte> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& u, std::int64_t bits) {
    const at::Tensor uc = u.contiguous();
    at::Tensor y = at::empty(uc.sizes(), uc.options());
    const float* pu = uc.data_ptr<float>();
    float* py = y.data_ptr<float>();
    const float n = levels(bits);
    at::parallel_for(0, uc.numel(), kBlock, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) py[i] = round_even(pu[i] * n) / n;
    });
    return y;
  }
  static variable_list backward(AutogradContext*, variable_list grads) { return {grads[0], at::Tensor()}; }
};

}  // namespace

at::Tensor liq_activation(const at::Tensor& x, const at::Tensor& alpha, int bits) {
  check_bits(bits);
  check_scalar(alpha);
  if (!fusable(x, alpha)) return reference::liq_activation(x, alpha, bits);
  return FusedQuant<LiqActivationRule>::apply(x, alpha, Config{bits, 0, 0, 1.0});
}

at::Tensor liq_weight(const at::Tensor& v, const at::Tensor& alpha, int bits) {
  check_bits(bits);
  check_scalar(alpha);
  if (!fusable(v, alpha)) return reference::liq_weight(v, alpha, bits);
  return FusedQuant<LiqWeightRule>::apply(v, alpha, Config{bits, 0, 0, 1.0});
}

at::Tensor pact_activation(const at::Tensor& x, const at::Tensor& alpha, int bits) {
  check_bits(bits);
  check_scalar(alpha);
  if (!fusable(x, alpha)) return reference::pact_activation(x, alpha, bits);
  return FusedQuant<PactRule>::apply(x, alpha, Config{bits, 0, 0, 1.0});
}

at::Tensor lsq(const at::Tensor& v, const at::Tensor& step, std::int64_t qn, std::int64_t qp, double grad_scale) {
  if (qn < 0 || qp < 0)
    throw std::invalid_argument("qn and qp must be >= 0, got qn " + std::to_string(qn) + ", qp " + std::to_string(qp));
  const std::int64_t channels = v.dim() > 0 ? v.size(0) : 1;
  if (step.numel() != 1 && step.numel() != channels)
    throw std::invalid_argument("step must have 1 element or one per slice of dim 0 (" + std::to_string(channels) +
                                "), got " + std::to_string(step.numel()));
  if (!fusable(v, step)) return reference::lsq(v, step, qn, qp, grad_scale);
  return FusedQuant<LsqRule>::apply(v, step, Config{0, qn, qp, grad_scale});
}

at::Tensor uniform_ste(const at::Tensor& u, int bits) {
  check_bits(bits);
  if (!u.defined() || u.scalar_type() != at::kFloat || !u.device().is_cpu() || u.layout() != at::kStrided)
    return reference::uniform_ste(u, bits);
  return UniformSte::apply(u, static_cast<std::int64_t>(bits));
}

}  // namespace saq::fake_quant

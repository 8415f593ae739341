#include "unit.hpp"
// The fused fake quantizers: values, straight-through masks and parameter gradients worked out by hand, then the
// fused kernels against the reference compositions on random tensors, and the fallback for other dtypes / layouts.

#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <saq/fake_quant.hpp>

namespace saq::fake_quant {

namespace {

using Fn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>;

at::Tensor floats(const std::vector<float>& v) { return at::tensor(v, at::kFloat); }
at::Tensor scalar(float v) { return at::full({1}, v); }

struct Result {
  at::Tensor y, gx, gp;  // output, ∂L/∂x, ∂L/∂p for L = Σ g·y
};

/// y = f(x, p) and the gradients of Σ g·y (with respect to x only when p is undefined).
Result run(const Fn& f, const at::Tensor& x0, const at::Tensor& p0, const at::Tensor& g) {
  at::Tensor x = x0.detach().clone().requires_grad_(true);
  at::Tensor p = p0.defined() ? p0.detach().clone().requires_grad_(true) : at::Tensor();
  at::Tensor y = f(x, p);
  std::vector<at::Tensor> inputs{x};
  if (p.defined()) inputs.push_back(p);
  auto grads = torch::autograd::grad({y}, inputs, {g});
  return {y.detach(), grads[0], p.defined() ? grads[1] : at::Tensor()};
}
Result run(const Fn& f, const at::Tensor& x, const at::Tensor& p) { return run(f, x, p, at::ones_like(x)); }

/// ∂(Σ g·y)/∂x alone while p, too, requires a gradient: the graph task leaves p's edge out (a sharpness-aware
/// ascent's autograd::grad towards the quantized weights), and the kernel skips the parameter's terms.
at::Tensor grad_x_only(const Fn& f, const at::Tensor& x0, const at::Tensor& p0, const at::Tensor& g) {
  at::Tensor x = x0.detach().clone().requires_grad_(true), p = p0.detach().clone().requires_grad_(true);
  return torch::autograd::grad({f(x, p)}, {x}, {g})[0];
}

void check_values(const at::Tensor& t, const std::vector<double>& expected, double eps = 1e-6) {
  at::Tensor c = t.to(at::kDouble).contiguous().view(-1);
  REQUIRE(c.numel() == static_cast<std::int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i)
    CHECK_MESSAGE(c[static_cast<std::int64_t>(i)].item<double>() == doctest::Approx(expected[i]).epsilon(eps),
                  "element ", i);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

Fn liq_act(int bits, bool fused = true) {
  return [=](auto& x, auto& a) { return fused ? liq_activation(x, a, bits) : reference::liq_activation(x, a, bits); };
}
Fn liq_w(int bits, bool fused = true) {
  return [=](auto& x, auto& a) { return fused ? liq_weight(x, a, bits) : reference::liq_weight(x, a, bits); };
}
Fn pact(int bits, bool fused = true) {
  return [=](auto& x, auto& a) { return fused ? pact_activation(x, a, bits) : reference::pact_activation(x, a, bits); };
}
Fn lsq_fn(std::int64_t qn, std::int64_t qp, double scale, bool fused = true) {
  return [=](auto& x, auto& s) { return fused ? lsq(x, s, qn, qp, scale) : reference::lsq(x, s, qn, qp, scale); };
}
Fn ste(int bits, bool fused = true) {
  return [=](auto& u, auto&) { return fused ? uniform_ste(u, bits) : reference::uniform_ste(u, bits); };
}

}  // namespace

TEST_CASE("liq_weight at 2 bits has the four levels ±α/3, ±α and no zero") {
  // n = 3, α = 1.5: X = (2·round(u·3)/3 − 1)·1.5 with u = (clamp(v/1.5, −1, 1) + 1)/2, so X ∈ {−1.5, −0.5, 0.5, 1.5}
  //   v    −2    −1.5  −1.2  −0.9  −0.4  0     0.4   0.9   1.2   1.5   2
  //   u    0     0     0.1   0.2   .367  0.5   .633  0.8   0.9   1     1
  //   u·3  0     0     0.3   0.6   1.1   1.5   1.9   2.4   2.7   3     3     (1.5 is a tie: half to even gives 2)
  //   X    −1.5  −1.5  −1.5  −0.5  −0.5  0.5   0.5   0.5   1.5   1.5   1.5
  const Result r = run(liq_w(2), floats({-2, -1.5, -1.2, -0.9, -0.4, 0, 0.4, 0.9, 1.2, 1.5, 2}), scalar(1.5));
  check_values(r.y, {-1.5, -1.5, -1.5, -0.5, -0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5});
  // ∂X/∂v = 1 where |v| < α only (±1.5 themselves are outside)
  check_values(r.gx, {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0});
  // ∂X/∂α: inside (X − v)/α = [−0.3, 0.4, −0.1, 0.5, 0.1, −0.4, 0.3]/1.5, summing to 0.5/1.5 = 1/3;
  //        outside sign(v) = −1 − 1 + 1 + 1 = 0
  check_values(r.gp, {1.0 / 3.0}, 1e-5);

  // on many values: exactly those four levels
  at::Tensor y = liq_weight(at::randn({4096}) * 2, scalar(1.5), 2);
  at::Tensor levels = std::get<0>(at::_unique(y));
  check_values(levels, {-1.5, -0.5, 0.5, 1.5});
}

TEST_CASE("liq_activation has the levels k·α/n, 0 below zero and α above α, rounding half to even") {
  // n = 3, α = 2: levels 0, 2/3, 4/3, 2
  //   x    −1  0   0.3   0.5   1.2   1.9   2   5
  //   x/α  −   0   0.15  0.25  0.6   0.95  1   −
  //   ·3   0   0   0.45  0.75  1.8   2.85  3   3     → k = 0 0 0 1 2 3 3 3
  const Result r = run(liq_act(2), floats({-1, 0, 0.3, 0.5, 1.2, 1.9, 2, 5}), scalar(2));
  check_values(r.y, {0, 0, 0, 2.0 / 3, 4.0 / 3, 2, 2, 2});
  // ∂y/∂x = 1 where 0 < x < α: x = 0 and x = α are outside
  check_values(r.gx, {0, 0, 1, 1, 1, 1, 0, 0});

  // a tie: α = 3, x = 2.5 gives x/α·3 = 2.5 exactly in float, which rounds to the even 2: y = 2/3·3 = 2 (not 3)
  REQUIRE(2.5f / 3.0f * 3.0f == 2.5f);
  check_values(liq_activation(floats({2.5f}), scalar(3), 2), {2.0});
}

TEST_CASE("liq_activation's clip gradient: q − x/α inside, 1 above, 0 below") {
  // α = 2, n = 3, g = [1, 2, 3, 4, 5]
  //   x = −1: below, 0
  //   x = 0.5: x/α = 0.25, q = round(0.75)/3 = 1/3, term 2·(1/3 − 0.25) = 1/6
  //   x = 1.2: x/α = 0.6,  q = round(1.8)/3 = 2/3,  term 3·(2/3 − 0.6) = 0.2
  //   x = 2 (= α) and 3: above, 4 + 5
  // sum: 1/6 + 0.2 + 9 = 9.3666…
  const Result r = run(liq_act(2), floats({-1, 0.5, 1.2, 2, 3}), scalar(2), floats({1, 2, 3, 4, 5}));
  check_values(r.gp, {1.0 / 6 + 0.2 + 9}, 1e-5);
  check_values(r.gx, {0, 2, 3, 0, 0});
}

TEST_CASE("a negative clip quantizes with |α| and its gradient carries sign(α)") {
  const at::Tensor x = floats({-1, 0.5, 1.2, 2, 3}), g = floats({1, 2, 3, 4, 5});
  const Result pos = run(liq_act(2), x, scalar(2), g), neg = run(liq_act(2), x, scalar(-2), g);
  CHECK(max_diff(neg.y, pos.y) == 0);
  CHECK(max_diff(neg.gx, pos.gx) == 0);
  check_values(neg.gp, {-(1.0 / 6 + 0.2 + 9)}, 1e-5);  // the sum of the test above, negated

  const at::Tensor v = floats({-2, -1.5, -1.2, -0.9, -0.4, 0, 0.4, 0.9, 1.2, 1.5, 2});
  const Result wpos = run(liq_w(2), v, scalar(1.5)), wneg = run(liq_w(2), v, scalar(-1.5));
  CHECK(max_diff(wneg.y, wpos.y) == 0);
  check_values(wneg.gp, {-1.0 / 3.0}, 1e-5);
}

TEST_CASE("pact: values round(clamp(x, 0, α)·n/α)·α/n, gradient to x on [0, α) and to α only where x ≥ α") {
  // α = 2, n = 3: x = −1 → 0; 0 → 0; 0.5 → round(0.75) = 1 → 2/3; 1.9 → round(2.85) = 3 → 2; 2 → 2; 3 → 2
  const Result r = run(pact(2), floats({-1, 0, 0.5, 1.9, 2, 3}), scalar(2), floats({1, 2, 3, 4, 5, 6}));
  check_values(r.y, {0, 0, 2.0 / 3, 2, 2, 2});
  check_values(r.gx, {0, 2, 3, 4, 0, 0});  // 0 ≤ x < α: x = 0 passes, x = α does not
  check_values(r.gp, {5 + 6});             // x ≥ α: g = 5 and 6; no quantization-error term inside
}

TEST_CASE("lsq per tensor: values, straight-through mask and the scaled step gradient") {
  // s = 0.5, qn = 2, qp = 1, grad_scale = 0.5
  //   v      −2    −0.6  0.1   0.3   0.5   2
  //   v/s    −4    −1.2  0.2   0.6   1     4
  //   v̂/s    −2    −1    0     1     1     1
  //   ∂/∂s   −qn   0.2   −0.2  0.4   qp    qp     (round(v/s) − v/s inside; v/s = qp is not inside)
  // step gradient 0.5·(−2 + 0.2 − 0.2 + 0.4 + 1 + 1) = 0.2
  const Result r = run(lsq_fn(2, 1, 0.5), floats({-2, -0.6, 0.1, 0.3, 0.5, 2}), scalar(0.5));
  check_values(r.y, {-1, -0.5, 0, 0.5, 0.5, 0.5});
  check_values(r.gx, {0, 1, 1, 1, 0, 0});
  check_values(r.gp, {0.2}, 1e-5);
}

TEST_CASE("lsq per channel: one step per slice of dim 0, each gradient from its own slice") {
  // qn = 2, qp = 1, grad_scale = 0.25; channel 0 has s = 0.5, channel 1 has s = 2
  //   ch 0: v = [−2, 0.1, 0.3], v/s = [−4, 0.2, 0.6]: terms [−2, −0.2, 0.4], sum −1.8; v̂ = [−1, 0, 0.5]
  //   ch 1: v = [1, 3, 10],     v/s = [0.5, 1.5, 5]:  round(0.5) = 0 (half to even): terms [−0.5, 1, 1], sum 1.5;
  //         v̂ = [0, 2, 2]
  const at::Tensor v = floats({-2, 0.1, 0.3, 1, 3, 10}).view({2, 3}), s = floats({0.5, 2});
  const Result r = run(lsq_fn(2, 1, 0.25), v, s);
  check_values(r.y, {-1, 0, 0.5, 0, 2, 2});
  check_values(r.gx, {0, 1, 1, 1, 0, 0});
  CHECK(r.gp.sizes() == s.sizes());
  check_values(r.gp, {0.25 * -1.8, 0.25 * 1.5}, 1e-5);

  // a step of shape [2, 1] gets a gradient of that shape
  CHECK(run(lsq_fn(2, 1, 0.25), v, s.view({2, 1})).gp.sizes() == at::IntArrayRef{2, 1});
  CHECK_THROWS_AS(lsq(v, floats({1, 2, 3}), 2, 1, 1.0), std::invalid_argument);
}

TEST_CASE("uniform_ste: round(u·n)/n forward, identity backward") {
  // n = 3: u·3 = [0, 0.3, 0.6, 1.5, 2.7, 3] → [0, 0, 1, 2, 3, 3] (1.5 → 2) → /3
  const Result r = run(ste(2), floats({0, 0.1, 0.2, 0.5, 0.9, 1}), at::Tensor(), floats({1, 2, 3, 4, 5, 6}));
  check_values(r.y, {0, 0, 1.0 / 3, 2.0 / 3, 1, 1});
  check_values(r.gx, {1, 2, 3, 4, 5, 6});
  // the identity holds outside [0, 1] too, and 2.5 (= (2.5/3)·3 in float) rounds to the even 2
  REQUIRE(2.5f / 3.0f * 3.0f == 2.5f);
  const Result out = run(ste(2), floats({-0.5, 2.5f / 3.0f, 1.7}), at::Tensor(), floats({7, 8, 9}));
  check_values(out.y, {-2.0 / 3, 2.0 / 3, 5.0 / 3});  // u·3 = −1.5 → −2 (even), 2.5 → 2, 5.1 → 5
  check_values(out.gx, {7, 8, 9});
}

TEST_CASE("bits outside 2..8, the layers' rule, are refused with the value") {
  const at::Tensor x = floats({0.5}), a = scalar(1);
  for (int bits : {1, 9, 16, 32}) {  // the layers' rule: 2..8, and 32 never reaches a quantizer
    CHECK_THROWS_AS(liq_activation(x, a, bits), std::invalid_argument);
    CHECK_THROWS_AS(liq_weight(x, a, bits), std::invalid_argument);
    CHECK_THROWS_AS(pact_activation(x, a, bits), std::invalid_argument);
    CHECK_THROWS_AS(uniform_ste(x, bits), std::invalid_argument);
  }
  try {
    liq_activation(x, a, 9);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("9") != std::string::npos);
  }
  CHECK(liq_activation(x, a, 8).item<float>() == doctest::Approx(std::round(0.5 * 255) / 255).epsilon(1e-6));
}

TEST_CASE("fused equals reference on random tensors: values, ∂/∂x and ∂/∂α or ∂/∂s") {
  at::manual_seed(7);
  // 2·16384 + 77 elements: not a multiple of the block size nor of the 8 accumulator lanes
  const std::vector<std::vector<std::int64_t>> shapes{{1003}, {32845}, {64, 32, 3, 3}, {8, 16, 9, 11}};
  for (const auto& shape : shapes) {
    const at::Tensor x = at::randn(shape), g = at::rand(shape) * 2 - 1;
    const std::int64_t channels = shape[0], count = x.numel();
    for (int bits : {2, 3, 4, 8}) {
      const double n = std::ldexp(1.0, bits) - 1;
      struct Case {
        const char* name;
        Fn fused, ref;
        at::Tensor param;
        double grad_scale;  // LSQ's, else 0
      };
      // Steps with few mantissa bits: for them the reference's (s − s·g).detach() + s·g is exactly s (it can be one
      // ulp off otherwise, moving rounding decisions); checked below.
      const at::Tensor steps = at::round((at::rand({channels}) * 0.4 + 0.05) * 1024) / 1024;
      const double wscale = 1.0 / std::sqrt(count * (std::ldexp(1.0, bits - 1) - 1));
      const double ascale = 1.0 / std::sqrt(count * n);
      const auto q = static_cast<std::int64_t>(std::ldexp(1.0, bits - 1));
      const std::vector<Case> cases{
          {"liq_activation", liq_act(bits), liq_act(bits, false), scalar(1.3f), 0},
          {"liq_weight", liq_w(bits), liq_w(bits, false), scalar(0.9f), 0},
          {"pact_activation", pact(bits), pact(bits, false), scalar(1.3f), 0},
          {"lsq per tensor", lsq_fn(0, static_cast<std::int64_t>(n), ascale),
           lsq_fn(0, static_cast<std::int64_t>(n), ascale, false), scalar(0.3125f), ascale},
          {"lsq per channel", lsq_fn(q, q - 1, wscale), lsq_fn(q, q - 1, wscale, false), steps, wscale},
          {"uniform_ste", ste(bits), ste(bits, false), at::Tensor(), 0},
      };
      for (const Case& c : cases) {
        const std::string name = c.name;
        CAPTURE(name);
        CAPTURE(bits);
        CAPTURE(count);
        if (c.grad_scale > 0)
          REQUIRE(((c.param - c.param * c.grad_scale) + c.param * c.grad_scale).equal(c.param));
        const at::Tensor in = std::string(c.name) == "uniform_ste" ? at::rand(shape) * 1.4 - 0.2 : x;
        const Result f = run(c.fused, in, c.param, g), r = run(c.ref, in, c.param, g);
        CHECK(max_diff(f.y, r.y) <= 1e-6);
        CHECK(max_diff(f.gx, r.gx) <= 1e-6);
        if (c.param.defined()) {
          CHECK(grad_x_only(c.fused, in, c.param, g).equal(f.gx));  // bit for bit the gradient of the full pass
          CHECK(f.gp.sizes() == c.param.sizes());
          // sums over up to 32845 terms: the reference adds them in float, the fused kernel in double, so compare
          // with 1e-5 against the float reference and with 1e-6 against the reference run in double
          const Result d = run(c.ref, in.to(at::kDouble), c.param.to(at::kDouble), g.to(at::kDouble));
          const double size = std::max(1.0, d.gp.abs().max().item<double>());
          CHECK(max_diff(f.gp, r.gp) <= 1e-5 * size);
          CHECK(max_diff(f.gp, d.gp) <= 1e-6 * size);
        }
      }
    }
  }
}

TEST_CASE("double, non-contiguous and no-gradient inputs give the reference's values") {
  at::manual_seed(3);
  const at::Tensor x = at::randn({6, 5}), g = at::rand({6, 5});
  const std::vector<std::pair<Fn, Fn>> fns{{liq_act(3), liq_act(3, false)},
                                           {liq_w(3), liq_w(3, false)},
                                           {pact(3), pact(3, false)},
                                           {lsq_fn(4, 3, 0.5), lsq_fn(4, 3, 0.5, false)}};
  for (const auto& [fused, ref] : fns) {
    // double runs the reference itself
    const at::Tensor xd = x.to(at::kDouble), ad = at::full({1}, 0.75, at::kDouble);
    const Result fd = run(fused, xd, ad, g.to(at::kDouble)), rd = run(ref, xd, ad, g.to(at::kDouble));
    CHECK((fd.y.scalar_type() == at::kDouble));
    CHECK(max_diff(fd.y, rd.y) == 0);
    CHECK(max_diff(fd.gx, rd.gx) == 0);
    CHECK(max_diff(fd.gp, rd.gp) == 0);
    // a transposed view
    const at::Tensor xt = x.t(), gt = g.t(), a = scalar(0.75f);
    REQUIRE_FALSE(xt.is_contiguous());
    const Result ft = run(fused, xt, a, gt), rt = run(ref, xt, a, gt);
    CHECK(max_diff(ft.y, rt.y) <= 1e-6);
    CHECK(max_diff(ft.gx, rt.gx) <= 1e-6);
    CHECK(max_diff(ft.gp, rt.gp) <= 1e-5);
    // a clip that does not require grad: only ∂/∂x
    at::Tensor xg = x.clone().requires_grad_(true);
    at::Tensor y = fused(xg, a);
    auto gx = torch::autograd::grad({y}, {xg}, {g});
    CHECK(max_diff(gx[0], run(ref, x, a, g).gx) <= 1e-6);
  }
  const at::Tensor ud = at::rand({7, 3}, at::kDouble).t();
  CHECK(max_diff(uniform_ste(ud, 3), reference::uniform_ste(ud, 3)) == 0);
}

TEST_CASE("the parameter gradient does not depend on the number of threads") {
  at::manual_seed(11);
  const at::Tensor x = at::randn({5, 40000}), g = at::randn({5, 40000});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const Result one = run(liq_act(4), x, scalar(1.1f), g);
  const Result lsq_one = run(lsq_fn(8, 7, 0.01), x, floats({0.25, 0.5, 0.125, 0.375, 0.0625}), g);
  at::set_num_threads(std::max(2, threads));
  const Result many = run(liq_act(4), x, scalar(1.1f), g);
  const Result lsq_many = run(lsq_fn(8, 7, 0.01), x, floats({0.25, 0.5, 0.125, 0.375, 0.0625}), g);
  at::set_num_threads(threads);
  CHECK(one.gp.equal(many.gp));
  CHECK(lsq_one.gp.equal(lsq_many.gp));
}

}  // namespace saq::fake_quant

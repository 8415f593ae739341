// The template quantizer's own test, against hand computations: the ternary weight of a fixed tensor, the
// straight-through gradient, and the activation clip initialised once, in training only.
#include <cmath>
#include <cstdio>

#include "ternary_quantizer.hpp"

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) std::printf("FAILED: %s\n", what), ++failures;
}
bool near(double a, double b) { return std::abs(a - b) < 1e-6; }
}  // namespace

int main() {
  // w = [0.1, -0.5, 0.9, -0.05]: mean|w| = 0.3875, Δ = 0.27125; |w| > Δ for -0.5 and 0.9, so α = 0.7
  ternary::TernaryWeight q;
  at::Tensor w = at::tensor({0.1, -0.5, 0.9, -0.05}, at::kDouble).requires_grad_(true);
  at::Tensor x = q.forward(w, 4);
  const double expected[] = {0.0, -0.7, 0.7, 0.0};
  for (int i = 0; i < 4; ++i) check(near(x[i].item<double>(), expected[i]), "ternary weight = α·sign(w)·[|w| > Δ]");
  x.sum().backward();
  check(near(w.grad().sum().item<double>(), 4.0), "straight-through: ∂X/∂w = 1");

  ternary::PactActivation a;
  a.train();
  at::Tensor batch = at::arange(0, 1000, at::kFloat) / 100.0;  // 0.00 .. 9.99: 99th percentile 9.89
  a.forward(batch, 4);
  const double clip = a.named_parameters()["clip_value"].item<double>();
  check(near(clip, 9.89), "clip set to the first training batch's 99th percentile");
  a.forward(batch * 10, 4);
  check(near(a.named_parameters()["clip_value"].item<double>(), clip), "initialised once");
  ternary::PactActivation b;
  b.eval();
  b.forward(batch, 4);
  check(b.named_buffers()["initialized"].item<double>() == 0, "no initialisation outside training");
  ternary::Ternary quantizer(saq::Params("quantizer", "ternary", "test"), saq::Context());
  check(quantizer.refuse_bits({}, 2, 4).empty(), "2-bit weights accepted");
  check(quantizer.refuse_bits({}, 4, 4).find("ternary weights take 2 bits, not 4") != std::string::npos,
        "4-bit weights refused with the reason");
  std::printf("%s\n", failures ? "ternary template test: FAILED" : "ternary template test: passed");
  return failures ? 1 : 0;
}

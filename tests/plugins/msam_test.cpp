// MSAM (plugins/optimizer/sam/msam.hpp) against its update rule (research/efficient-sam.md §4) worked out in plain
// double arithmetic: the first step plain, then one pass at w − ρ·v/‖v‖ with SGD's momentum v; the model holds w
// between steps; on quantized weights the shift lands on Q(w) and the latent weight is not touched.
#include "unit.hpp"

#include <cmath>

#include "sharpness_aware_fixture.hpp"

using namespace saq;
using namespace saq::sa_test;

TEST_CASE("MSAM (latent): step 1 plain; step 2 takes g at w − ρ·v/‖v‖ and SGD steps w with it; w between steps") {
  OneNeuron m;  // w = [0.5, −0.25], b = 0.5, x = [1, 2]; loss (x·w + b)²
  auto opt = make_optimizer(
      "use = \"msam\"\nrho = 0.1\nperturb = \"latent\"\nbase = { use = \"sgd\", lr = 0.1, momentum = 0.9 }\n", m.net);
  std::vector<double> seen;  // the w1 each forward saw
  LossFn loss = [&](const at::Tensor&) {
    seen.push_back(val(m.fc->weight, 0));
    at::Tensor y = m.fc->forward(m.x).flatten();
    return y * y;
  };
  // θ = (w1, w2, b), u = (1, 2, 1): L = (θ·u)², g = 2(θ·u)·u
  auto dot = [](const double* a, const double* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; };
  const double u[3] = {1, 2, 1};
  double th[3] = {0.5, -0.25, 0.5}, v[3];
  double r = dot(th, u);  // 0.5
  for (int i = 0; i < 3; ++i) v[i] = 2 * r * u[i], th[i] -= 0.1 * v[i];  // step 1: v = g, θ1 = θ0 − lr·g
  StepResult r1 = opt->step(loss);
  CHECK(r1.perturbation_norm == 0.0);  // no momentum yet: a plain step
  CHECK(close(m.fc->weight, {th[0], th[1]}));
  // step 2: w̃ = θ1 − ρ·v/‖v‖, g = 2(w̃·u)·u, v = 0.9·v + g, θ2 = θ1 − lr·v
  const double nv = std::sqrt(dot(v, v));
  double tilde[3];
  for (int i = 0; i < 3; ++i) tilde[i] = th[i] - 0.1 * v[i] / nv;
  const double rt = dot(tilde, u);
  for (int i = 0; i < 3; ++i) v[i] = 0.9 * v[i] + 2 * rt * u[i], th[i] -= 0.1 * v[i];
  StepResult r2 = opt->step(loss);
  REQUIRE(seen.size() == 2);  // one pass per step
  CHECK(seen[1] == doctest::Approx(tilde[0]).epsilon(1e-12));
  CHECK(r2.loss == doctest::Approx(rt * rt).epsilon(1e-12));  // the loss at w̃
  CHECK(r2.perturbation_norm == doctest::Approx(0.1).epsilon(1e-12));
  CHECK(close(m.fc->weight, {th[0], th[1]}));  // the model holds θ2, not a perturbed copy
  CHECK(close(m.fc->bias, {th[2]}));
}

TEST_CASE("MSAM (SAQ): the shift −ρ·v_w/‖v_w‖ lands on the quantized weight; the latent weight never moves in the pass") {
  auto net = std::make_shared<Net>();
  auto fc = linear(*net, "fc", 2, 1, false);
  fc->attach(std::make_shared<GainQuantizer>(), std::make_shared<GainQuantizer>());
  fc->set_bits(4, 32);
  net->to(at::kDouble);
  assign(fc->weight, {0.3, 1.7});
  auto opt = make_optimizer("use = \"msam\"\nrho = 0.2\nperturb_activation_clip = false\n"
                            "base = { use = \"sgd\", lr = 0.01, momentum = 0.9 }\n",
                            net);
  const at::Tensor x = dbl({1, 2}).view({1, 2});
  at::Tensor eps_seen, w_seen;
  LossFn loss = [&](const at::Tensor&) {
    eps_seen = fc->perturbation().defined() ? copy(fc->perturbation()) : at::Tensor();
    w_seen = copy(fc->weight);
    at::Tensor y = fc->forward(x);
    return (y * y).flatten();
  };
  opt->step(loss);  // step 1: builds the momentum
  CHECK_FALSE(eps_seen.defined());
  const at::Tensor w1 = copy(fc->weight), v = copy(fc->weight.grad());  // SGD's first buffer is the gradient
  opt->step(loss);
  REQUIRE(eps_seen.defined());
  const double n = std::sqrt((v * v).sum().item<double>());
  CHECK(close(eps_seen, {-0.2 * val(v, 0) / n, -0.2 * val(v, 1) / n}, 1e-12));
  CHECK(at::equal(w_seen, w1));  // the latent weight was not shifted
  CHECK_FALSE(fc->perturbation().defined());  // and the layer dropped ε after the pass
}

TEST_CASE("MSAM needs a base optimizer with momentum") {
  OneNeuron m;
  CHECK_THROWS_WITH(make_optimizer("use = \"msam\"\n" + sgd("0.1"), m.net),
                    doctest::Contains("optimizer.base: MSAM perturbs along the base optimizer's momentum"));
}

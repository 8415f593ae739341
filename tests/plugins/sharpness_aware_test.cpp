// The sharpness-aware optimizers sam and asam (plugins/optimizer/sam) on hand-written models of 1 to 10
// parameters in double precision, against steps worked out by hand from research/algorithms.md §1–2 (the
// arithmetic is in the comments): SAM's one global norm, ASAM's T = |w| + η, SAQ's ε after the quantizer, ρ = 0.
#include "unit.hpp"

#include "sharpness_aware_fixture.hpp"

using namespace saq;
using namespace saq::sa_test;

TEST_CASE("SAM on latent weights: ε = ρ·g/‖g‖ over weight and bias together; the step uses ∇L(w + ε)") {
  OneNeuron m;
  auto opt = make_optimizer("use = \"sam\"\nrho = 0.1\nperturb = \"latent\"\n" + sgd("0.1"), m.net);
  const at::Tensor w0 = copy(m.fc->weight), b0 = copy(m.fc->bias);
  int calls = 0;
  at::Tensor w_seen, b_seen;
  LossFn loss = [&](const at::Tensor&) {
    if (++calls == 2) w_seen = copy(m.fc->weight), b_seen = copy(m.fc->bias);
    at::Tensor y = m.fc->forward(m.x).flatten();
    return y * y;
  };
  StepResult r = opt->step(loss);
  CHECK(calls == 2);
  // clean: r = 1·0.5 + 2·(−0.25) + 0.5 = 0.5, L = 0.25; g = 2r·(x, 1) = (1, 2 | 1), ‖g‖ = √6 over both tensors
  // (per tensor it would be √5 and 1). ε = 0.1·(1, 2 | 1)/√6 = (0.0408248, 0.0816497 | 0.0408248)
  CHECK(r.loss == doctest::Approx(0.25).epsilon(1e-12));
  CHECK(r.rho == 0.1);
  CHECK(close(w_seen, {0.5 + 0.1 / std::sqrt(6.0), -0.25 + 0.2 / std::sqrt(6.0)}));
  CHECK(close(b_seen, {0.5 + 0.1 / std::sqrt(6.0)}));
  CHECK(r.perturbation_norm == doctest::Approx(0.1).epsilon(1e-10));
  // perturbed: r' = r + ρ·‖(x, 1)‖ = 0.5 + 0.1·√6 = 0.7449490, L' = 0.5549490, sharpness = 0.06 + 0.1·√6 = 0.3049490
  CHECK(r.sharpness == doctest::Approx(0.06 + 0.1 * std::sqrt(6.0)).epsilon(1e-10));
  // descent: g' = 2r'·(1, 2 | 1) = 1.4898979·(1, 2 | 1); w = [0.5 − 0.1489898, −0.25 − 0.2979796], b = 0.5 − 0.1489898
  CHECK(close(m.fc->weight, {0.35101020514433645, -0.5479795897113271}));
  CHECK(close(m.fc->bias, {0.35101020514433645}));
  // w was restored bit for bit before SGD's p − lr·g (a restore by subtracting ε would round)
  CHECK(at::equal(m.fc->weight, w0.add(m.fc->weight.grad(), -0.1)));
  CHECK(at::equal(m.fc->bias, b0.add(m.fc->bias.grad(), -0.1)));
}

TEST_CASE("ASAM: ε = ρ·T²g/‖Tg‖ with T = |w| + η on the weight and T = 1 on the bias") {
  OneNeuron m;
  auto opt = make_optimizer("use = \"asam\"\nrho = 0.1\neta = 0.1\nperturb = \"latent\"\n" + sgd("0.1"), m.net);
  at::Tensor w_seen, b_seen;
  int calls = 0;
  LossFn loss = [&](const at::Tensor&) {
    if (++calls == 2) w_seen = copy(m.fc->weight), b_seen = copy(m.fc->bias);
    at::Tensor y = m.fc->forward(m.x).flatten();
    return y * y;
  };
  StepResult r = opt->step(loss);
  // g = (1, 2 | 1); T = (0.6, 0.35 | 1); Tg = (0.6, 0.7 | 1), ‖Tg‖ = √1.85 = 1.3601471, scale = 0.1/‖Tg‖ = 0.0735215
  // ε = scale·T²g = scale·(0.36, 0.245 | 1) = (0.0264677, 0.0180128 | 0.0735215), ‖ε‖ = scale·√1.189625 = 0.0801898
  CHECK(close(w_seen, {0.5 + 0.026467726395377082, -0.25 + 0.01801275824129829}));
  CHECK(close(b_seen, {0.5 + 0.07352146220938079}));
  CHECK(r.perturbation_norm == doctest::Approx(0.08018980861309875).epsilon(1e-10));
  // r' = 0.5 + scale·(0.36 + 2·0.245 + 1) = 0.5 + 0.1·√1.85 = 0.6360147; sharpness = r'² − 0.25 = 0.1545147
  CHECK(r.sharpness == doctest::Approx(0.1545147050873545).epsilon(1e-10));
  // descent: g' = 2r'·(1, 2 | 1) = 1.2720294·(1, 2 | 1); w = [0.5 − 0.1272029, −0.25 − 0.2544059], b = 0.3727971
  CHECK(close(m.fc->weight, {0.37279705898252913, -0.5044058820349417}));
  CHECK(close(m.fc->bias, {0.37279705898252913}));
}

TEST_CASE("ASAM on BatchNorm: γ is scaled by |γ| + η, β is not") {
  auto net = std::make_shared<Net>();
  auto bn = batch_norm2d(*net, "bn", 1);
  net->to(at::kDouble);
  assign(bn->weight, {2.0});
  auto opt = make_optimizer("use = \"asam\"\nrho = 0.1\neta = 0.1\n" + sgd("0.1"), net);
  // two samples z = ±1: batch mean 0, variance 1, ẑ = ±s with s = 1/√(1 + 1e-5); per-sample loss c_i·(γẑ_i + β),
  // c = [1, 3]: L = ((−s + 3s)γ + 4β)/2, g_γ = s, g_β = 2 (linear: the same at every point)
  const at::Tensor z = dbl({-1, 1}).view({2, 1, 1, 1}), c = dbl({1, 3});
  at::Tensor gamma_seen, beta_seen;
  int calls = 0;
  LossFn loss = [&](const at::Tensor&) {
    if (++calls == 2) gamma_seen = copy(bn->weight), beta_seen = copy(bn->bias);
    return bn->forward(z).flatten() * c;
  };
  StepResult r = opt->step(loss);
  const double s = 1 / std::sqrt(1 + 1e-5);
  // T_γ = 2.1, T_β = 1: ‖Tg‖ = √(4.41s² + 4) = 2.8999924; ε_γ = 0.1·4.41·s/2.8999924 = 0.1520686,
  // ε_β = 0.1·2/2.8999924 = 0.0689657; sharpness (linear loss) = ε·g = 0.1·√(4.41s² + 4) = 0.2899992
  // (without T it would be 0.1·√(s² + 4) = 0.2236)
  CHECK(close(gamma_seen, {2.0 + 0.15206860388008786}));
  CHECK(close(beta_seen, {0.06896569805950403}));
  CHECK(r.sharpness == doctest::Approx(0.1 * std::sqrt(4.41 * s * s + 4)).epsilon(1e-10));
  CHECK(r.perturbation_norm == doctest::Approx(0.16697642886010514).epsilon(1e-10));
  // descent: γ = 2 − 0.1·s, β = −0.2
  CHECK(close(bn->weight, {2.0 - 0.1 * s}));
  CHECK(close(bn->bias, {-0.2}));
}

TEST_CASE("SAQ: ε from ∂L/∂Q(w), added after the quantizer; latent weights move only by the base step") {
  auto net = std::make_shared<Net>();
  auto fc = linear(*net, "fc", 2, 1, false);
  auto wq = std::make_shared<GridQuantizer>(2);
  fc->attach(wq, std::make_shared<GridQuantizer>(2));
  fc->set_bits(4, 32);
  net->to(at::kDouble);
  assign(fc->weight, {0.3, 1.7});
  auto opt = make_optimizer("use = \"sam\"\nrho = 0.5\n" + sgd("0.01"), net);  // perturb = "quantized" by default
  const at::Tensor w0 = copy(fc->weight), x = dbl({1, 2}).view({1, 2});
  at::Tensor w_seen, eps_seen, y_seen;
  int calls = 0;
  LossFn loss = [&](const at::Tensor&) {
    at::Tensor y = fc->forward(x);
    if (++calls == 2) w_seen = copy(fc->weight), eps_seen = copy(fc->perturbation()), y_seen = copy(y);
    return (y * y).flatten();
  };
  StepResult r = opt->step(loss);
  REQUIRE(calls == 2);
  // Q(w) with α = 1 and a grid of 0.5: [round(0.6)/2, clamp(1.7) → 1] = [0.5, 1]; y = 0.5 + 2 = 2.5, L = 6.25.
  // ∂L/∂Q = 2y·x = [5, 10] → ε = 0.5·[5, 10]/√125 = [0.2236068, 0.4472136]. (From ∂L/∂w = [5, 0], the clamp
  // stopping the second entry, it would be [0.5, 0].)
  CHECK(r.loss == doctest::Approx(6.25).epsilon(1e-12));
  CHECK(close(eps_seen, {0.22360679774997896, 0.4472135954999579}));
  CHECK(r.perturbation_norm == doctest::Approx(0.5).epsilon(1e-10));
  // second pass: y' = (0.5 + 0.2236068)·1 + (1 + 0.4472136)·2 = 3.6180340 = 2.5 + 0.5·√5, L' = 13.0901699
  CHECK(val(y_seen) == doctest::Approx(3.618033988749895).epsilon(1e-12));
  CHECK(r.sharpness == doctest::Approx(6.8401699437494745).epsilon(1e-10));
  CHECK(at::equal(w_seen, w0));  // the latent weight is not touched
  // descent through the STE: ∂L'/∂W = 2y'·x = [7.2360680, 14.4721360], masked by the clamp: ∂L'/∂w = [7.2360680, 0];
  // w = [0.3 − 0.01·7.2360680, 1.7] = [0.2276393, 1.7]
  CHECK(fc->perturbation().defined() == false);
  CHECK(val(fc->weight, 0) == doctest::Approx(0.2276393202250021).epsilon(1e-12));
  CHECK(val(fc->weight, 1) == 1.7);
  // the clip's gradient from the same pass: ∂Q/∂α = [q − w/α, q] = [0.5 − 0.3, 1] → 7.2360680·0.2 + 14.4721360 =
  // 15.9193496; α = 1 − 0.01·15.9193496 = 0.8408065
  CHECK(val(wq->clip) == doctest::Approx(0.8408065044950046).epsilon(1e-12));
}

TEST_CASE("ρ = 0: one pass gives SGD's parameters bit for bit; two passes (ε = 0) match SGD too") {
  const at::Tensor x = at::sin(at::arange(8, at::kDouble) * 1.3).view({4, 2}), t = dbl({0.5, -1, 2, 0});
  for (bool single : {true, false}) {
    CAPTURE(single);
    OneNeuron a, b;  // here a 2 → 1 model on 4 samples
    auto sam = make_optimizer("use = \"sam\"\nrho = 0.0\nsingle_pass_when_zero = " +
                                  std::string(single ? "true" : "false") + "\n" + sgd("0.1"),
                              a.net);
    auto plain = make_optimizer("use = \"sgd\"\nlr = 0.1\nmomentum = 0", b.net);
    int calls = 0;
    auto loss_of = [&](OneNeuron& m, bool count) -> LossFn {
      return [&m, &calls, count, x, t](const at::Tensor&) {
        calls += count;
        return (m.fc->forward(x).flatten() - t).pow(2);
      };
    };
    for (int step = 0; step < 3; ++step) {
      StepResult r = sam->step(loss_of(a, true));
      plain->step(loss_of(b, false));
      CHECK(r.rho == 0.0);
      if (!single) CHECK(r.perturbation_norm == 0.0);
      if (!single) CHECK(r.sharpness == 0.0);
    }
    CHECK(calls == (single ? 3 : 6));
    CHECK_FALSE(at::equal(a.fc->weight, OneNeuron().fc->weight));  // SGD did move it
    if (single) {
      CHECK(same_state(*a.net, *b.net));
    } else {
      CHECK(at::allclose(a.fc->weight, b.fc->weight, 0, 1e-6));
      CHECK(at::allclose(a.fc->bias, b.fc->bias, 0, 1e-6));
    }
  }
}

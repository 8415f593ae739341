// LookSAM and GSAM (plugins/optimizer/sam) against their update rules (research/efficient-sam.md §2–3) worked out
// here in plain double arithmetic on a 3-parameter model: LookSAM's g_v, its reuse between refreshes and the
// refresh schedule; GSAM's decomposition d = g_p − α·g_⊥ and its ρ_t; SAM as the special case of both; g_v in
// the saved state; bad keys.
#include "unit.hpp"

#include <array>
#include <cmath>

#include "sharpness_aware_fixture.hpp"

using namespace saq;
using namespace saq::sa_test;

namespace {

using Vec = std::array<double, 3>;  // (w1, w2, b)

const std::array<Vec, 2> kU = {Vec{1, 2, 1}, Vec{2, -1, 1}};  // (x_i, 1) of the two samples

double dotv(const Vec& a, const Vec& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec axpy(double s, const Vec& x, const Vec& y) { return {s * x[0] + y[0], s * x[1] + y[1], s * x[2] + y[2]}; }

/// ∇ of mean_i (θ·u_i)² = mean_i 2(θ·u_i)·u_i
Vec grad(const Vec& theta) {
  Vec g{0, 0, 0};
  for (const Vec& u : kU) g = axpy(dotv(theta, u), u, g);  // 2/2 = 1 per sample
  return g;
}

struct TwoSamples {
  OneNeuron m;
  at::Tensor x = dbl({1, 2, 2, -1}).view({2, 2});
  int calls = 0;
  LossFn loss() {
    return [this](const at::Tensor&) {
      ++calls;
      at::Tensor y = m.fc->forward(x).flatten();
      return y * y;
    };
  }
  Vec theta() const { return {val(m.fc->weight, 0), val(m.fc->weight, 1), val(m.fc->bias)}; }
};

Progress at_step(std::int64_t step) {
  Progress p;
  p.epoch = 0, p.epochs = 1, p.step = step, p.steps_per_epoch = 100;
  return p;
}

void check_theta(const TwoSamples& t, const Vec& want) {
  const Vec got = t.theta();
  for (int i = 0; i < 3; ++i) CHECK(got[static_cast<size_t>(i)] == doctest::Approx(want[static_cast<size_t>(i)]).epsilon(1e-12));
}

}  // namespace

TEST_CASE("LookSAM (latent): g_v = g_s − (⟨g_s,g⟩/‖g‖²)·g at a refresh, g + α·‖g‖/‖g_v‖·g_v in between, every k steps") {
  TwoSamples t;
  auto opt = make_optimizer("use = \"looksam\"\nrho = 0.1\nk = 2\nalpha = 0.5\nperturb = \"latent\"\n" + sgd("0.1"), t.m.net);
  const LossFn loss = t.loss();
  const double rho = 0.1, lr = 0.1, alpha = 0.5;
  // step 0, a refresh: g at θ0, ε = ρ·g/‖g‖, g_s at θ0 + ε, g_v kept, θ1 = θ0 − lr·g_s
  const Vec th0 = t.theta(), g0 = grad(th0);
  const Vec g_s = grad(axpy(rho / std::sqrt(dotv(g0, g0)), g0, th0));
  const Vec g_v = axpy(-dotv(g_s, g0) / dotv(g0, g0), g0, g_s);
  REQUIRE(std::abs(dotv(g_v, g_v)) > 1e-6);  // the two samples make g_s leave g's direction
  opt->begin_step(at_step(0));
  StepResult r0 = opt->step(loss);
  CHECK(t.calls == 2);
  CHECK(r0.perturbation_norm == doctest::Approx(rho).epsilon(1e-10));
  const Vec th1 = axpy(-lr, g_s, th0);
  check_theta(t, th1);
  // step 1, a reuse: one pass; d = g + α·‖g‖/‖g_v‖·g_v
  opt->begin_step(at_step(1));
  StepResult r1 = opt->step(loss);
  CHECK(t.calls == 3);
  CHECK(std::isnan(r1.sharpness));  // no perturbed pass to measure it on
  const Vec g1 = grad(th1);
  const Vec d1 = axpy(alpha * std::sqrt(dotv(g1, g1)) / std::sqrt(dotv(g_v, g_v)), g_v, g1);
  const Vec th2 = axpy(-lr, d1, th1);
  check_theta(t, th2);
  // step 2: 2 % k = 0, a refresh again (two passes)
  opt->begin_step(at_step(2));
  opt->step(loss);
  CHECK(t.calls == 5);
  const Vec g2 = grad(th2);
  check_theta(t, axpy(-lr, grad(axpy(rho / std::sqrt(dotv(g2, g2)), g2, th2)), th2));
}

TEST_CASE("LookSAM: g_v is saved with the optimizer, and a loaded copy reuses it to the bit") {
  TwoSamples a, b;
  const std::string body = "use = \"looksam\"\nrho = 0.1\nk = 3\nalpha = 0.7\nperturb = \"latent\"\n" + sgd("0.1");
  auto oa = make_optimizer(body, a.m.net);
  const LossFn la = a.loss(), lb = b.loss();
  oa->begin_step(at_step(0));
  oa->step(la);  // a refresh: g_v set
  StateDict saved;
  oa->save(saved);
  CHECK(saved.child("looksam").integer("parameters") == 2);  // weight and bias
  CHECK(saved.child("looksam").tensor("0").sizes() == a.m.fc->weight.sizes());
  // b: the same weights, a fresh optimizer, the saved state
  {
    at::NoGradGuard g;
    b.m.fc->weight.copy_(a.m.fc->weight);
    b.m.fc->bias.copy_(a.m.fc->bias);
  }
  auto ob = make_optimizer(body, b.m.net);
  ob->load(saved);
  oa->begin_step(at_step(1)), ob->begin_step(at_step(1));
  oa->step(la), ob->step(lb);  // both reuse g_v
  CHECK(b.calls == 1);
  CHECK(at::equal(a.m.fc->weight, b.m.fc->weight));
  CHECK(at::equal(a.m.fc->bias, b.m.fc->bias));
}

TEST_CASE("GSAM (latent): ρ_t follows the learning-rate factor; d = g_p − α·(g − (⟨g,g_p⟩/‖g_p‖²)·g_p)") {
  TwoSamples t;
  auto opt = make_optimizer(
      "use = \"gsam\"\nrho = 0.1\nrho_min = 0.05\nalpha = 0.5\nperturb = \"latent\"\n" + sgd("0.2"), t.m.net);
  opt->set_lr_factor(0.5);  // lr 0.1 now; ρ_t = 0.05 + (0.1 − 0.05)·0.5 = 0.075
  const double rho_t = 0.075, lr = 0.1, alpha = 0.5;
  const Vec th0 = t.theta(), g = grad(th0);
  const Vec g_p = grad(axpy(rho_t / std::sqrt(dotv(g, g)), g, th0));
  const Vec g_perp = axpy(-dotv(g, g_p) / dotv(g_p, g_p), g_p, g);
  const Vec d = axpy(-alpha, g_perp, g_p);
  StepResult r = opt->step(t.loss());
  CHECK(r.rho == doctest::Approx(rho_t).epsilon(1e-12));
  CHECK(r.perturbation_norm == doctest::Approx(rho_t).epsilon(1e-10));
  check_theta(t, axpy(-lr, d, th0));
  CHECK(std::abs(dotv(g_perp, g_p)) < 1e-12);  // (g_⊥ is orthogonal to g_p, as the decomposition says)
}

TEST_CASE("SAQ mode: GSAM with α = 0 and ρ_min = ρ, and LookSAM with k = 1, are SAM to the bit") {
  const std::string base = "rho = 0.2\nbase = { use = \"sgd\", lr = 0.1, momentum = 0.9 }\n";
  for (const std::string& other : {std::string("use = \"gsam\"\nrho_min = 0.2\nalpha = 0.0\n"),
                                   std::string("use = \"looksam\"\nk = 1\n")}) {
    CAPTURE(other);
    SmallNet a, b;
    auto sam = make_optimizer("use = \"sam\"\n" + base, a.net);
    auto opt = make_optimizer(other + base, b.net);
    LossFn la = a.loss(), lb = b.loss();
    for (int step = 0; step < 3; ++step) {
      sam->begin_step(at_step(step)), opt->begin_step(at_step(step));
      StepResult ra = sam->step(la), rb = opt->step(lb);
      CHECK(ra.sharpness == rb.sharpness);
      CHECK(ra.perturbation_norm == rb.perturbation_norm);
    }
    CHECK(same_state(*a.net, *b.net));
  }
}

TEST_CASE("bad LookSAM and GSAM keys are refused naming the key") {
  OneNeuron m;
  CHECK_THROWS_WITH(make_optimizer("use = \"looksam\"\nk = 0\n" + sgd("0.1"), m.net), doctest::Contains("optimizer.k"));
  CHECK_THROWS_WITH(make_optimizer("use = \"looksam\"\nalpha = 1.5\n" + sgd("0.1"), m.net),
                    doctest::Contains("optimizer.alpha"));
  CHECK_THROWS_WITH(make_optimizer("use = \"gsam\"\nrho = 0.05\nrho_min = 0.1\n" + sgd("0.1"), m.net),
                    doctest::Contains("optimizer.rho_min: must be at most rho"));
}

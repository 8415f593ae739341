// The sharpness-aware optimizers sam, asam and esam (plugins/optimizer/sam) on hand-written models of 1 to 10
// parameters in double precision, against steps worked out by hand from research/algorithms.md §1–2 (the
// arithmetic is in the comments): SAM's one global norm, ASAM's T = |w| + η, SAQ's ε after the quantizer, ESAM's
// weight and data selection, exact restores, BatchNorm statistics, ρ schedules and the perturbation flags.
#include "plugin_test.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include <saq/layers.hpp>
#include <saq/model.hpp>
#include <saq/optimizer.hpp>
#include <saq/quantizer.hpp>

#include "session.hpp"

using namespace saq;

namespace {

/// A model made of the layers a test registers on it; the tests' loss functions call those layers themselves.
class Net : public Model {
 public:
  at::Tensor forward(const at::Tensor& x) override { return x; }
};

/// Test double of a quantizer plugin: Q(x) = α·round(n·clamp(x/α, −1, 1))/n with straight-through rounding and a
/// learnable clip α ("clip"); n levels each side whatever the bits.
class GridQuantizer : public TensorQuantizer {
 public:
  explicit GridQuantizer(double levels) : n_(levels) { clip = register_parameter("clip", at::ones({})); }
  at::Tensor forward(const at::Tensor& x, int) override {
    at::Tensor u = at::clamp(x / clip, -1.0, 1.0);
    return (u + (at::round(u * n_) / n_ - u).detach()) * clip;
  }
  at::Tensor clip;

 private:
  double n_;
};

/// Test double: Q(x) = α·x with a learnable α ("clip"), so that losses stay polynomial in every target.
class GainQuantizer : public TensorQuantizer {
 public:
  GainQuantizer() { clip = register_parameter("clip", at::ones({})); }
  at::Tensor forward(const at::Tensor& x, int) override { return x * clip; }
  at::Tensor clip;
};

at::Tensor dbl(const std::vector<double>& v) { return at::tensor(v, at::kDouble); }
void assign(const at::Tensor& p, const std::vector<double>& v) {
  at::NoGradGuard no_grad;
  p.copy_(dbl(v).view(p.sizes()));
}
double val(const at::Tensor& t, std::int64_t i = 0) { return t.flatten()[i].item<double>(); }
at::Tensor copy(const at::Tensor& t) { return t.detach().clone(); }
bool close(const at::Tensor& a, const std::vector<double>& b, double tol = 1e-9) {
  return at::allclose(a.detach().flatten(), dbl(b), 0, tol);
}

/// The optimizer an [optimizer] table with this body builds, as the engine builds it: every parameter of `model`
/// in one group, the model in the context, nested optimizers from the registry.
std::shared_ptr<Optimizer> make_optimizer(const std::string& body, const std::shared_ptr<Model>& model) {
  static const host::HostBuilder builder(test::registry());
  test::TempDir dir;
  host::Pipeline p = test::pipeline_from_text(
      dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"small_cnn\"\n[optimizer]\n" + body +
               "\n[[stage]]\nuse = \"train\"\n");
  Context ctx;
  ctx.build = &builder;
  ctx.model = model;
  ctx.groups = {ParamGroup{"all", model->parameters(), std::nullopt, std::nullopt}};
  const host::Registry& reg = test::registry();
  return reg.make<Optimizer>(reg.require(Kind::Optimizer, p.optimizer->use(), "test"), *p.optimizer, ctx);
}

/// The base optimizer table: plain SGD at `lr`.
std::string sgd(const std::string& lr) { return "base = { use = \"sgd\", lr = " + lr + ", momentum = 0 }\n"; }

/// fc: 2 → 1 with bias, w = [0.5, −0.25], b = 0.5; the loss of the sample x = [1, 2] is (x·w + b)².
struct OneNeuron {
  std::shared_ptr<Net> net = std::make_shared<Net>();
  std::shared_ptr<LinearLayer> fc = linear(*net, "fc", 2, 1, true);
  at::Tensor x = dbl({1, 2}).view({1, 2});
  OneNeuron() {
    net->to(at::kDouble);
    assign(fc->weight, {0.5, -0.25});
    assign(fc->bias, {0.5});
  }
};

/// BN(1) → conv 1×1 (1 → 2, bias, grid quantizers) → ReLU → spatial mean → fc (2 → 3, bias, grid quantizers),
/// with fixed weights: two instances are identical.
struct SmallNet {
  std::shared_ptr<Net> net = std::make_shared<Net>();
  std::shared_ptr<BatchNorm2dLayer> bn = batch_norm2d(*net, "bn", 1);
  std::shared_ptr<Conv2dLayer> conv = conv2d(*net, "conv", ConvSpec{1, 2, 1, 1, 0, 1, true});
  std::shared_ptr<LinearLayer> fc = linear(*net, "fc", 2, 3, true);
  SmallNet() {
    conv->attach(std::make_shared<GridQuantizer>(7), std::make_shared<GridQuantizer>(7));
    fc->attach(std::make_shared<GridQuantizer>(7), std::make_shared<GridQuantizer>(7));
    conv->set_bits(4, 4);
    fc->set_bits(8, 8);
    net->to(at::kDouble);
    assign(conv->weight, {0.8, -0.6});
    assign(conv->bias, {0.1, 0.2});
    assign(fc->weight, {0.5, -0.4, 0.3, 0.2, -0.1, 0.6});
    assign(fc->bias, {0.05, -0.05, 0.1});
  }
  /// Per-sample squared error over 8 fixed 2×2 images (rows `rows`, or all).
  LossFn loss() const {
    at::Tensor x = at::sin(at::arange(32, at::kDouble) * 1.3).view({8, 1, 2, 2});
    at::Tensor t = at::cos(at::arange(24, at::kDouble)).view({8, 3});
    return [x, t, bn = bn, conv = conv, fc = fc](const at::Tensor& rows) {
      at::Tensor xs = rows.defined() ? x.index_select(0, rows) : x, ts = rows.defined() ? t.index_select(0, rows) : t;
      at::Tensor h = at::relu(conv->forward(bn->forward(xs))).mean({2, 3});
      return (fc->forward(h) - ts).pow(2).sum(1);
    };
  }
};

bool same_state(const torch::nn::Module& a, const torch::nn::Module& b) {
  for (const auto& p : a.named_parameters())
    if (!at::equal(p.value(), b.named_parameters()[p.key()])) return false;
  for (const auto& p : a.named_buffers())
    if (!at::equal(p.value(), b.named_buffers()[p.key()])) return false;
  return true;
}

}  // namespace

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

TEST_CASE("ESAM with β = 1 and γ = 1 is SAM: identical state after 3 steps") {
  SmallNet a, b;
  REQUIRE(same_state(*a.net, *b.net));
  const std::string base = "rho = 0.2\nbase = { use = \"sgd\", lr = 0.1, momentum = 0.9 }\n";
  auto sam = make_optimizer("use = \"sam\"\n" + base, a.net);
  auto esam = make_optimizer("use = \"esam\"\nbeta = 1.0\ngamma = 1.0\n" + base, b.net);
  LossFn la = a.loss(), lb = b.loss();
  for (int step = 0; step < 3; ++step) {
    StepResult ra = sam->step(la), rb = esam->step(lb);
    CHECK(ra.sharpness == rb.sharpness);
    CHECK(ra.perturbation_norm == rb.perturbation_norm);
  }
  CHECK(same_state(*a.net, *b.net));
  SmallNet fresh;
  CHECK_FALSE(same_state(*a.net, *fresh.net));  // the steps did move it
}

TEST_CASE("ESAM data selection: the second pass gets ⌊γ·B⌋ rows, those whose loss rose most under ε") {
  // fc 1 → 1, w = 1, no bias; sample i has input a_i and loss a_i·w + c_i. g = mean(a) = 0.9375 > 0, so
  // ε = +ρ = +0.1 and the rise of sample i is 0.1·a_i: [0.05, −0.1, 0.3, 0.2, −0.2, 0.1, 0, 0.4].
  // The offsets c make the largest clean losses (rows 6, 0, 1, 4) other rows than the largest rises.
  const at::Tensor a = dbl({0.5, -1, 3, 2, -2, 1, 0, 4}), c = dbl({5, 6, 0, 0, 7, 0, 9, 0});
  struct Case {
    double gamma;
    std::vector<std::int64_t> rows;  // sorted
  };
  // ⌊0.5·8⌋ = 4 → rises 0.4, 0.3, 0.2, 0.1 = rows 7, 2, 3, 5; ⌊0.3·8⌋ = ⌊2.4⌋ = 2 → rows 7, 2;
  // ⌊0.7·8⌋ = ⌊5.6⌋ = 5 → adds row 0 (0.05)
  for (const Case& k : {Case{0.5, {2, 3, 5, 7}}, Case{0.3, {2, 7}}, Case{0.7, {0, 2, 3, 5, 7}}}) {
    CAPTURE(k.gamma);
    auto net = std::make_shared<Net>();
    auto fc = linear(*net, "fc", 1, 1, false);
    net->to(at::kDouble);
    assign(fc->weight, {1.0});
    auto opt = make_optimizer("use = \"esam\"\nrho = 0.1\nbeta = 1.0\ngamma = " + std::to_string(k.gamma) + "\n" +
                                  sgd("0.1"),
                              net);
    std::vector<at::Tensor> seen;
    LossFn loss = [&](const at::Tensor& rows) {
      seen.push_back(rows);
      at::Tensor xs = rows.defined() ? a.index_select(0, rows) : a, cs = rows.defined() ? c.index_select(0, rows) : c;
      return fc->forward(xs.view({-1, 1})).flatten() + cs;
    };
    StepResult r = opt->step(loss);
    // clean (all rows), perturbed without gradient (all rows), then the selected rows
    REQUIRE(seen.size() == 3);
    CHECK_FALSE(seen[0].defined());
    CHECK_FALSE(seen[1].defined());
    REQUIRE(seen[2].defined());
    std::vector<std::int64_t> got(seen[2].data_ptr<std::int64_t>(), seen[2].data_ptr<std::int64_t>() + seen[2].numel());
    std::sort(got.begin(), got.end());
    CHECK(got == k.rows);
    // clean loss mean((a + c)) = 34.5/8 = 4.3125; sharpness = mean rise = 0.1·0.9375
    CHECK(r.loss == doctest::Approx(4.3125).epsilon(1e-12));
    CHECK(r.sharpness == doctest::Approx(0.09375).epsilon(1e-10));
    // the descent gradient is the mean a over the selected rows: w = 1 − 0.1·mean(a[rows])
    double mean_a = 0;
    for (auto i : k.rows) mean_a += a[i].item<double>() / static_cast<double>(k.rows.size());
    CHECK(val(fc->weight) == doctest::Approx(1 - 0.1 * mean_a).epsilon(1e-12));
  }
}

TEST_CASE("ESAM weight selection: each tensor is perturbed in about β of the steps, ε scaled by 1/β") {
  // fc 1 → 1 with bias, loss 4·(w·x_i + b) over x = [0.5, 1]: g_w = 4·0.75 = 3, g_b = 4, ‖g‖ = 5 (linear loss).
  // ρ = 0.1, β = 0.4: both chosen → ε = (0.1/0.4)·(3, 4)/5 = (0.15, 0.2); one alone → 0.25 on it; none → 0.
  auto net = std::make_shared<Net>();
  auto fc = linear(*net, "fc", 1, 1, true);
  net->to(at::kDouble);
  assign(fc->weight, {1.0});
  assign(fc->bias, {0.0});
  auto opt = make_optimizer("use = \"esam\"\nrho = 0.1\nbeta = 0.4\ngamma = 1.0\nperturb = \"latent\"\n" + sgd("0.1"),
                            net);
  opt->set_lr_factor(0.0);  // nothing moves between steps
  const at::Tensor x = dbl({0.5, 1}).view({2, 1});
  double ew = 0, eb = 0;
  int calls = 0;
  LossFn loss = [&](const at::Tensor&) {
    if (++calls % 2 == 0) ew = val(fc->weight) - 1.0, eb = val(fc->bias);
    return 4 * fc->forward(x).flatten();
  };
  const int steps = 1000;
  int w_moved = 0, b_moved = 0, both = 0;
  bool sizes_ok = true;
  for (int i = 0; i < steps; ++i) {
    StepResult r = opt->step(loss);
    const bool w = ew != 0, b = eb != 0;
    w_moved += w, b_moved += b, both += w && b;
    const double norm = w || b ? 0.25 : 0.0;
    if (w && b) sizes_ok &= std::abs(ew - 0.15) < 1e-12 && std::abs(eb - 0.2) < 1e-12;
    else if (w) sizes_ok &= std::abs(ew - 0.25) < 1e-12;
    else if (b) sizes_ok &= std::abs(eb - 0.25) < 1e-12;
    sizes_ok &= std::abs(r.perturbation_norm - norm) < 1e-12;
  }
  CHECK(calls == 2 * steps);
  CHECK(sizes_ok);
  // Binomial(1000, 0.4): mean 400, sd 15.5 → 5 sd: [322, 478]; both: Binomial(1000, 0.16), sd 11.6 → [102, 218]
  CHECK(w_moved >= 322);
  CHECK(w_moved <= 478);
  CHECK(b_moved >= 322);
  CHECK(b_moved <= 478);
  CHECK(both >= 102);
  CHECK(both <= 218);
  CHECK(val(fc->weight) == 1.0);
  CHECK(val(fc->bias) == 0.0);
}

TEST_CASE("every perturbed tensor is restored bit for bit (base lr = 0)") {
  for (const char* mode : {"quantized", "latent"}) {
    CAPTURE(mode);
    SmallNet m;
    auto opt = make_optimizer(std::string("use = \"sam\"\nrho = 0.5\nperturb_weight_clip = true\nperturb = \"") + mode +
                                  "\"\n" + sgd("0.1"),
                              m.net);
    opt->set_lr_factor(0.0);
    std::vector<std::pair<std::string, at::Tensor>> before;
    for (const auto& p : m.net->named_parameters()) before.emplace_back(p.key(), copy(p.value()));
    std::vector<std::string> moved;
    const LossFn inner = m.loss();
    int calls = 0;
    LossFn loss = [&](const at::Tensor& rows) {
      if (++calls == 2)
        for (const auto& [name, value] : before)
          if (!at::equal(m.net->named_parameters()[name], value)) moved.push_back(name);
      return inner(rows);
    };
    opt->step(loss);
    // in the second pass the clips, biases and BN γ/β sit at w + ε; the latent weights too when perturb = "latent"
    std::vector<std::string> expected = {"bn.weight",
                                         "bn.bias",
                                         "conv.bias",
                                         "conv.weight_quantizer.clip",
                                         "conv.activation_quantizer.clip",
                                         "fc.bias",
                                         "fc.weight_quantizer.clip",
                                         "fc.activation_quantizer.clip"};
    if (std::string(mode) == "latent") expected.insert(expected.end(), {"conv.weight", "fc.weight"});
    std::sort(expected.begin(), expected.end());
    std::sort(moved.begin(), moved.end());
    CHECK(moved == expected);
    for (const auto& [name, value] : before) {
      CAPTURE(name);
      CHECK(at::equal(m.net->named_parameters()[name], value));
    }
    CHECK_FALSE(m.conv->perturbation().defined());
    CHECK_FALSE(m.fc->perturbation().defined());
  }
}

TEST_CASE("bn_second_pass: \"freeze\" keeps the clean pass's running statistics, \"update\" moves them twice") {
  // BN(1) on z = [1, 2, 3, 6] (a batch of four 1×1 images); loss c_i·(γẑ_i + β), c = [1, 2, 3, 4]. The input is
  // not perturbed, so both passes see mean 3 and unbiased variance (4 + 1 + 0 + 9)/3 = 14/3.
  const at::Tensor z = dbl({1, 2, 3, 6}).view({4, 1, 1, 1}), c = dbl({1, 2, 3, 4});
  struct Case {
    std::string body;
    bool freeze;
  };
  // ESAM with γ < 1 runs two perturbed passes (all rows without gradient, then the selected rows): frozen in both
  for (const Case& k : {Case{"use = \"sam\"\nbn_second_pass = \"freeze\"", true},
                        Case{"use = \"sam\"\nbn_second_pass = \"update\"", false},
                        Case{"use = \"esam\"\nbeta = 1.0\ngamma = 0.5\nbn_second_pass = \"freeze\"", true}}) {
    CAPTURE(k.body);
    auto net = std::make_shared<Net>();
    auto bn = batch_norm2d(*net, "bn", 1);
    net->to(at::kDouble);
    auto opt = make_optimizer(k.body + "\nrho = 0.1\n" + sgd("0.1"), net);
    opt->step([&](const at::Tensor& rows) {
      at::Tensor zs = rows.defined() ? z.index_select(0, rows) : z, cs = rows.defined() ? c.index_select(0, rows) : c;
      return bn->forward(zs).flatten() * cs;
    });
    CHECK(bn->momentum == 0.1);
    if (k.freeze) {
      // one update: mean 0.9·0 + 0.1·3 = 0.3, var 0.9·1 + 0.1·14/3 = 1.3666667
      CHECK(close(bn->running_mean, {0.3}, 1e-12));
      CHECK(close(bn->running_var, {0.9 + 0.1 * 14.0 / 3.0}, 1e-12));
      auto clean_only = std::make_shared<BatchNorm2dLayer>(1);  // the clean pass alone, on a fresh layer
      clean_only->to(at::kDouble);
      clean_only->forward(z);
      CHECK(at::equal(bn->running_mean, clean_only->running_mean));
      CHECK(at::equal(bn->running_var, clean_only->running_var));
    } else {
      // two updates: mean 0.9·0.3 + 0.1·3 = 0.57, var 0.9·1.3666667 + 0.1·14/3 = 0.81 + 0.19·14/3 = 1.6966667
      CHECK(close(bn->running_mean, {0.57}, 1e-12));
      CHECK(close(bn->running_var, {0.81 + 0.19 * 14.0 / 3.0}, 1e-12));
    }
  }
}

TEST_CASE("ρ schedules: constant, linear and cosine to rho_final, warm-up epochs at 0") {
  // ρ = 0.2, rho_final = 0.05, 10 epochs of 4 steps; t = (epoch − warm-up)/(10 − warm-up), capped at 1
  auto rho_at = [](const std::string& schedule, double warmup, std::int64_t epoch, std::int64_t step) {
    OneNeuron m;
    auto opt = make_optimizer("use = \"sam\"\nrho = 0.2\nrho_final = 0.05\nrho_schedule = \"" + schedule +
                                  "\"\nrho_warmup_epochs = " + std::to_string(warmup) + "\n" + sgd("0.1"),
                              m.net);
    opt->begin_step(Progress{epoch, 10, step, 4});
    StepResult r = opt->step([&](const at::Tensor&) { return m.fc->forward(m.x).flatten().pow(2); });
    if (r.rho == 0.0) CHECK(std::isnan(r.sharpness));  // single pass at ρ = 0 (the default)
    return r.rho;
  };
  CHECK(rho_at("constant", 0, 0, 0) == doctest::Approx(0.2));
  CHECK(rho_at("constant", 0, 9, 3) == doctest::Approx(0.2));
  // linear ρ + (ρf − ρ)·t: epoch 2.5 → 0.2 − 0.15·0.25 = 0.1625; 9.5 → 0.2 − 0.15·0.95 = 0.0575
  CHECK(rho_at("linear", 0, 0, 0) == doctest::Approx(0.2));
  CHECK(rho_at("linear", 0, 2, 2) == doctest::Approx(0.1625));
  CHECK(rho_at("linear", 0, 9, 2) == doctest::Approx(0.0575));
  // cosine ρf + (ρ − ρf)·(1 + cos πt)/2: 2.5 → 0.05 + 0.075·(1 + cos(π/4)) = 0.1780330; 5 → 0.125; 0 → 0.2
  CHECK(rho_at("cosine", 0, 2, 2) == doctest::Approx(0.17803300858899107));
  CHECK(rho_at("cosine", 0, 5, 0) == doctest::Approx(0.125));
  CHECK(rho_at("cosine", 0, 0, 0) == doctest::Approx(0.2));
  // warm-up 2 epochs: 0 before epoch 2, then t = (epoch − 2)/8: 1.75 → 0; 2 → 0.2; 6 → t = 0.5
  CHECK(rho_at("linear", 2, 1, 3) == 0.0);
  CHECK(rho_at("linear", 2, 2, 0) == doctest::Approx(0.2));
  CHECK(rho_at("linear", 2, 6, 0) == doctest::Approx(0.125));
  CHECK(rho_at("cosine", 2, 6, 0) == doctest::Approx(0.125));
  CHECK(rho_at("constant", 1, 0, 2) == 0.0);
  CHECK(rho_at("constant", 1, 1, 0) == doctest::Approx(0.2));
}

TEST_CASE("the perturbation flags: an excluded tensor gets no ε and leaves the norm") {
  // fc 1 → 1 with bias and gain quantizers (X = α_w·w, input α_a·x), plus a separate BN(1) branch; per sample
  // ℓ_i = c_i·(X·α_a·x_i + b + γẑ_i + β) with w = 2, α_w = α_a = γ = 1, b = β = 0, x = [1, 3], z = [−1, 1]
  // (ẑ = ±s, s = 1/√(1 + 1e-5)), c = [1, 3]. With m = Σc_i x_i/2 = 5: clean gradients
  //   X: α_a·m = 5   b: Σc_i/2 = 2   α_a: X·m = 10   α_w: g_X·w = 10   γ: (−s + 3s)/2 = s   β: 2
  const double s = 1 / std::sqrt(1 + 1e-5), rho = 0.1;
  struct Case {
    std::string flags;
    bool x, b, aa, aw, bn;
    double norm2;
  };
  // the defaults perturb X, b, α_a, γ, β: ‖g‖² = 25 + 4 + 100 + s² + 4 = 133 + s²
  const std::vector<Case> cases = {
      {"", true, true, true, false, true, 133 + s * s},
      {"perturb_weight_clip = true", true, true, true, true, true, 233 + s * s},
      {"perturb_activation_clip = false", true, true, false, false, true, 33 + s * s},
      {"perturb_bias = false", true, false, true, false, true, 129 + s * s},
      {"perturb_batch_norm = false", true, true, true, false, false, 129},
  };
  for (const Case& k : cases) {
    CAPTURE(k.flags);
    auto net = std::make_shared<Net>();
    auto fc = linear(*net, "fc", 1, 1, true);
    auto wq = std::make_shared<GainQuantizer>(), aq = std::make_shared<GainQuantizer>();
    fc->attach(wq, aq);
    fc->set_bits(8, 8);
    auto bn = batch_norm2d(*net, "bn", 1);
    net->to(at::kDouble);
    assign(fc->weight, {2.0});
    assign(fc->bias, {0.0});
    auto opt = make_optimizer("use = \"sam\"\nrho = 0.1\n" + k.flags + "\n" + sgd("0.1"), net);
    const at::Tensor x = dbl({1, 3}).view({2, 1}), z = dbl({-1, 1}).view({2, 1, 1, 1}), c = dbl({1, 3});
    double e_x = 0, e_b = 0, e_aa = 0, e_aw = 0, e_g = 0, e_be = 0;
    int calls = 0;
    LossFn loss = [&](const at::Tensor&) {
      if (++calls == 2) {
        e_x = fc->perturbation().defined() ? val(fc->perturbation()) : 0.0;
        e_b = val(fc->bias), e_aa = val(aq->clip) - 1, e_aw = val(wq->clip) - 1;
        e_g = val(bn->weight) - 1, e_be = val(bn->bias);
      }
      return c * (fc->forward(x).flatten() + bn->forward(z).flatten());
    };
    StepResult r = opt->step(loss);
    // ε_t = ρ·g_t/‖g‖ over the included tensors, 0 for the others
    const double n = std::sqrt(k.norm2);
    const double x_ = k.x ? rho * 5 / n : 0.0, b_ = k.b ? rho * 2 / n : 0.0, aa = k.aa ? rho * 10 / n : 0.0,
                 aw = k.aw ? rho * 10 / n : 0.0, g_ = k.bn ? rho * s / n : 0.0, be = k.bn ? rho * 2 / n : 0.0;
    CHECK(e_x == doctest::Approx(x_).epsilon(1e-10));
    CHECK(e_b == doctest::Approx(b_).epsilon(1e-10));
    CHECK(e_aa == doctest::Approx(aa).epsilon(1e-10));
    CHECK(e_aw == doctest::Approx(aw).epsilon(1e-10));
    CHECK(e_g == doctest::Approx(g_).epsilon(1e-10));
    CHECK(e_be == doctest::Approx(be).epsilon(1e-10));
    CHECK(r.perturbation_norm == doctest::Approx(rho).epsilon(1e-10));
    // L' − L = m·[(X + w·ε_αw + ε_X)(α_a + ε_αa) − X·α_a] + 2ε_b + s·ε_γ + 2ε_β (ẑ is the same in both passes)
    const double sharp = 5 * ((2 + 2 * aw + x_) * (1 + aa) - 2) + 2 * b_ + s * g_ + 2 * be;
    CHECK(r.sharpness == doctest::Approx(sharp).epsilon(1e-10));
  }
}

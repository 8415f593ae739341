// ESAM's weight and data selection, exact restores, BatchNorm statistics in the second pass, ρ schedules and the
// perturbation flags of the sharpness-aware optimizers, against hand computations (research/algorithms.md §1–2).
#include "unit.hpp"

#include <tuple>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>

#include "sharpness_aware_fixture.hpp"

using namespace saq;
using namespace saq::sa_test;

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

namespace {
/// Records, on a conv's backward node, whether the node computed its weight gradient (grad_inputs[1]).
struct WeightGradientSeen : torch::autograd::FunctionPostHook {
  explicit WeightGradientSeen(int& count) : count(count) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& grad_inputs,
                                            const torch::autograd::variable_list&) override {
    if (grad_inputs.size() > 1 && grad_inputs[1].defined()) ++count;
    return grad_inputs;
  }
  int& count;
};
}  // namespace

// Checked on the autograd graph itself: a post-hook on each conv's backward node sees which gradients the node
// produced. In the ascent pass (the first backward) the weight gradient is produced for the layers the draw chose
// and only those, which then carry ε, ‖ε‖ = ρ/β over them; the descent pass produces every one.
TEST_CASE("ESAM: tensors the draw leaves out get no weight gradient in the ascent pass, and no ε") {
  auto net = std::make_shared<Net>();
  auto c1 = conv2d(*net, "c1", ConvSpec{1, 2, 1, 1, 0, 1, false});
  auto c2 = conv2d(*net, "c2", ConvSpec{2, 2, 1, 1, 0, 1, false});
  for (const auto& c : {c1, c2}) {
    c->attach(std::make_shared<GridQuantizer>(7), std::make_shared<GridQuantizer>(7));
    c->set_bits(4, 4);
  }
  net->to(at::kDouble);
  assign(c1->weight, {0.8, -0.6});
  assign(c2->weight, {0.5, -0.4, 0.3, 0.2});
  auto opt = make_optimizer("use = \"esam\"\nrho = 0.1\nbeta = 0.5\ngamma = 1.0\nperturb_activation_clip = false\n" +
                                sgd("0.01"),
                            net);
  const at::Tensor x = at::sin(at::arange(32, at::kDouble) * 1.3).view({8, 1, 2, 2}).abs();
  const std::vector<std::shared_ptr<Conv2dLayer>> layers = {c1, c2};
  int pass = 0;
  std::vector<std::vector<int>> computed;      // [pass][layer]: weight gradients the conv's node produced
  std::vector<bool> perturbed(layers.size());  // in the descent pass: the layer carries ε
  LossFn loss = [&](const at::Tensor&) {
    if (pass == 1)
      for (std::size_t i = 0; i < layers.size(); ++i) perturbed[i] = layers[i]->perturbation().defined();
    std::vector<int>& seen = computed[static_cast<std::size_t>(pass++)];
    at::Tensor h = c1->forward(x);
    h.grad_fn()->add_post_hook(std::make_unique<WeightGradientSeen>(seen[0]));
    at::Tensor y = c2->forward(at::relu(h));
    y.grad_fn()->add_post_hook(std::make_unique<WeightGradientSeen>(seen[1]));
    return y.pow(2).mean({1, 2, 3});
  };
  int one = 0, both = 0, none = 0;
  for (int step = 0; step < 200; ++step) {
    pass = 0;
    computed.assign(2, std::vector<int>(layers.size(), 0));
    StepResult r = opt->step(loss);
    REQUIRE(pass == 2);
    int chosen = 0;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      CHECK(computed[0][i] == (perturbed[i] ? 1 : 0));  // ascent: a weight gradient exactly for the chosen
      CHECK(computed[1][i] == 1);                       // descent: every weight gradient
      chosen += perturbed[i];
    }
    CHECK(r.perturbation_norm == doctest::Approx(chosen ? 0.1 / 0.5 : 0.0).epsilon(1e-6));  // (the 1e-12 in ‖g‖ + 1e-12)
    one += chosen == 1, both += chosen == 2, none += chosen == 0;
  }
  // outcomes of probability 1/4, 1/2, 1/4: each occurs in 200 steps
  CHECK(both > 20);
  CHECK(none > 20);
  CHECK(one > 60);
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
    for (const auto& item : before) {
      const auto& name = std::get<0>(item);
      const auto& value = std::get<1>(item);
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

// SGD, Adam and AdamW through TorchOptimizer, against updates worked out by hand.
#include "unit.hpp"

#include <tuple>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include <saq/registrar.hpp>
#include <saq/torch_file.hpp>
#include <saq/torch_optimizer.hpp>

namespace saq {

namespace {

/// The optimizer's Params: every schema default, then `values` (as the host fills a section).
Params params_for(const std::string& use, const std::map<std::string, Value>& values) {
  const auto& c = test::registry().require(Kind::Optimizer, use, "test");
  Params p("optimizer", use, "test");
  for (const auto& s : c.desc.schema.specs()) p.set(s.name, *s.fallback, "default");
  for (const auto& item : values) {
    const auto& k = std::get<0>(item);
    const auto& v = std::get<1>(item);
    REQUIRE_MESSAGE(c.desc.schema.find(k) != nullptr, use, " has no key ", k);
    p.set(k, v, "test");
  }
  return p;
}

std::shared_ptr<Optimizer> make(const Params& p, std::vector<ParamGroup> groups) {
  Context ctx;
  ctx.groups = std::move(groups);
  const auto& reg = test::registry();
  return reg.make<Optimizer>(reg.require(Kind::Optimizer, p.use(), "test"), p, ctx);
}

std::vector<ParamGroup> one_group(const at::Tensor& w) { return {ParamGroup{"all", {w}, std::nullopt, std::nullopt}}; }

/// Two samples with losses w0² and 3·w1²: their mean (w0² + 3·w1²)/2 has gradient [w0, 3·w1].
LossFn quadratic(const at::Tensor& w) {
  return [w](const at::Tensor&) { return w * w * at::tensor({1.0, 3.0}, at::kDouble); };
}

double at_(const at::Tensor& w, std::int64_t i) { return w[i].item<double>(); }

}  // namespace

TEST_CASE("SGD with Nesterov momentum 0.9 and weight decay 0.01, two steps") {
  at::Tensor w = at::tensor({1.0, -2.0}, at::kDouble).set_requires_grad(true);
  auto opt = make(params_for("sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"weight_decay", 0.01}, {"nesterov", true}}),
                  one_group(w));
  // step 1: g = [1, −6]; d = g + 0.01w = [1.01, −6.02]; b = d; update d + 0.9b = 1.9d = [1.919, −11.438]
  //         w = [1 − 0.1919, −2 + 1.1438] = [0.8081, −0.8562]; the loss reported is (1 + 3·4)/2 = 6.5
  StepResult r = opt->step(quadratic(w));
  CHECK(r.loss == doctest::Approx(6.5).epsilon(1e-12));
  CHECK(at_(w, 0) == doctest::Approx(0.8081).epsilon(1e-12));
  CHECK(at_(w, 1) == doctest::Approx(-0.8562).epsilon(1e-12));
  // step 2: g = [0.8081, −2.5686]; d = g + 0.01w = [0.816181, −2.577162];
  //         b = 0.9·[1.01, −6.02] + d = [1.725181, −7.995162]; update d + 0.9b = [2.3688439, −9.7728078]
  //         w = [0.8081 − 0.23688439, −0.8562 + 0.97728078] = [0.57121561, 0.12108078]
  opt->step(quadratic(w));
  CHECK(at_(w, 0) == doctest::Approx(0.57121561).epsilon(1e-12));
  CHECK(at_(w, 1) == doctest::Approx(0.12108078).epsilon(1e-12));
}

TEST_CASE("SGD with plain momentum 0.9 and weight decay 0.01, two steps") {
  at::Tensor w = at::tensor({1.0, -2.0}, at::kDouble).set_requires_grad(true);
  auto opt = make(params_for("sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"weight_decay", 0.01}}), one_group(w));
  // step 1: b = d = [1.01, −6.02]; w = [1 − 0.101, −2 + 0.602] = [0.899, −1.398]
  opt->step(quadratic(w));
  CHECK(at_(w, 0) == doctest::Approx(0.899).epsilon(1e-12));
  CHECK(at_(w, 1) == doctest::Approx(-1.398).epsilon(1e-12));
  // step 2: d = [0.899 + 0.00899, −4.194 − 0.01398] = [0.90799, −4.20798];
  //         b = [0.909 + 0.90799, −5.418 − 4.20798] = [1.81699, −9.62598]; w = [0.717301, −0.435402]
  opt->step(quadratic(w));
  CHECK(at_(w, 0) == doctest::Approx(0.717301).epsilon(1e-12));
  CHECK(at_(w, 1) == doctest::Approx(-0.435402).epsilon(1e-12));
}

TEST_CASE("Adam's bias-corrected first step moves each weight by lr·g/(|g| + eps), and its second as the rule says") {
  at::Tensor w = at::tensor({1.0, -2.0}, at::kDouble).set_requires_grad(true);
  auto opt = make(params_for("adam", {{"lr", 0.01}}), one_group(w));  // β = (0.9, 0.999), eps 1e-8
  // step 1: m̂ = 0.1g/0.1 = g, v̂ = 0.001g²/0.001 = g²: w −= 0.01·g/(|g| + 1e-8)
  //         w0 = 1 − 0.01/(1 + 1e-8) = 0.9900000001;  w1 = −2 + 0.01·6/(6 + 1e-8) = −1.99000000001667
  opt->step(quadratic(w));
  CHECK(at_(w, 0) == doctest::Approx(1.0 - 0.01 / (1.0 + 1e-8)).epsilon(1e-13));
  CHECK(at_(w, 1) == doctest::Approx(-2.0 + 0.01 * 6.0 / (6.0 + 1e-8)).epsilon(1e-13));
  // step 2, w0: g = 0.99; m = 0.9·0.1 + 0.1·0.99 = 0.189, m̂ = 0.189/0.19 = 0.9947368;
  //   v = 0.999·0.001 + 0.001·0.9801 = 0.0019791, v̂ = 0.0019791/0.001999 = 0.9900450, √v̂ = 0.9950101;
  //   w0 = 0.99 − 0.01·0.9947368/0.9950101 = 0.9800027
  opt->step(quadratic(w));
  CHECK(at_(w, 0) == doctest::Approx(0.98000274609637).epsilon(1e-11));
  CHECK(at_(w, 1) == doctest::Approx(-1.9800013379872605).epsilon(1e-11));
}

TEST_CASE("Adam adds weight decay to the gradient; AdamW shrinks the weight apart from it") {
  at::Tensor a = at::tensor({1.0, -2.0}, at::kDouble).set_requires_grad(true);
  at::Tensor b = at::tensor({1.0, -2.0}, at::kDouble).set_requires_grad(true);
  auto adam = make(params_for("adam", {{"lr", 0.01}, {"weight_decay", 0.1}}), one_group(a));
  auto adamw = make(params_for("adamw", {{"lr", 0.01}, {"weight_decay", 0.1}}), one_group(b));
  adam->step(quadratic(a));
  adamw->step(quadratic(b));
  // Adam: d = g + 0.1w = [1.1, −6.2]; the first step is still lr·sign(d): [0.99, −1.99]
  CHECK(at_(a, 0) == doctest::Approx(1.0 - 0.01 * 1.1 / (1.1 + 1e-8)).epsilon(1e-13));
  CHECK(at_(a, 1) == doctest::Approx(-2.0 + 0.01 * 6.2 / (6.2 + 1e-8)).epsilon(1e-13));
  // AdamW: w·(1 − 0.01·0.1) then −lr·sign(g): [0.999 − 0.01, −1.998 + 0.01] = [0.989, −1.988]
  CHECK(at_(b, 0) == doctest::Approx(0.999 - 0.01 / (1.0 + 1e-8)).epsilon(1e-13));
  CHECK(at_(b, 1) == doctest::Approx(-1.998 + 0.01 * 6.0 / (6.0 + 1e-8)).epsilon(1e-13));
}

TEST_CASE("group overrides of lr and weight decay are honoured, and set_lr_factor scales every group's base rate") {
  at::Tensor a = at::tensor({2.0}, at::kDouble).set_requires_grad(true);
  at::Tensor b = at::tensor({3.0}, at::kDouble).set_requires_grad(true);
  auto opt = make(params_for("sgd", {{"lr", 0.1}, {"momentum", 0.0}, {"weight_decay", 0.1}}),
                  {ParamGroup{"main", {a}, std::nullopt, std::nullopt}, ParamGroup{"fast", {b}, 0.5, 0.0}});
  auto& groups = dynamic_cast<TorchOptimizer&>(*opt).impl().param_groups();
  REQUIRE(groups.size() == 2);
  CHECK(opt->lr() == 0.1);
  CHECK(groups[1].options().get_lr() == 0.5);

  // Losses [a², b²], mean (a² + b²)/2, gradient [a, b] = [2, 3].
  LossFn loss = [&](const at::Tensor&) { return at::cat({a * a, b * b}); };
  opt->step(loss);
  CHECK(at_(a, 0) == doctest::Approx(1.78).epsilon(1e-12));  // 2 − 0.1·(2 + 0.1·2) = 2 − 0.22
  CHECK(at_(b, 0) == doctest::Approx(1.5).epsilon(1e-12));   // 3 − 0.5·3, no decay

  opt->set_lr_factor(0.5);
  CHECK(opt->lr() == doctest::Approx(0.05));
  CHECK(groups[1].options().get_lr() == doctest::Approx(0.25));
  opt->step(loss);
  CHECK(at_(a, 0) == doctest::Approx(1.6821).epsilon(1e-12));  // 1.78 − 0.05·(1.78 + 0.178) = 1.78 − 0.0979
  CHECK(at_(b, 0) == doctest::Approx(1.125).epsilon(1e-12));   // 1.5 − 0.25·1.5

  opt->set_lr_factor(0.5);  // a factor of the base rate, not of the current one
  CHECK(opt->lr() == doctest::Approx(0.05));
  opt->set_lr_factor(1.0);
  CHECK(groups[1].options().get_lr() == doctest::Approx(0.5));
}

TEST_CASE("Nesterov without momentum, or with dampening, is refused naming optimizer.nesterov") {
  at::Tensor w = at::tensor({1.0}, at::kDouble).set_requires_grad(true);
  std::string message;
  try {
    make(params_for("sgd", {{"momentum", 0.0}, {"nesterov", true}}), one_group(w));
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  CHECK(message.find("optimizer 'sgd'") != std::string::npos);
  CHECK(message.find("test: optimizer.nesterov: needs momentum > 0 and dampening = 0") != std::string::npos);
  CHECK_THROWS_WITH(make(params_for("sgd", {{"dampening", 0.5}, {"nesterov", true}}), one_group(w)),
                    doctest::Contains("optimizer.nesterov"));
}

// Saved after two steps and loaded into a fresh optimizer (through a file), the third step is the same to the
// bit as the uninterrupted optimizer's: momenta, Adam's moments and step count, and the current rate come back.
TEST_CASE("SGD, Adam and AdamW state: saved, written, read and loaded, the next step is bit-identical") {
  const std::vector<std::pair<std::string, std::map<std::string, Value>>> configs = {
      {"sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"weight_decay", 0.01}, {"nesterov", true}}},
      {"adam", {{"lr", 0.01}, {"weight_decay", 0.01}}},
      {"adamw", {{"lr", 0.01}}}};
  test::TempDir dir;
  for (const auto& config : configs) {
    const std::string& use = config.first;
    CAPTURE(use);
    at::Tensor w = at::tensor({1.0, -2.0}, at::kDouble).set_requires_grad(true);
    auto opt = make(params_for(use, config.second), one_group(w));
    opt->step(quadratic(w));
    opt->set_lr_factor(0.5);
    opt->step(quadratic(w));
    StateDict saved;
    opt->save(saved);
    write_state((dir / (use + ".pt")).string(), saved);

    at::Tensor v = w.detach().clone().set_requires_grad(true);
    auto fresh = make(params_for(use, config.second), one_group(v));
    fresh->load(read_state((dir / (use + ".pt")).string()));
    CHECK(fresh->lr() == opt->lr());
    const at::Tensor before = w.detach().clone();
    opt->step(quadratic(w));
    fresh->step(quadratic(v));
    CHECK(at::equal(w, v));
    CHECK_FALSE(at::equal(w, before));  // the step moved them: the equality is of two updated tensors
  }
}

TEST_CASE("optimizer state that does not fit is refused before anything changes, naming the place") {
  at::Tensor w = at::tensor({1.0, -2.0}, at::kDouble).set_requires_grad(true);
  auto sgd = make(params_for("sgd", {{"momentum", 0.9}}), one_group(w));
  sgd->step(quadratic(w));
  StateDict saved("f.pt");
  sgd->save(saved);

  at::Tensor longer = at::zeros({3}, at::kDouble).set_requires_grad(true);
  auto other = make(params_for("sgd", {{"momentum", 0.9}}), one_group(longer));
  CHECK_THROWS_WITH(other->load(saved), doctest::Contains("f.pt: groups.0.state.0: 'momentum_buffer' is Double [2], "
                                                          "its parameter Double [3]"));
  auto adam = make(params_for("adam", {}), one_group(w));
  CHECK_THROWS_WITH(adam->load(saved), "f.pt: the state of a 'sgd' optimizer, this one is 'adam'");
  auto two = make(params_for("sgd", {{"momentum", 0.9}}),
                  {ParamGroup{"a", {w}, std::nullopt, std::nullopt}, ParamGroup{"b", {longer}, std::nullopt, std::nullopt}});
  CHECK_THROWS_WITH(two->load(saved), "f.pt: groups: 1 parameter groups, the optimizer has 2");
}

}  // namespace saq

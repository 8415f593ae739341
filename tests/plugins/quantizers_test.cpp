// The quantizer plugins (liq_wn, liq, lsq, dorefa, pact) built from pipeline text through the registry, checked
// against values worked out by hand from the formulas of research/algorithms.md §3 (arithmetic in the comments).
#include "plugin_test.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <saq/layers.hpp>
#include <saq/quantizer.hpp>

using namespace saq;

namespace {

/// The quantizer a [quantizer] table with this body builds (the host keys have their defaults).
std::shared_ptr<Quantizer> make_quantizer(const std::string& body) {
  test::TempDir dir;
  host::Pipeline p = test::pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"small_cnn\"\n"
                                                   "[quantizer]\n" + body + "\n[[stage]]\nuse = \"eval\"\n");
  const host::Registry& reg = test::registry();
  return reg.make<Quantizer>(reg.require(Kind::Quantizer, p.quantizer->use(), "test"), *p.quantizer, Context{});
}

QuantLayerInfo conv_info(std::vector<std::int64_t> shape) { return {"layer1.0.conv1", true, std::move(shape), 1}; }
QuantLayerInfo linear_info(std::vector<std::int64_t> shape) {
  return {"fc", false, std::move(shape), 1, false, true};
}

at::Tensor param(const torch::nn::Module& m, const std::string& name) {
  const auto params = m.named_parameters();  // find() points into this dictionary: keep it alive
  const at::Tensor* t = params.find(name);
  REQUIRE_MESSAGE(t != nullptr, "no parameter " << name);
  return *t;
}
int initialized(const torch::nn::Module& m) {
  const auto buffers = m.named_buffers();
  const at::Tensor* t = buffers.find("initialized");
  REQUIRE(t != nullptr);
  return t->item<int>();
}

at::Tensor row(std::vector<float> v) { return at::tensor(v); }

bool close(const at::Tensor& a, const at::Tensor& b, double tol = 1e-6) {
  return a.sizes() == b.sizes() && at::allclose(a, b, 0, tol);
}

/// The sorted distinct values of t.
at::Tensor distinct(const at::Tensor& t) { return std::get<0>(at::_unique(t.detach().flatten(), true)); }

/// A 2×2-kernel conv with weight [0, 1, 2, 7] and the plugin's quantizers attached:
///   μ = 2.5, deviations [−2.5, −1.5, −0.5, 4.5], unbiased σ² = (6.25 + 2.25 + 0.25 + 20.25)/3 = 29/3, σ = 3.10913
///   ŵ = (w − μ)/σ = [−0.80412, −0.48247, −0.16082, 1.44737]
std::shared_ptr<Conv2dLayer> small_conv(const Quantizer& q) {
  auto conv = std::make_shared<Conv2dLayer>(ConvSpec{1, 1, 2, 1, 0, 1, false});
  {
    at::NoGradGuard no_grad;
    conv->weight.copy_(row({0.f, 1.f, 2.f, 7.f}).view({1, 1, 2, 2}));
  }
  QuantLayerInfo info = conv_info({1, 1, 2, 2});
  conv->attach(q.weight_quantizer(info), q.activation_quantizer(info));
  return conv;
}

const double kSigma = std::sqrt(29.0 / 3.0);

}  // namespace

TEST_CASE("liq_wn: the conv consumes the 2-bit LIQ of the standardised weight, levels ±α/3 and ±α") {
  auto q = make_quantizer("use = \"liq_wn\"");
  auto conv = small_conv(*q);
  conv->set_bits(2, 32);
  conv->train();
  at::Tensor x = at::randn({1, 1, 2, 2});
  at::Tensor y = conv->forward(x);
  // α = 1 ("code": a conv clip stays at 1.0). u = (clamp(ŵ/α, −1, 1) + 1)/2 = [0.09794, 0.25876, 0.41959, 1];
  // u·3 = [0.294, 0.776, 1.259, 3] → round [0, 1, 1, 3];  X = 2·i/3 − 1 = [−1, −1/3, −1/3, 1]
  at::Tensor expected = row({-1.f, -1.f / 3, -1.f / 3, 1.f}).view({1, 1, 2, 2});
  CHECK(close(conv->quantized_weight(), expected));
  CHECK(close(y, at::conv2d(x, expected), 1e-5));
  CHECK(param(*conv->named_children()[0].value(), "clip_value").item<double>() == 1.0);

  // ∂X/∂w = ∂X/∂ŵ · ∂ŵ/∂w = 1 · 1/σ inside the clip (μ and σ detached), 0 where |ŵ| > α (the last element)
  conv->quantized_weight().sum().backward();
  const float g = static_cast<float>(1.0 / kSigma);  // 0.321634
  CHECK(close(conv->weight.grad(), row({g, g, g, 0.f}).view({1, 1, 2, 2})));
}

TEST_CASE("liq_wn: a conv weight at 2 bits takes exactly the four levels {−1, −1/3, 1/3, 1}; one element by hand") {
  at::manual_seed(3);
  auto q = make_quantizer("use = \"liq_wn\"");
  auto wq = q->weight_quantizer(conv_info({8, 4, 3, 3}));
  at::Tensor w = at::randn({8, 4, 3, 3}) * 0.05 + 0.02;  // scale and offset vanish in the standardisation
  at::Tensor X = wq->forward(w, 2);
  CHECK(close(distinct(X), row({-1.f, -1.f / 3, 1.f / 3, 1.f})));
  // element 0 in double: ŵ = (w0 − mean)/std (unbiased), i = round((clamp(ŵ, −1, 1) + 1)/2·3), X = 2i/3 − 1
  at::Tensor wd = w.to(at::kDouble);
  const double mean = wd.mean().item<double>(), sd = wd.std(/*unbiased=*/true).item<double>();
  const double hat = (w.flatten()[0].item<double>() - mean) / sd;
  const double i = std::nearbyint((std::clamp(hat, -1.0, 1.0) + 1) / 2 * 3);
  CHECK(X.flatten()[0].item<double>() == doctest::Approx(2 * i / 3 - 1).epsilon(1e-6));
  // 3 bits: 8 levels 2i/7 − 1
  CHECK(distinct(wq->forward(w, 3)).numel() == 8);
}

TEST_CASE("liq_wn: a linear layer's weight is not standardised; its clips start from the first training batch") {
  auto q = make_quantizer("use = \"liq_wn\"");
  auto wq = q->weight_quantizer(linear_info({1, 4}));
  auto aq = q->activation_quantizer(linear_info({1, 4}));
  at::Tensor W = row({0.2f, -0.5f, 0.9f, 3.0f}).requires_grad_(true);

  // Eval mode: no initialisation, α = 1 on the raw W: u = [0.6, 0.25, 0.95, 1]·3 = [1.8, 0.75, 2.85, 3] → [2, 1, 3, 3]
  //   X = [1/3, −1/3, 1, 1]. (Standardised, (W − 0.9)/1.512 = [−0.46, −0.93, 0, 1.39] would give [−1/3, −1, 1/3, 1].)
  wq->eval();
  aq->eval();
  CHECK(close(wq->forward(W, 2), row({1.f / 3, -1.f / 3, 1.f, 1.f})));
  at::Tensor x = row({0.5f, -1.f, 2.5f}).view({1, 3});
  aq->forward(x, 2);
  CHECK(param(*wq, "clip_value").item<double>() == 1.0);
  CHECK(param(*aq, "clip_value").item<double>() == 1.0);
  CHECK(initialized(*wq) == 0);

  // First training forward: α_w = 0.8·max|W| = 0.8·3 = 2.4.  W/α = [0.0833, −0.2083, 0.375, 1.25 → 1]
  //   u·3 = [1.625, 1.1875, 2.0625, 3] → [2, 1, 2, 3];  X = [1/3, −1/3, 1/3, 1]·2.4 = [0.8, −0.8, 0.8, 2.4]
  wq->train();
  aq->train();
  at::Tensor X = wq->forward(W, 2);
  CHECK(param(*wq, "clip_value").item<double>() == doctest::Approx(2.4).epsilon(1e-6));
  CHECK(close(X, row({0.8f, -0.8f, 0.8f, 2.4f})));
  X.sum().backward();  // no 1/σ: ∂X/∂W = 1 inside |W| < 2.4, 0 outside
  CHECK(at::equal(W.grad(), row({1.f, 1.f, 1.f, 0.f})));
  // α_a = 0.8·max|x| = 0.8·2.5 = 2;  x/α = [0.25, −0.5 → 0, 1.25 → 1]·3 = [0.75, 0, 3] → [1, 0, 3]/3·2
  CHECK(close(aq->forward(x, 2), row({2.f / 3, 0.f, 2.f}).view({1, 3})));
  CHECK(param(*aq, "clip_value").item<double>() == doctest::Approx(2.0).epsilon(1e-6));
  CHECK(initialized(*wq) == 1);
  CHECK(initialized(*aq) == 1);

  // A second batch does not initialise again.
  wq->forward(W * 10, 2);
  aq->forward(x * 10, 2);
  CHECK(param(*wq, "clip_value").item<double>() == doctest::Approx(2.4).epsilon(1e-6));
  CHECK(param(*aq, "clip_value").item<double>() == doctest::Approx(2.0).epsilon(1e-6));
}

TEST_CASE("liq_wn clip_init: \"code\" keeps conv clips at 1.0; \"max\" starts them at 0.8·max of the first batch") {
  at::Tensor x = row({0.5f, -1.f, 2.5f, 1.f}).view({1, 1, 2, 2});
  auto code = small_conv(*make_quantizer("use = \"liq_wn\"\nclip_init = \"code\""));
  code->set_bits(2, 2);
  code->train();
  code->forward(x);
  for (const auto& child : code->named_children()) {
    CAPTURE(child.key());
    CHECK(param(*child.value(), "clip_value").item<double>() == 1.0);
    CHECK(initialized(*child.value()) == 1);  // nothing left to initialise
  }

  auto max = small_conv(*make_quantizer("use = \"liq_wn\"\nclip_init = \"max\""));
  max->set_bits(2, 2);
  max->train();
  max->forward(x);
  // weight: 0.8·max|ŵ| = 0.8·4.5/σ = 1.15790 (in standardised units); activation: 0.8·max|x| = 0.8·2.5 = 2
  const double alpha = 0.8 * 4.5 / kSigma;
  CHECK(param(*max->named_children()[0].value(), "clip_value").item<double>() == doctest::Approx(alpha).epsilon(1e-6));
  CHECK(param(*max->named_children()[1].value(), "clip_value").item<double>() == doctest::Approx(2.0).epsilon(1e-6));
  // ŵ/α = [−0.6945, −0.4167, −0.1389, 1.25 → 1]; u·3 = [0.458, 0.875, 1.292, 3] → [0, 1, 1, 3]
  const float a = static_cast<float>(alpha);
  CHECK(close(max->quantized_weight(), row({-a, -a / 3, -a / 3, a}).view({1, 1, 2, 2})));
  max->forward(x * 4);
  CHECK(param(*max->named_children()[1].value(), "clip_value").item<double>() == doctest::Approx(2.0).epsilon(1e-6));

  // plain liq defaults to "max" and does not standardise: α_w = 0.8·7 = 5.6
  auto plain = small_conv(*make_quantizer("use = \"liq\""));
  plain->set_bits(2, 2);
  plain->train();
  plain->forward(x);
  CHECK(param(*plain->named_children()[0].value(), "clip_value").item<double>() == doctest::Approx(5.6).epsilon(1e-6));
}

TEST_CASE("lsq: steps start at 2·mean|v|/√Q_P on the first training forward; values on the grid {−8..7}·s") {
  auto q = make_quantizer("use = \"lsq\"");
  auto wq = q->weight_quantizer(linear_info({1, 4}));
  at::Tensor v = row({0.1f, -0.2f, 0.3f, -0.4f});
  wq->eval();
  wq->forward(v, 4);
  CHECK(param(*wq, "step_size").item<double>() == 1.0);  // eval mode: not initialised
  wq->train();
  // 4-bit signed: Q_P = 7. s = 2·0.25/√7 = 0.188982;  v/s = [0.529, −1.058, 1.587, −2.117] → [1, −1, 2, −2]
  at::Tensor X = wq->forward(v, 4);
  const double s = 0.5 / std::sqrt(7.0);
  CHECK(param(*wq, "step_size").item<double>() == doctest::Approx(s).epsilon(1e-6));
  const auto sf = static_cast<float>(s);
  CHECK(close(X, row({sf, -sf, 2 * sf, -2 * sf})));
  // the same step clamps to [−8, 7]·s: 5/s = 26.5 → 7, −5/s → −8
  at::Tensor wide = wq->forward(at::cat({at::linspace(-0.4, 0.4, 17), row({5.f, -5.f})}), 4);
  at::Tensor k = wide / sf;
  CHECK(at::allclose(k, at::round(k), 0, 1e-4));
  CHECK(k.max().item<double>() == doctest::Approx(7.0));
  CHECK(k.min().item<double>() == doctest::Approx(-8.0));
  CHECK(distinct(at::round(k)).numel() <= 16);

  // 4-bit unsigned activations: Q_P = 15. x = [0, 1, 2, 3]: s = 2·1.5/√15 = 0.774597;
  //   x/s = [0, 1.291, 2.582, 3.873] → [0, 1, 3, 4]
  auto aq = q->activation_quantizer(linear_info({1, 4}));
  aq->train();
  at::Tensor y = aq->forward(row({0.f, 1.f, 2.f, 3.f}).view({1, 4}), 4);
  const double sa = 3.0 / std::sqrt(15.0);
  CHECK(param(*aq, "step_size").item<double>() == doctest::Approx(sa).epsilon(1e-6));
  const auto saf = static_cast<float>(sa);
  CHECK(close(y, row({0.f, saf, 3 * saf, 4 * saf}).view({1, 4})));
  aq->forward(row({0.f, 10.f, 20.f, 30.f}).view({1, 4}), 4);  // a second batch keeps the step
  CHECK(param(*aq, "step_size").item<double>() == doctest::Approx(sa).epsilon(1e-6));
  CHECK(initialized(*aq) == 1);
}

TEST_CASE("lsq per_channel: one step per output channel, each from its own channel") {
  auto q = make_quantizer("use = \"lsq\"\nper_channel = true");
  auto wq = q->weight_quantizer(linear_info({2, 2}));
  CHECK(param(*wq, "step_size").numel() == 2);
  CHECK(param(*q->activation_quantizer(linear_info({2, 2})), "step_size").numel() == 1);
  wq->train();
  // row 0 [0.1, −0.3]: s0 = 2·0.2/√7 = 0.151186, v/s0 = [0.661, −1.984] → [1, −2]
  // row 1 [1, −2]:     s1 = 2·1.5/√7 = 1.133893, v/s1 = [0.882, −1.764] → [1, −2]
  at::Tensor X = wq->forward(at::tensor({0.1f, -0.3f, 1.f, -2.f}).view({2, 2}), 4);
  const double s0 = 0.4 / std::sqrt(7.0), s1 = 3.0 / std::sqrt(7.0);
  at::Tensor step = param(*wq, "step_size");
  CHECK(step[0].item<double>() == doctest::Approx(s0).epsilon(1e-6));
  CHECK(step[1].item<double>() == doctest::Approx(s1).epsilon(1e-6));
  const auto f0 = static_cast<float>(s0), f1 = static_cast<float>(s1);
  CHECK(close(X, at::tensor({f0, -2 * f0, f1, -2 * f1}).view({2, 2})));
}

TEST_CASE("dorefa: weights in [−1, 1] on 2^b levels including ±1; activations clipped to [0, 1] at k/n") {
  auto q = make_quantizer("use = \"dorefa\"");
  auto wq = q->weight_quantizer(conv_info({2, 2, 1, 1}));
  // t = tanh(w) = [0.46212, −0.76159, 0.96403, −0.96403];  u = t/(2·0.96403) + 1/2 = [0.73968, 0.10500, 1, 0]
  // u·3 = [2.219, 0.315, 3, 0] → [2, 0, 3, 0];  X = 2·i/3 − 1 = [1/3, −1, 1, −1]
  CHECK(close(wq->forward(row({0.5f, -1.f, 2.f, -2.f}).view({2, 2, 1, 1}), 2),
              row({1.f / 3, -1.f, 1.f, -1.f}).view({2, 2, 1, 1})));
  at::manual_seed(5);
  at::Tensor w = at::cat({at::randn({200}) * 0.3, row({3.f, -3.f})});
  for (int bits : {2, 3, 4}) {
    CAPTURE(bits);
    at::Tensor X = wq->forward(w, bits);
    const double n = std::ldexp(1.0, bits) - 1;
    CHECK(X.min().item<double>() == doctest::Approx(-1.0));
    CHECK(X.max().item<double>() == doctest::Approx(1.0));
    CHECK(distinct(X).numel() <= (std::int64_t{1} << bits));
    at::Tensor i = (X + 1) / 2 * n;  // level index
    CHECK(at::allclose(i, at::round(i), 0, 1e-4));
  }
  auto aq = q->activation_quantizer(conv_info({2, 2, 1, 1}));
  // clamp to [0, 1] = [0, 0.1, 0.45, 0.9, 1];  ·3 = [0, 0.3, 1.35, 2.7, 3] → [0, 0, 1, 3, 3]/3
  CHECK(close(aq->forward(row({-0.5f, 0.1f, 0.45f, 0.9f, 1.5f}), 2), row({0.f, 0.f, 1.f / 3, 1.f, 1.f})));
}

TEST_CASE("pact: the clip starts at clip_init and gets gradient only from inputs ≥ α") {
  CHECK(param(*make_quantizer("use = \"pact\"")->activation_quantizer(conv_info({1, 1, 1, 1})), "clip_value")
            .item<double>() == 10.0);  // the PACT paper's α₀
  auto aq = make_quantizer("use = \"pact\"\nclip_init = 2.0")->activation_quantizer(conv_info({1, 1, 1, 1}));
  at::Tensor alpha = param(*aq, "clip_value");
  CHECK(alpha.item<double>() == 2.0);
  at::Tensor x = row({-1.f, 0.5f, 1.9f, 2.5f, 3.f}).requires_grad_(true);
  // y = round(clamp(x, 0, 2)·3/2)·2/3: clamp = [0, 0.5, 1.9, 2, 2], ·1.5 = [0, 0.75, 2.85, 3, 3] → [0, 1, 3, 3, 3]
  at::Tensor y = aq->forward(x, 2);
  CHECK(close(y, row({0.f, 2.f / 3, 2.f, 2.f, 2.f})));
  y.sum().backward();
  CHECK(alpha.grad().item<double>() == 2.0);  // the two inputs ≥ α (2.5 and 3) each contribute 1
  CHECK(at::equal(x.grad(), row({0.f, 1.f, 1.f, 0.f, 0.f})));
}

TEST_CASE("every quantizer at 32/32 bits gives exactly the full-precision output") {
  at::manual_seed(1);
  at::Tensor x = at::randn({2, 4, 6, 6});
  for (const char* body : {"use = \"liq_wn\"", "use = \"liq\"", "use = \"lsq\"", "use = \"lsq\"\nper_channel = true",
                           "use = \"dorefa\"", "use = \"pact\""}) {
    CAPTURE(body);
    auto q = make_quantizer(body);
    Conv2dLayer conv({4, 8, 3, 1, 1, 1, false});
    QuantLayerInfo info = conv_info({8, 4, 3, 3});
    conv.attach(q->weight_quantizer(info), q->activation_quantizer(info));
    conv.train();
    conv.set_bits(32, 32);
    at::Tensor fp = at::conv2d(x, conv.weight, {}, {1, 1}, {1, 1});
    CHECK(at::equal(conv.forward(x), fp));
    conv.set_bits(4, 4);
    CHECK(!at::allclose(conv.forward(x), fp));  // the quantizers are live
    conv.set_bits(32, 32);
    CHECK(at::equal(conv.forward(x), fp));
  }
}

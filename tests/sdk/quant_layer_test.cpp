// Quantizable layers with a hand-written quantizer that rounds to integers: identity at 32 bits, the quantized
// weight the op consumes, SAQ's additive perturbation ε of that weight, straight-through gradients, the bit checks,
// MACs per sample and the order of quant_layers(). Every expected number is worked out in a comment.
#include "unit.hpp"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <saq/layers.hpp>

namespace saq {

namespace {

/// y = round(x) forward, ∂y/∂x = 1 backward (straight through); remembers the bits it was called with.
class RoundQuantizer final : public TensorQuantizer {
 public:
  at::Tensor forward(const at::Tensor& x, int bits) override {
    ++calls;
    last_bits = bits;
    return x + (at::round(x) - x).detach();
  }
  int calls = 0, last_bits = 0;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

at::Tensor image(std::vector<float> v) { return at::tensor(v).view({1, 1, 2, 2}); }

// A 2×2 kernel over a 2×2 image without padding: one output, the dot product of the two.
//   x = [0.6, 1.4, −0.2, 2.7]   round → [1, 1, 0, 3]
//   w = [0.4, 1.6, −0.7, 2.2]   round → [0, 2, −1, 2]
struct Fixture {
  std::shared_ptr<Conv2dLayer> conv = std::make_shared<Conv2dLayer>(ConvSpec{1, 1, 2, 1, 0, 1, false});
  std::shared_ptr<RoundQuantizer> wq = std::make_shared<RoundQuantizer>(), aq = std::make_shared<RoundQuantizer>();
  at::Tensor x = image({0.6f, 1.4f, -0.2f, 2.7f});
  Fixture() {
    at::NoGradGuard no_grad;
    conv->weight.copy_(image({0.4f, 1.6f, -0.7f, 2.2f}));
    conv->attach(wq, aq);
  }
  double out() { return conv->forward(x).item<double>(); }
};

}  // namespace

TEST_CASE("quant layer: at 32/32 bits the quantizers do not run and the output is the plain convolution") {
  Fixture f;
  // 0.6·0.4 + 1.4·1.6 + (−0.2)·(−0.7) + 2.7·2.2 = 0.24 + 2.24 + 0.14 + 5.94 = 8.56
  CHECK(f.out() == doctest::Approx(8.56).epsilon(1e-6));
  CHECK(at::equal(f.conv->forward(f.x), at::conv2d(f.x, f.conv->weight)));
  CHECK(f.wq->calls == 0);
  CHECK(f.aq->calls == 0);
  CHECK(f.conv->weight_bits() == 32);
  CHECK(f.conv->activation_bits() == 32);
  CHECK(at::equal(f.conv->quantized_weight(), f.conv->weight));
}

TEST_CASE("quant layer: after set_bits(4, 4) the op consumes round(x) and round(w), exposed as quantized_weight") {
  Fixture f;
  f.conv->set_bits(4, 4);
  // [1, 1, 0, 3] · [0, 2, −1, 2] = 0 + 2 + 0 + 6 = 8
  CHECK(f.out() == 8.0);
  CHECK(f.wq->calls == 1);
  CHECK(f.aq->calls == 1);
  CHECK(f.wq->last_bits == 4);
  CHECK(f.aq->last_bits == 4);
  CHECK(at::equal(f.conv->quantized_weight(), image({0.f, 2.f, -1.f, 2.f})));
  // Weight and input bits are separate: only the weight rounded, [0.6, 1.4, −0.2, 2.7]·[0, 2, −1, 2] = 2.8 + 0.2 + 5.4
  f.conv->set_bits(3, 32);
  CHECK(f.out() == doctest::Approx(8.4).epsilon(1e-6));
  CHECK(f.wq->last_bits == 3);
  CHECK(f.aq->calls == 1);
}

TEST_CASE("quant layer: set_perturbation adds ε to the quantized weight until clear_perturbation") {
  Fixture f;
  f.conv->set_bits(4, 4);
  f.conv->set_perturbation(image({0.5f, 0.f, 0.f, -1.f}));
  // Q(w) + ε = [0.5, 2, −1, 1];  [1, 1, 0, 3] · [0.5, 2, −1, 1] = 0.5 + 2 + 0 + 3 = 5.5
  CHECK(f.out() == 5.5);
  // quantized_weight() is Q(w), before ε
  CHECK(at::equal(f.conv->quantized_weight(), image({0.f, 2.f, -1.f, 2.f})));
  f.conv->clear_perturbation();
  CHECK(!f.conv->perturbation().defined());
  CHECK(f.out() == 8.0);
  // at 32 bits ε is added to the latent weight: 8.56 + [0.6, 1.4, −0.2, 2.7]·[0.5, 0, 0, −1] = 8.56 + 0.3 − 2.7
  f.conv->set_bits(32, 32);
  f.conv->set_perturbation(image({0.5f, 0.f, 0.f, -1.f}));
  CHECK(f.out() == doctest::Approx(6.16).epsilon(1e-6));
  CHECK(contains(error_of([&] { f.conv->set_perturbation(at::zeros({4})); }), "shape differs"));
}

TEST_CASE("quant layer: the gradient reaches the latent weight through the quantizer, never ε") {
  Fixture f;
  f.conv->set_bits(4, 4);
  at::Tensor eps = image({0.5f, 0.f, 0.f, -1.f}).requires_grad_(true);
  f.conv->set_perturbation(eps);
  CHECK(!f.conv->perturbation().requires_grad());
  f.conv->forward(f.x).sum().backward();
  // out = Σ round(x)·(Q(w) + ε) and ∂Q/∂w = 1 (straight through): ∂out/∂w = round(x) = [1, 1, 0, 3]
  REQUIRE(f.conv->weight.grad().defined());
  CHECK(at::equal(f.conv->weight.grad(), image({1.f, 1.f, 0.f, 3.f})));
  CHECK(!eps.grad().defined());
}

TEST_CASE("quant layer: bits must be 2..8 or 32; non-32 bits need quantizers; quantizers attach once") {
  Fixture f;
  for (auto bits : std::vector<std::pair<int, int>>{{1, 4}, {9, 4}, {4, 16}, {16, 16}, {0, 32}}) {
    const int w = bits.first, a = bits.second;  // (not a structured binding: lambdas below capture them)
    CAPTURE(w);
    CAPTURE(a);
    std::string e = error_of([&] { f.conv->set_bits(w, a); });
    CHECK(contains(e, "bits must be 2..8 or 32"));
    CHECK(contains(e, "got weight " + std::to_string(w) + ", activation " + std::to_string(a)));
  }
  CHECK(f.conv->weight_bits() == 32);  // a refused call changes nothing
  for (int b : {2, 8, 32}) CHECK(error_of([&] { f.conv->set_bits(b, b); }).empty());

  LinearLayer bare(3, 2, false);
  CHECK(!bare.quantizable());
  CHECK(contains(error_of([&] { bare.set_bits(4, 4); }), "no quantizers attached"));
  CHECK(contains(error_of([&] { bare.set_bits(32, 4); }), "no quantizers attached"));
  CHECK(error_of([&] { bare.set_bits(32, 32); }).empty());

  auto again = [&] { f.conv->attach(std::make_shared<RoundQuantizer>(), std::make_shared<RoundQuantizer>()); };
  CHECK(contains(error_of(again), "already has quantizers"));
  CHECK(contains(error_of([&] { bare.attach(std::make_shared<RoundQuantizer>(), nullptr); }), "both quantizers"));
}

TEST_CASE("quant layer: a linear layer with the rounding quantizers, and its quantizers as submodules") {
  LinearLayer fc(2, 1, true);
  {
    at::NoGradGuard no_grad;
    fc.weight.copy_(at::tensor({1.3f, -2.6f}).view({1, 2}));
    fc.bias.fill_(0.25f);
  }
  fc.attach(std::make_shared<RoundQuantizer>(), std::make_shared<RoundQuantizer>());
  at::Tensor x = at::tensor({2.2f, 0.9f}).view({1, 2});
  // FP: 2.2·1.3 + 0.9·(−2.6) + 0.25 = 2.86 − 2.34 + 0.25 = 0.77
  CHECK(fc.forward(x).item<double>() == doctest::Approx(0.77).epsilon(1e-6));
  fc.set_bits(8, 8);
  // round: x → [2, 1], w → [1, −3]: 2 − 3 + 0.25 = −0.75 (the bias is not quantized)
  CHECK(fc.forward(x).item<double>() == -0.75);
  std::vector<std::string> names;
  for (const auto& m : fc.named_children()) names.push_back(m.key());
  CHECK(names == std::vector<std::string>{"weight_quantizer", "activation_quantizer"});
}

TEST_CASE("quant layer: MACs per sample at the last forward's output size") {
  at::NoGradGuard no_grad;
  Conv2dLayer plain({3, 8, 3, 1, 1, 1, false});
  CHECK(plain.macs_per_sample() == 0);  // no forward yet
  plain.forward(at::zeros({2, 3, 10, 10}));
  CHECK(plain.macs_per_sample() == 3 * 3 * 3 * 8 * 10 * 10);  // k²·C_in·C_out·H·W = 21600, per sample (batch 2)
  CHECK(plain.last_input_shape() == std::vector<std::int64_t>{2, 3, 10, 10});
  CHECK(plain.last_output_shape() == std::vector<std::int64_t>{2, 8, 10, 10});

  Conv2dLayer strided({3, 8, 3, 2, 1, 1, false});
  strided.forward(at::zeros({1, 3, 10, 10}));
  CHECK(strided.macs_per_sample() == 9 * 3 * 8 * 5 * 5);  // (10 + 2 − 3)/2 + 1 = 5: 5400

  Conv2dLayer grouped({4, 6, 3, 1, 1, 2, false});
  grouped.forward(at::zeros({1, 4, 6, 6}));
  CHECK(grouped.macs_per_sample() == 9 * 2 * 6 * 36);  // k²·(C_in/g)·C_out·H·W = 9·2·6·36 = 3888

  Conv2dLayer depthwise({8, 8, 3, 1, 1, 8, false});
  depthwise.forward(at::zeros({1, 8, 5, 5}));
  CHECK(depthwise.groups() == 8);
  CHECK(depthwise.macs_per_sample() == 9 * 8 * 25);  // k²·C·H·W = 1800

  LinearLayer fc(16, 10, true);
  CHECK(fc.macs_per_sample() == 160);  // C_in·C_out
  CHECK(!fc.is_conv());
  CHECK(depthwise.is_conv());
}

TEST_CASE("quant_layers lists the conv and linear layers under their full names, in registration order") {
  torch::nn::Module model;
  conv2d(model, "z_stem", {3, 4, 3, 1, 1, 1, false});
  auto block = model.register_module("a_block", std::make_shared<torch::nn::Module>());
  batch_norm2d(*block, "bn", 4);
  conv2d(*block, "conv2", {4, 4, 3, 1, 1, 1, false});
  conv2d(*block, "conv1", {4, 4, 3, 1, 1, 1, false});
  linear(model, "fc", 4, 10);
  std::vector<std::string> names;
  for (const auto& [name, layer] : quant_layers(model)) names.push_back(name);
  CHECK(names == std::vector<std::string>{"z_stem", "a_block.conv2", "a_block.conv1", "fc"});
}

}  // namespace saq

// The layer factory: names and shapes on the owner, forward passes, initialisation, BatchNorm statistics.
#include "unit.hpp"

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <saq/layers.hpp>

namespace saq {

namespace {
std::map<std::string, std::vector<std::int64_t>> shapes(const torch::nn::Module& m, bool buffers) {
  std::map<std::string, std::vector<std::int64_t>> out;
  for (const auto& item : buffers ? m.named_buffers() : m.named_parameters())
    out[item.key()] = item.value().sizes().vec();
  return out;
}
}  // namespace

TEST_CASE("layers register on their owner under PyTorch's names and shapes") {
  torch::nn::Module owner;
  conv2d(owner, "conv1", {4, 6, 3, 1, 1, 2, false});
  conv2d(owner, "conv2", {6, 8, 1, 1, 0, 1, true});
  linear(owner, "fc", 8, 10);
  batch_norm2d(owner, "bn1", 6);
  using Shapes = std::map<std::string, std::vector<std::int64_t>>;
  CHECK(shapes(owner, false) == Shapes{{"conv1.weight", {6, 2, 3, 3}},  // [out, in / groups, k, k] = [6, 4/2, 3, 3]
                                       {"conv2.weight", {8, 6, 1, 1}},
                                       {"conv2.bias", {8}},
                                       {"fc.weight", {10, 8}},
                                       {"fc.bias", {10}},
                                       {"bn1.weight", {6}},
                                       {"bn1.bias", {6}}});
  CHECK(shapes(owner, true) ==
        Shapes{{"bn1.running_mean", {6}}, {"bn1.running_var", {6}}, {"bn1.num_batches_tracked", {}}});
}

TEST_CASE("a 3x3 convolution of ones pads with zeros and strides") {
  Conv2dLayer conv({1, 1, 3, 1, 1, 1, false});
  at::NoGradGuard no_grad;
  conv.weight.fill_(1);
  // Each output sums the 3×3 window of a ones image padded by 1: a corner sees 4 ones, an edge 6, the centre 9.
  at::Tensor y = conv.forward(at::ones({1, 1, 3, 3}));
  CHECK(at::equal(y, at::tensor({4.f, 6.f, 4.f, 6.f, 9.f, 6.f, 4.f, 6.f, 4.f}).view({1, 1, 3, 3})));

  Conv2dLayer strided({1, 1, 3, 2, 1, 1, false});
  strided.weight.fill_(1);
  // stride 2 keeps outputs (0,0), (0,2), (2,0), (2,2): the four corners.
  CHECK(at::equal(strided.forward(at::ones({1, 1, 3, 3})), at::full({1, 1, 2, 2}, 4.f)));
}

TEST_CASE("grouped convolution keeps the groups apart; the bias is added") {
  Conv2dLayer conv({2, 2, 1, 1, 0, 2, true});
  at::NoGradGuard no_grad;
  conv.weight.copy_(at::tensor({2.f, 3.f}).view({2, 1, 1, 1}));
  conv.bias.copy_(at::tensor({0.5f, -1.f}));
  at::Tensor x = at::cat({at::full({1, 1, 2, 2}, 1.f), at::full({1, 1, 2, 2}, 10.f)}, 1);
  at::Tensor y = conv.forward(x);
  // out0 = 2·1 + 0.5 = 2.5 (channel 1 ignored);  out1 = 3·10 − 1 = 29
  CHECK(at::equal(y, at::cat({at::full({1, 1, 2, 2}, 2.5f), at::full({1, 1, 2, 2}, 29.f)}, 1)));
}

TEST_CASE("conv weights start Kaiming-normal with fan_out: std = sqrt(2 / (out·k·k))") {
  at::manual_seed(0);
  Conv2dLayer conv({64, 64, 3, 1, 1, 1, false});
  const double expected = std::sqrt(2.0 / (64 * 3 * 3));  // = 0.0589
  // 36864 draws: the sample std is within ~0.4% (1/sqrt(2n)) of the true one; 5% is a wide margin.
  CHECK(conv.weight.std().item<double>() == doctest::Approx(expected).epsilon(0.05));
  CHECK(std::abs(conv.weight.mean().item<double>()) < 0.05 * expected);  // zero-mean: sample mean ~ std/192
}

TEST_CASE("linear weights and bias start inside ±1/sqrt(in), and forward is x·Wᵀ + b") {
  at::manual_seed(0);
  LinearLayer fc(16, 64, true);
  const double bound = 1.0 / std::sqrt(16.0);  // 0.25
  CHECK(fc.weight.abs().max().item<double>() <= bound);
  CHECK(fc.weight.abs().max().item<double>() > 0.9 * bound);  // 1024 uniform draws reach near the bound
  CHECK(fc.bias.abs().max().item<double>() <= bound);

  LinearLayer small(2, 1, true);
  at::NoGradGuard no_grad;
  small.weight.copy_(at::tensor({3.f, -1.f}).view({1, 2}));
  small.bias.fill_(0.5f);
  // [1, 2]·[3, −1] + 0.5 = 3 − 2 + 0.5 = 1.5
  CHECK(small.forward(at::tensor({1.f, 2.f}).view({1, 2})).item<double>() == 1.5);
  CHECK_FALSE(LinearLayer(2, 1, false).bias.defined());
}

TEST_CASE("BatchNorm in training normalises by batch statistics and moves the running ones by 0.1") {
  BatchNorm2dLayer bn(2);
  bn.train();
  // Channel 0 holds {1, 2, 3, 6}: mean 3, biased variance (4 + 1 + 0 + 9)/4 = 3.5, unbiased 14/3.
  // Channel 1 holds {5, 5, 5, 5}: mean 5, variance 0.
  at::Tensor x = at::stack({at::tensor({1.f, 2.f, 3.f, 6.f}), at::full({4}, 5.f)}, 0).view({2, 2, 2}).unsqueeze(0);
  at::Tensor y = bn.forward(x);
  CHECK(y[0][0][0][0].item<double>() == doctest::Approx((1 - 3) / std::sqrt(3.5 + 1e-5)).epsilon(1e-5));
  CHECK(y[0][0][1][1].item<double>() == doctest::Approx((6 - 3) / std::sqrt(3.5 + 1e-5)).epsilon(1e-5));
  CHECK(y[0][1].abs().max().item<double>() < 1e-4);  // 0, up to float rounding of the mean over sqrt(eps)
  // running = 0.9·old + 0.1·batch:  mean 0.9·0 + 0.1·3 = 0.3, 0.9·0 + 0.1·5 = 0.5;
  // var 0.9·1 + 0.1·14/3 = 1.366667, 0.9·1 + 0.1·0 = 0.9
  CHECK(bn.running_mean[0].item<double>() == doctest::Approx(0.3).epsilon(1e-6));
  CHECK(bn.running_mean[1].item<double>() == doctest::Approx(0.5).epsilon(1e-6));
  CHECK(bn.running_var[0].item<double>() == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(1e-6));
  CHECK(bn.running_var[1].item<double>() == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);

  bn.forward(x);
  // second pass: 0.9·0.3 + 0.1·3 = 0.57
  CHECK(bn.running_mean[0].item<double>() == doctest::Approx(0.57).epsilon(1e-6));
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 2);
}

TEST_CASE("BatchNorm in evaluation uses the running statistics and leaves them alone") {
  BatchNorm2dLayer bn(1);
  at::NoGradGuard no_grad;
  bn.running_mean.fill_(2.0);
  bn.running_var.fill_(4.0);
  bn.weight.fill_(3.0);
  bn.bias.fill_(1.0);
  bn.eval();
  // 3·(8 − 2)/sqrt(4 + 1e-5) + 1 = 3·6/2.0000025 + 1 ≈ 9.99998
  at::Tensor y = bn.forward(at::full({1, 1, 1, 1}, 8.f));
  CHECK(y.item<double>() == doctest::Approx(3.0 * 6.0 / std::sqrt(4.0 + 1e-5) + 1.0).epsilon(1e-6));
  CHECK(bn.running_mean.item<double>() == 2.0);
  CHECK(bn.running_var.item<double>() == 4.0);
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 0);
}

TEST_CASE("invalid layer shapes are refused with the values in the message") {
  CHECK_THROWS_WITH_AS(Conv2dLayer({3, 4, 3, 1, 0, 2, false}), "conv2d: groups=2 must divide in=3 and out=4",
                       std::invalid_argument);
  CHECK_THROWS_AS(Conv2dLayer({4, 4, 3, 1, 0, 0, false}), std::invalid_argument);
  CHECK_THROWS_AS(Conv2dLayer({0, 4, 3, 1, 0, 1, false}), std::invalid_argument);
  CHECK_THROWS_WITH_AS(LinearLayer(0, 3, true), "linear: features must be > 0, got in=0 out=3", std::invalid_argument);
  CHECK_THROWS_AS(BatchNorm2dLayer(0), std::invalid_argument);
}

}  // namespace saq

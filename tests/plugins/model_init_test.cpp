// Initialisation of the zoo models, as their references: torchvision's ResNets and MobileNetV2 start convs
// Kaiming-normal (fan_out: std √(2/(k²·C_out))) and BN at γ = 1, β = 0; zero_init_residual zeroes each block's last
// BN γ; torchvision's MobileNetV2 classifier starts N(0, 0.01) with a zero bias; kuangliu's CIFAR MobileNetV2
// keeps PyTorch's defaults, U(±1/√fan_in) with fan_in = (C_in/groups)·k².
#include "model_zoo.hpp"

#include <cmath>

using namespace saq;
using namespace saq::test;

namespace {

at::Tensor param(const Model& m, const std::string& name) {
  const auto params = m.named_parameters();
  const at::Tensor* t = params.find(name);
  REQUIRE_MESSAGE(t != nullptr, "no parameter " << name);
  return *t;
}

double std_of(const at::Tensor& t) { return t.std().item<double>(); }

}  // namespace

TEST_CASE("resnet: Kaiming-normal fan_out convs, BN 1/0; zero_init_residual zeroes each block's last BN") {
  at::manual_seed(0);
  auto m = zoo_model("resnet18", DataInfo{{3, 64, 64}, 10, {}});
  // layer4.0.conv2: 512·512·9 = 2.4 M samples of N(0, √(2/(9·512)) = 0.02083); 5% is ≫ the sampling error
  CHECK(std_of(param(*m, "layer4.0.conv2.weight")) == doctest::Approx(std::sqrt(2.0 / (9 * 512))).epsilon(0.05));
  CHECK(std_of(param(*m, "conv1.weight")) == doctest::Approx(std::sqrt(2.0 / (49 * 64))).epsilon(0.05));
  CHECK(at::equal(param(*m, "layer1.0.bn2.weight"), at::ones({64})));
  CHECK(at::equal(param(*m, "layer1.0.bn2.bias"), at::zeros({64})));

  auto zero = zoo_model("resnet18", DataInfo{{3, 64, 64}, 10, {}}, "zero_init_residual = true");
  CHECK(at::equal(param(*zero, "layer1.0.bn2.weight"), at::zeros({64})));
  CHECK(at::equal(param(*zero, "layer4.1.bn2.weight"), at::zeros({512})));
  CHECK(at::equal(param(*zero, "layer1.0.bn1.weight"), at::ones({64})));
  CHECK(at::equal(param(*zero, "layer2.0.downsample.1.weight"), at::ones({128})));
  auto bottleneck = zoo_model("resnet50", DataInfo{{3, 64, 64}, 10, {}}, "zero_init_residual = true");
  CHECK(at::equal(param(*bottleneck, "layer3.2.bn3.weight"), at::zeros({1024})));
  CHECK(at::equal(param(*bottleneck, "layer3.2.bn2.weight"), at::ones({256})));
}

TEST_CASE("mobilenetv2: the classifier starts N(0, 0.01) with a zero bias; depthwise convs fan_out = 9·C") {
  at::manual_seed(1);
  auto m = zoo_model("mobilenetv2", kImageNet);
  CHECK(std_of(param(*m, "classifier.1.weight")) == doctest::Approx(0.01).epsilon(0.05));
  CHECK(at::equal(param(*m, "classifier.1.bias"), at::zeros({1000})));
  // features.17.conv.1.0: 960 depthwise 3×3 filters, fan_out = 9·960 (PyTorch ignores groups here)
  CHECK(std_of(param(*m, "features.17.conv.1.0.weight")) == doctest::Approx(std::sqrt(2.0 / (9 * 960))).epsilon(0.05));
}

TEST_CASE("mobilenetv2_cifar keeps PyTorch's default init, U(±1/√fan_in)") {
  at::manual_seed(2);
  auto m = zoo_model("mobilenetv2_cifar", kCifar100);
  for (const auto& item : {std::pair<std::string, double>{"layers.5.conv1.weight", 32},  // 1×1 32→192
                                     {"layers.5.conv2.weight", 9},       // depthwise: 1 input channel · 9
                                     {"conv2.weight", 320}, {"linear.weight", 1280}}) {
    const auto& name = std::get<0>(item);
    const auto& fan_in = std::get<1>(item);
    CAPTURE(name);
    const at::Tensor w = param(*m, name);
    const double bound = 1 / std::sqrt(fan_in);
    CHECK(w.abs().max().item<double>() <= bound);
    CHECK(w.abs().max().item<double>() > 0.9 * bound);
    CHECK(std_of(w) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.1));  // the std of U(−b, b) is b/√3
  }
}

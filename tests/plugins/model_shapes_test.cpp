// Every zoo model maps its input size to [B, num_classes] logits, and each quantizable layer sees the feature-map
// size of the reference design: per-layer MACs (which pin every layer's output size) equal those that
// tests/data/models/make_fixtures.py measured on torchvision's models (224×224) and on the SAQ paper's CIFAR
// MobileNetV2 (32×32). ImageNet-size forwards run one image in eval mode, without gradients.
#include "model_zoo.hpp"

#include <saq/layers.hpp>

using namespace saq;
using namespace saq::test;

namespace {

using Shape = std::vector<std::int64_t>;

Shape logits_shape(Model& m, const Shape& input) {
  at::NoGradGuard no_grad;
  m.eval();
  return m.forward(at::randn(input)).sizes().vec();
}

/// "name macs" of every quantizable layer at the last forward's shapes.
Lines layer_macs(Model& m) {
  Lines out;
  for (const auto& [name, layer] : quant_layers(m)) out.emplace_back(name, std::to_string(layer->macs_per_sample()));
  return out;
}

Shape output_of(Model& m, const std::string& layer) {
  for (const auto& [name, l] : quant_layers(m))
    if (name == layer) return l->last_output_shape();
  FAIL("no layer " << layer);
  return {};
}

}  // namespace

TEST_CASE("resnet18/34/50 and mobilenetv2: [1, 1000] on 3x224x224, every layer's MACs as torchvision's") {
  at::manual_seed(0);
  for (const std::string use : {"resnet18", "resnet34", "resnet50", "mobilenetv2"}) {
    CAPTURE(use);
    auto m = zoo_model(use, kImageNet);
    CHECK(logits_shape(*m, {1, 3, 224, 224}) == Shape{1, 1000});
    CHECK(layer_macs(*m) == reference(use + ".macs"));
  }
}

TEST_CASE("mobilenetv2_cifar: [2, 100] on 3x32x32, every layer's MACs as the paper's model") {
  at::manual_seed(1);
  auto m = zoo_model("mobilenetv2_cifar", kCifar100);
  CHECK(logits_shape(*m, {2, 3, 32, 32}) == Shape{2, 100});
  CHECK(layer_macs(*m) == reference("mobilenetv2_cifar.macs"));
  CHECK(output_of(*m, "conv1") == Shape{2, 32, 32, 32});           // stride-1 stem
  CHECK(output_of(*m, "layers.2.conv3") == Shape{2, 24, 32, 32});  // the 24-channel group at stride 1
  CHECK(output_of(*m, "conv2") == Shape{2, 1280, 4, 4});
}

TEST_CASE("resnet18/50 and mobilenetv2 take smaller and non-square inputs (adaptive pooling)") {
  at::manual_seed(2);
  auto r18 = zoo_model("resnet18", DataInfo{{3, 32, 32}, 10, {}});
  CHECK(logits_shape(*r18, {2, 3, 32, 32}) == Shape{2, 10});
  CHECK(output_of(*r18, "layer4.1.conv2") == Shape{2, 512, 1, 1});  // 32 / 32
  auto r50 = zoo_model("resnet50", DataInfo{{3, 64, 48}, 7, {}});
  CHECK(logits_shape(*r50, {1, 3, 64, 48}) == Shape{1, 7});
  CHECK(output_of(*r50, "layer4.2.conv3") == Shape{1, 2048, 2, 2});  // ceil(64/32), ceil(48/32)
  auto half = zoo_model("mobilenetv2", DataInfo{{3, 32, 32}, 10, {}}, "width_mult = 0.5\ndropout = 0.2");
  CHECK(logits_shape(*half, {2, 3, 32, 32}) == Shape{2, 10});
  CHECK(output_of(*half, "features.18.0") == Shape{2, 1280, 1, 1});  // the last width stays 1280 below 1.0
}

TEST_CASE("every preresnet depth gives [2, 100] on 3x32x32 with 8x8 maps in layer3") {
  at::manual_seed(3);
  for (const std::string use : {"preresnet20", "preresnet32", "preresnet44", "preresnet56", "preresnet110"}) {
    CAPTURE(use);
    auto p = zoo_model(use, kCifar100);
    CHECK(logits_shape(*p, {2, 3, 32, 32}) == Shape{2, 100});
    CHECK(output_of(*p, "layer3.0.conv2") == Shape{2, 64, 8, 8});
  }
}

// ResNet-18/34/50 and MobileNetV2 hold torchvision's state_dict entries (names, shapes, order), and
// mobilenetv2_cifar those of the SAQ paper's CIFAR MobileNetV2 (kuangliu's): the reference lists were written by
// tests/data/models/make_fixtures.py from torchvision 0.14 and a transcription of that model.
#include "model_zoo.hpp"

using namespace saq;
using namespace saq::test;

namespace {

void check_against(const std::string& use, const DataInfo& info) {
  CAPTURE(use);
  const Lines got = state_dict_shapes(*zoo_model(use, info)), want = reference(use + ".keys");
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    CAPTURE(i);
    CHECK(got[i] == want[i]);
    if (got[i] != want[i]) break;  // one mismatch shifts the rest: report the first
  }
}

std::string entry(const Lines& lines, const std::string& name) {
  for (const auto& [n, shape] : lines)
    if (n == name) return shape;
  return "(missing)";
}

}  // namespace

TEST_CASE("resnet18/34/50 state_dicts: torchvision's names, shapes and order") {
  check_against("resnet18", kImageNet);
  check_against("resnet34", kImageNet);
  check_against("resnet50", kImageNet);
}

TEST_CASE("mobilenetv2 state_dict: torchvision's names, shapes and order; mobilenetv2_cifar: the paper's") {
  check_against("mobilenetv2", kImageNet);
  check_against("mobilenetv2_cifar", kCifar100);
}

TEST_CASE("state_dict spot checks, written out from torchvision's and kuangliu's definitions") {
  const Lines r18 = state_dict_shapes(*zoo_model("resnet18", kImageNet));
  CHECK(entry(r18, "layer4.1.bn2.running_var") == "512");
  CHECK(entry(r18, "layer2.0.downsample.0.weight") == "128x64x1x1");
  CHECK(entry(r18, "layer2.0.downsample.1.num_batches_tracked") == "-");
  CHECK(entry(r18, "fc.weight") == "1000x512");
  CHECK(entry(r18, "layer1.0.downsample.0.weight") == "(missing)");  // 64 → 64, stride 1: identity
  const Lines r50 = state_dict_shapes(*zoo_model("resnet50", kImageNet));
  CHECK(entry(r50, "layer1.0.downsample.0.weight") == "256x64x1x1");  // 64 → 256 even at stride 1
  CHECK(entry(r50, "layer3.5.conv3.weight") == "1024x256x1x1");
  CHECK(entry(r50, "fc.weight") == "1000x2048");
  const Lines mb = state_dict_shapes(*zoo_model("mobilenetv2", kImageNet));
  CHECK(entry(mb, "features.0.0.weight") == "32x3x3x3");
  CHECK(entry(mb, "features.1.conv.0.0.weight") == "32x1x3x3");  // t = 1: the depthwise conv comes first
  CHECK(entry(mb, "features.2.conv.1.0.weight") == "96x1x3x3");  // 16·6 = 96 channels, depthwise
  CHECK(entry(mb, "features.18.0.weight") == "1280x320x1x1");
  CHECK(entry(mb, "classifier.1.bias") == "1000");
  const Lines mc = state_dict_shapes(*zoo_model("mobilenetv2_cifar", kCifar100));
  CHECK(entry(mc, "layers.0.conv1.weight") == "32x32x1x1");  // the expand conv exists at t = 1
  CHECK(entry(mc, "layers.0.shortcut.0.weight") == "16x32x1x1");
  CHECK(entry(mc, "layers.16.shortcut.1.running_mean") == "320");
  CHECK(entry(mc, "layers.2.shortcut.0.weight") == "(missing)");  // 24 → 24: identity
  CHECK(entry(mc, "linear.weight") == "100x1280");
}

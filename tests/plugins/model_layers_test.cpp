// The quantizable layers of every zoo model, in order: the host's first/last-layer policy (research/algorithms.md
// §3.4) takes the first as the stem and the last as the classifier, so those must be the stem conv and the fc;
// the counts are the paper's (§7); preresnet depths are 6n + 2 (plus the two downsample convs).
#include "model_zoo.hpp"

#include <saq/layers.hpp>

using namespace saq;
using namespace saq::test;

namespace {

std::vector<std::string> layer_names(Model& m) {
  std::vector<std::string> out;
  for (const auto& [name, layer] : quant_layers(m)) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("the first quantizable layer is the stem conv and the last the classifier") {
  struct Case {
    std::string use;
    DataInfo info;
    std::string first, last;
    size_t count;
  };
  // §7.2: 1 stem + 16 block convs + 3 downsample + fc; ResNet-34: 32 block convs; ResNet-50: 48 + 4 downsample;
  // §7.4: 1 stem + 50 block convs + conv2 + fc; §7.3: 1 stem + 51 block convs + 4 shortcut + conv2 + fc.
  for (const Case& c : {Case{"resnet18", kImageNet, "conv1", "fc", 21}, Case{"resnet34", kImageNet, "conv1", "fc", 37},
                        Case{"resnet50", kImageNet, "conv1", "fc", 54},
                        Case{"mobilenetv2", kImageNet, "features.0.0", "classifier.1", 53},
                        Case{"mobilenetv2_cifar", kCifar100, "conv1", "linear", 58},
                        Case{"preresnet20", kCifar100, "conv", "fc", 22}}) {
    CAPTURE(c.use);
    auto names = layer_names(*zoo_model(c.use, c.info));
    REQUIRE(names.size() == c.count);
    CHECK(names.front() == c.first);
    CHECK(names.back() == c.last);
  }
}

TEST_CASE("preresnet depths: 6n + 2 layers on the main path and two downsample convs; names as preresnet depth=N") {
  for (const std::int64_t depth : {20, 32, 44, 56, 110}) {
    CAPTURE(depth);
    const std::string fixed = "preresnet" + std::to_string(depth);
    auto names = layer_names(*zoo_model(fixed, kCifar100));
    CHECK(names.size() == static_cast<size_t>(depth + 2));
    const std::int64_t n = (depth - 2) / 6;
    size_t block_convs = 0, downsample = 0;
    for (const auto& name : names) {
      block_convs += name.rfind("layer", 0) == 0 && name.find(".conv") != std::string::npos;
      downsample += name.find("downsample") != std::string::npos;
    }
    CHECK(block_convs == static_cast<size_t>(6 * n));  // 3 stages · n blocks · 2 convs
    CHECK(downsample == 2);
    CHECK(names.back() == "fc");
    CHECK(names[names.size() - 2] == "layer3." + std::to_string(n - 1) + ".conv2");
    CHECK(names == layer_names(*zoo_model("preresnet", kCifar100, "depth = " + std::to_string(depth))));
  }
}

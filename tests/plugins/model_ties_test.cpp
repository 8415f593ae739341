// Tied bits (research/algorithms.md §5.2): a downsample/shortcut conv takes the bits of its block's conv2 (basic
// block, pre-activation block) or conv3 (bottleneck, CIFAR MobileNetV2 block). The models declare the ties by the
// target's full name, and the host's bit resolution honours them after every rule.
#include "model_zoo.hpp"

#include <map>

#include <saq/layers.hpp>

#include "quantize.hpp"

using namespace saq;
using namespace saq::test;

namespace {

std::map<std::string, std::string> ties(Model& m) {
  std::map<std::string, std::string> out;
  for (const auto& [name, layer] : quant_layers(m))
    if (!layer->bits_from().empty()) out[name] = layer->bits_from();
  return out;
}

using Ties = std::map<std::string, std::string>;

}  // namespace

TEST_CASE("every downsample and shortcut conv, and nothing else, follows its block's last conv") {
  CHECK(ties(*zoo_model("resnet18", kImageNet)) == Ties{{"layer2.0.downsample.0", "layer2.0.conv2"},
                                                        {"layer3.0.downsample.0", "layer3.0.conv2"},
                                                        {"layer4.0.downsample.0", "layer4.0.conv2"}});
  CHECK(ties(*zoo_model("resnet34", kImageNet)) == ties(*zoo_model("resnet18", kImageNet)));
  CHECK(ties(*zoo_model("resnet50", kImageNet)) == Ties{{"layer1.0.downsample.0", "layer1.0.conv3"},
                                                        {"layer2.0.downsample.0", "layer2.0.conv3"},
                                                        {"layer3.0.downsample.0", "layer3.0.conv3"},
                                                        {"layer4.0.downsample.0", "layer4.0.conv3"}});
  CHECK(ties(*zoo_model("mobilenetv2", kImageNet)).empty());  // identity residuals only
  // §7.3: shortcut convs 32→16, 16→24, 64→96, 160→320 (blocks 0, 1, 10, 16)
  CHECK(ties(*zoo_model("mobilenetv2_cifar", kCifar100)) == Ties{{"layers.0.shortcut.0", "layers.0.conv3"},
                                                                  {"layers.1.shortcut.0", "layers.1.conv3"},
                                                                  {"layers.10.shortcut.0", "layers.10.conv3"},
                                                                  {"layers.16.shortcut.0", "layers.16.conv3"}});
  CHECK(ties(*zoo_model("preresnet20", kCifar100)) ==
        Ties{{"layer2.0.downsample", "layer2.0.conv2"}, {"layer3.0.downsample", "layer3.0.conv2"}});
}

TEST_CASE("resolve_bits: a rule on a block's last conv moves its tied shortcut conv too") {
  TempDir dir;
  struct Case {
    std::string use;
    DataInfo info;
    std::string rule, tied;
  };
  for (const Case& c : {Case{"resnet50", kImageNet, "layer2.0.conv3", "layer2.0.downsample.0"},
                        Case{"mobilenetv2_cifar", kCifar100, "layers.10.conv3", "layers.10.shortcut.0"}}) {
    const std::string &use = c.use, &rule = c.rule, &tied = c.tied;
    CAPTURE(use);
    host::Pipeline p = pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"" + use +
                                                   "\"\n[quantizer]\nuse = \"liq_wn\"\n[[quantizer.rule]]\nmatch = \"" +
                                                   rule + "\"\nweight_bits = 2\nactivation_bits = 3\n"
                                                   "[[stage]]\nuse = \"eval\"\n");
    auto m = make_model(p, c.info);
    std::vector<std::string> warnings;
    const auto bits = host::resolve_bits(*m, *p.quantizer, warnings);
    CHECK(warnings.empty());
    size_t moved = 0;
    for (const auto& b : bits) {
      CAPTURE(b.name);
      if (b.name == tied) {
        CHECK(b.weight_bits == 2);
        CHECK(b.activation_bits == 3);
        CHECK(b.source == "tied to " + rule);
      }
      moved += b.weight_bits == 2;
    }
    CHECK(moved == 2);  // the rule's layer and its shortcut, nothing else
  }
}

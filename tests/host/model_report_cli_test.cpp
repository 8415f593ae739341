// `saqhost report` on each model family at its input size (synthetic data): the per-layer table with the tied
// shortcut convs marked, and the total BOPs at W4A4 under the paper's first/last policy (stem w8 with its input
// counted at 8 bits, classifier w8a8), against an independent count: by hand for ResNet-18, and from the per-layer
// MACs that tests/data/models/make_fixtures.py measured on torchvision's / the paper's models for MobileNetV2.
#include "unit.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "saqhost_cli.hpp"
#include "support.hpp"

using saq::test::CliResult;
using saq::test::saqhost_on;
using saq::test::TempDir;

namespace {

std::string pipeline(const std::string& model, int size, int classes, const std::string& quantizer_extra = "") {
  return fmt::format(
      "[data]\nuse = \"synthetic\"\nchannels = 3\nsize = {}\nclasses = {}\ntrain_samples = 1\ntest_samples = 1\n"
      "[model]\nuse = \"{}\"\n[quantizer]\nuse = \"liq_wn\"\n{}[[stage]]\nuse = \"eval\"\n",
      size, classes, model, quantizer_extra);
}

std::string total_line(double bops) {
  return fmt::format("**Total: {:.1f} MBOPs ({:.3f} GBOPs)**", bops / 1e6, bops / 1e9);
}

/// W4A4 BOPs from a .macs reference: first layer ·8·8, last ·8·8 (its MACs scaled to `classes` of `ref_classes`),
/// the rest ·4·4.
double fixture_bops(const std::string& file, std::int64_t classes, std::int64_t ref_classes) {
  std::ifstream in(std::filesystem::path(saq::test::env("SAQ_SOURCE_ROOT")) / "tests/data/models" / file);
  std::vector<std::int64_t> macs;
  std::string name;
  for (std::int64_t m; in >> name >> m;) macs.push_back(m);
  REQUIRE(macs.size() > 2);
  const std::int64_t last = macs.back() / ref_classes * classes;
  double bops = 64.0 * static_cast<double>(macs.front()) + 64.0 * static_cast<double>(last);
  for (size_t i = 1; i + 1 < macs.size(); ++i) bops += 16.0 * static_cast<double>(macs[i]);
  return bops;
}

}  // namespace

TEST_CASE("saqhost report: ResNet-18 at 224x224, W4A4, by hand; a rule on conv2 moves the tied downsample") {
  // MACs per layer (k²·C_in·C_out·H·W):
  //   conv1 7·7·3·64·112²                                   = 118,013,952   (w8, input counted 8: ·64)
  //   layer1: 4 × 3·3·64·64·56²      = 4 × 115,605,504      = 462,422,016
  //   layer2: conv1 3·3·64·128·28² = 57,802,752; 3 × 3·3·128·128·28² = 346,816,512; downsample 64·128·28² = 6,422,528
  //           = 411,041,792; layer3 and layer4 the same (channels ×2, map ÷2 each time)
  //   fc 512·10                                             = 5,120         (w8a8: ·64)
  // middle 462,422,016 + 3 · 411,041,792 = 1,695,547,392 at ·16;  all 1,813,566,464 MACs
  // BOPs: 118,013,952·64 + 1,695,547,392·16 + 5,120·64 = 7,552,892,928 + 27,128,758,272 + 327,680 = 34,681,978,880
  TempDir dir;
  CliResult r = saqhost_on(dir, pipeline("resnet18", 224, 10), "report");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.has("**Total: 34682.0 MBOPs (34.682 GBOPs)**, 1813.57 M MACs."));
  CHECK(r.has("| conv1 | conv | 64x3x7x7 | 8 | 32 (counted 8) | 118013952 | 7552.893 |"));
  // 6,422,528·16 = 102,760,448; weights 8,192·4 bits = 4.096 KB; input 64·56·56 = 200,704 values ·4 bits = 100.352 KB
  CHECK(r.has("| layer2.0.downsample.0 | conv | 128x64x1x1 | 4 | 4 | 6422528 | 102.760 | 4.096 | 100.352 | "
              "tied to layer2.0.conv2 |"));
  CHECK(r.has("| fc | linear | 10x512 | 8 | 8 | 5120 | 0.328 |"));

  // layer2.0.conv2 at W2: it drops 115,605,504·(16 − 8) = 924,844,032 and its downsample 6,422,528·(16 − 8) =
  // 51,380,224: 34,681,978,880 − 976,224,256 = 33,705,754,624
  const std::string rule_text = "[[quantizer.rule]]\nmatch = \"layer2.0.conv2\"\nweight_bits = 2\n";
  CliResult rule = saqhost_on(dir, pipeline("resnet18", 224, 10, rule_text), "report");
  INFO(rule.output);
  REQUIRE(rule.status == 0);
  CHECK(rule.has("**Total: 33705.8 MBOPs (33.706 GBOPs)**"));
  CHECK(rule.has("| layer2.0.downsample.0 | conv | 128x64x1x1 | 2 | 4 | 6422528 | 51.380 |"));
}

TEST_CASE("saqhost report: MobileNetV2 at 224x224 and MobileNetV2-CIFAR at 32x32, W4A4, against the reference MACs") {
  TempDir dir;
  CliResult imagenet = saqhost_on(dir, pipeline("mobilenetv2", 224, 10), "report");
  INFO(imagenet.output);
  REQUIRE(imagenet.status == 0);
  // 10,838,016·64 + 288,656,256·16 + 12,800·64 = 5,312,952,320
  CHECK(fixture_bops("mobilenetv2.macs", 10, 1000) == 5312952320.0);
  CHECK(imagenet.has(total_line(fixture_bops("mobilenetv2.macs", 10, 1000))));
  CHECK(imagenet.has("| features.0.0 | conv | 32x3x3x3 | 8 | 32 (counted 8) | 10838016 |"));
  CHECK(imagenet.has("| features.1.conv.0.0 | dwconv | 32x1x3x3 | 4 | 4 | 3612672 |"));  // 9·32·112²
  CHECK(imagenet.has("| classifier.1 | linear | 10x1280 | 8 | 8 | 12800 |"));

  CliResult cifar = saqhost_on(dir, pipeline("mobilenetv2_cifar", 32, 100), "report");
  INFO(cifar.output);
  REQUIRE(cifar.status == 0);
  // 884,736·64 + 90,257,408·16 + 128,000·64 = 1,508,933,632
  CHECK(fixture_bops("mobilenetv2_cifar.macs", 100, 100) == 1508933632.0);
  CHECK(cifar.has(total_line(1508933632.0)));
  // 1×1 32→16 at 32×32: 524,288 MACs
  CHECK(cifar.has("| layers.0.shortcut.0 | conv | 16x32x1x1 | 4 | 4 | 524288 | 8.389 |"));
  CHECK(cifar.has("tied to layers.0.conv3 |"));
  CHECK(cifar.has("| linear | linear | 100x1280 | 8 | 8 | 128000 |"));
}

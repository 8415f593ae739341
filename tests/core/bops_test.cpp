// BOPs and memory footprints by the SAQ paper's rule (research/algorithms.md §4), against the paper's PreResNet-20
// CIFAR-100 totals (674.6 / 392.1 / 190.2 MBOPs at 4 / 3 / 2 bits) and against per-layer counts done by hand.
#include "unit.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include <saq/layers.hpp>
#include <saq/model.hpp>
#include <saq/quantizer.hpp>

#include "bops.hpp"
#include "quantize.hpp"

namespace saq::host {

namespace {

/// The model of a pipeline on synthetic 3×32×32 data with 100 classes, with the quantizer of `quantizer` attached
/// and its bits applied, as core/engine.cpp builds it.
std::shared_ptr<Model> build(const std::string& quantizer, const std::string& model = "use = \"preresnet20\"",
                             bool full_precision = false) {
  test::TempDir dir;
  Pipeline p = test::pipeline_from_text(
      dir, "[data]\nuse = \"synthetic\"\nchannels = 3\nsize = 32\nclasses = 100\ntrain_samples = 1\ntest_samples = 1\n"
           "[model]\n" + model + "\n[quantizer]\n" + quantizer + "\n[[stage]]\nuse = \"eval\"\n");
  const Registry& reg = test::registry();
  Context ctx;
  auto data = reg.make<Dataset>(reg.require(Kind::Dataset, p.data->use(), "test"), *p.data, ctx);
  ctx.data = data->info();
  auto m = reg.make<Model>(reg.require(Kind::Model, p.model->use(), "test"), *p.model, ctx);
  auto q = reg.make<Quantizer>(reg.require(Kind::Quantizer, p.quantizer->use(), "test"), *p.quantizer, ctx);
  std::vector<std::string> warnings;
  auto bits = resolve_bits(*m, *p.quantizer, warnings);
  attach_quantizers(*m, *q);
  apply_bits(*m, bits, full_precision);
  return m;
}

const DataInfo kCifar100{{3, 32, 32}, 100, {}};

/// The costs of PreResNet-20 at uniform W`bits`A`bits` (first and last layers by the policy), measured once.
const CostReport& preresnet20(int bits) {
  static std::map<int, CostReport> done;
  auto it = done.find(bits);
  if (it == done.end()) {
    auto m = build("use = \"liq_wn\"\nweight_bits = " + std::to_string(bits) + "\nactivation_bits = " +
                   std::to_string(bits));
    it = done.emplace(bits, measure_costs(*m, kCifar100)).first;
  }
  return it->second;
}

const LayerCost& layer(const CostReport& r, const std::string& name) {
  const LayerCost* found = nullptr;
  for (const auto& c : r.layers)
    if (c.name == name) found = &c;
  REQUIRE_MESSAGE(found != nullptr, "no layer " << name);
  return *found;
}

using saq::test::contains;

// PreResNet-20 on 32×32, MACs per layer (k²·C_in·C_out·H_out·W_out):
//   conv (stem) 3→16 @32²:                      9·3·16·1024   =    442,368   (w8, a32 counted as a8: ·64)
//   layer1: 6 convs 16→16 @32²:               6·9·16·16·1024  = 14,155,776
//   layer2: conv1 16→32 @16²  9·16·32·256 = 1,179,648; 5 convs 32→32 @16² 5·2,359,296 = 11,796,480;
//           downsample 1×1 16→32 @16² 16·32·256 = 131,072;  together 13,107,200
//   layer3: the same count at half the size and twice the channels:         13,107,200
//   fc 64→100:                                                      6,400   (w8a8: ·64)
// The 20 middle layers hold 14,155,776 + 2·13,107,200 = 40,370,176 MACs, all layers 40,818,944.
// BOPs at b bits: (442,368 + 6,400)·64 + 40,370,176·b² = 28,721,152 + 40,370,176·b²
//   b = 4: 674,643,968;   b = 3: 392,052,736;   b = 2: 190,201,856
constexpr double kFirstLastBops = 28721152, kMiddleMacs = 40370176;

}  // namespace

TEST_CASE("bops: PreResNet-20 on CIFAR-100 matches the SAQ paper: 674.6 / 392.1 / 190.2 MBOPs at W4A4 / W3A3 / W2A2") {
  const CostReport& w4 = preresnet20(4);
  CHECK(w4.bops / 1e6 == doctest::Approx(674.6).epsilon(0.05 / 674.6));
  CHECK(w4.bops == kFirstLastBops + kMiddleMacs * 16);
  CHECK(w4.macs == 40818944);
  CHECK(w4.layers.size() == 22);  // stem + 18 block convs + 2 downsample convs + fc (§7.1)

  const CostReport& w3 = preresnet20(3);
  CHECK(w3.bops / 1e6 == doctest::Approx(392.1).epsilon(0.05 / 392.1));
  CHECK(w3.bops == kFirstLastBops + kMiddleMacs * 9);
  const CostReport& w2 = preresnet20(2);
  CHECK(w2.bops / 1e6 == doctest::Approx(190.2).epsilon(0.05 / 190.2));
  CHECK(w2.bops == kFirstLastBops + kMiddleMacs * 4);
}

TEST_CASE("bops: the first layer counts its unquantized input as 8 bits, unless its weights are FP too") {
  const CostReport& r = preresnet20(4);
  const LayerCost& stem = layer(r, "conv");
  CHECK(r.layers.front().name == "conv");
  CHECK(stem.macs == 3 * 3 * 3 * 16 * 32 * 32);  // 442,368
  CHECK(stem.weight_bits == 8);
  CHECK(stem.activation_bits == 32);
  CHECK(stem.counted_activation_bits == 8);
  CHECK(stem.bops == 442368.0 * 8 * 8);
  CHECK(stem.kind == "conv");
  CHECK(stem.shape == "16x3x3x3");
  const LayerCost& fc = layer(r, "fc");
  CHECK(r.layers.back().name == "fc");
  CHECK(fc.kind == "linear");
  CHECK(fc.macs == 6400);
  CHECK(fc.bops == 6400.0 * 8 * 8);
  const LayerCost& ds = layer(r, "layer2.0.downsample");
  CHECK(ds.macs == 16 * 32 * 16 * 16);  // 1×1, stride 2: 131,072
  CHECK(ds.bops == 131072.0 * 4 * 4);

  // first_weight_bits = 32: the stem is full precision and counts 32·32
  auto fp_stem = build("use = \"liq_wn\"\nfirst_weight_bits = 32");
  const CostReport r2 = measure_costs(*fp_stem, kCifar100);
  CHECK(layer(r2, "conv").counted_activation_bits == 32);
  CHECK(layer(r2, "conv").bops == 442368.0 * 32 * 32);

  // an FP32 stage's bits: every layer 32·32, total 40,818,944·1024
  auto fp = build("use = \"liq_wn\"", "use = \"preresnet20\"", /*full_precision=*/true);
  const CostReport r3 = measure_costs(*fp, kCifar100);
  CHECK(r3.bops == 40818944.0 * 1024);
}

TEST_CASE("bops: footprints are numel·b_w for weights and the layer input's numel·b_a for activations") {
  const CostReport& r = preresnet20(4);
  // Weights: stem 3·16·9 = 432 at 8 bits = 3,456; the middle layers hold
  //   layer1 6·2,304 = 13,824;  layer2 4,608 + 5·9,216 + 512 = 51,200;  layer3 18,432 + 5·36,864 + 2,048 = 204,800
  //   = 269,824 weights at 4 bits = 1,079,296;  fc 6,400 at 8 bits = 51,200.   Total 1,133,952 bits.
  CHECK(r.weight_bits == 1133952);
  CHECK(layer(r, "layer3.1.conv2").weight_bits_total == 36864.0 * 4);
  // Activations (per sample): stem input 3·32·32 = 3,072 counted at 8 bits = 24,576; middle inputs
  //   layer1 6·16·32·32 = 98,304;  layer2 16,384 (conv1) + 8,192 (conv2) + 16,384 (downsample) + 4·8,192 = 73,728;
  //   layer3 8,192 + 4,096 + 8,192 + 4·4,096 = 36,864;  = 208,896 at 4 bits = 835,584;  fc 64 at 8 bits = 512.
  //   Total 860,672 bits; the largest single one is a 16·32·32 input at 4 bits = 65,536.
  CHECK(r.activation_bits == 860672);
  CHECK(r.max_activation_bits == 65536);
  CHECK(layer(r, "conv").activation_bits_total == 3072.0 * 8);
}

TEST_CASE("bops: the Markdown report has a row per layer and the totals; the JSON has mbops and layer_bits") {
  const CostReport& r = preresnet20(4);
  const std::string md = cost_markdown(r, "w4a4");
  CHECK(contains(md, "# w4a4"));
  for (const auto& c : r.layers) CHECK(contains(md, "| " + c.name + " | "));
  CHECK(contains(md, "| conv | conv | 16x3x3x3 | 8 | 32 (counted 8) | 442368 | 28.312 |"));  // 442,368·64 = 28.311552 M
  CHECK(contains(md, "**Total: 674.6 MBOPs (0.675 GBOPs)**, 40.82 M MACs."));
  // KB = bits/8/1000: weights 141.744, activations 107.584, total 249.328, weights + largest 149.936
  CHECK(contains(md, "Weights 141.7 KB, activations 107.6 KB, total 249.3 KB; weights + largest single activation "
                     "149.9 KB."));
  const std::string json = cost_json(r);
  CHECK(contains(json, "\"mbops\": 674.6"));
  CHECK(contains(json, "\"layer_bits\": {\"conv\": [8, 32], \"layer1.0.conv1\": [4, 4]"));
  CHECK(contains(json, "\"fc\": [8, 8]}"));
}

namespace {

/// conv1 3→8, a depthwise 3×3 (groups 8), a grouped 1×1 (groups 2) and a linear 8→10, on 3×8×8.
class Mixed final : public Model {
 public:
  Mixed() {
    conv1_ = conv2d(*this, "conv1", {3, 8, 3, 1, 1, 1, false});
    dw_ = conv2d(*this, "dw", {8, 8, 3, 1, 1, 8, false});
    gc_ = conv2d(*this, "gc", {8, 8, 1, 1, 0, 2, false});
    fc_ = linear(*this, "fc", 8, 10);
  }
  at::Tensor forward(const at::Tensor& x) override {
    return fc_->forward(gc_->forward(dw_->forward(conv1_->forward(x))).mean({2, 3}));
  }

 private:
  std::shared_ptr<Conv2dLayer> conv1_, dw_, gc_;
  std::shared_ptr<LinearLayer> fc_;
};

}  // namespace

TEST_CASE("bops: a depthwise conv counts k²·C·H·W MACs, a grouped one k²·(C_in/g)·C_out·H·W") {
  test::TempDir dir;
  Pipeline p = test::pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"small_cnn\"\n"
                                             "[quantizer]\nuse = \"liq_wn\"\n[[stage]]\nuse = \"eval\"\n");
  const Registry& reg = test::registry();
  auto q = reg.make<Quantizer>(reg.require(Kind::Quantizer, "liq_wn", "test"), *p.quantizer, Context{});
  Mixed m;
  std::vector<std::string> warnings;
  auto bits = resolve_bits(m, *p.quantizer, warnings);
  attach_quantizers(m, *q);
  apply_bits(m, bits, false);
  const CostReport r = measure_costs(m, DataInfo{{3, 8, 8}, 10, {}});
  REQUIRE(r.layers.size() == 4);
  // conv1: 9·3·8·64 = 13,824 MACs, w8 a32 counted 8: ·64 = 884,736
  CHECK(r.layers[0].macs == 13824);
  CHECK(r.layers[0].bops == 884736);
  // dw: 9·8·64 = 4,608 MACs (= 9·(8/8)·8·64), W4A4: ·16 = 73,728
  CHECK(r.layers[1].kind == "dwconv");
  CHECK(r.layers[1].macs == 4608);
  CHECK(r.layers[1].bops == 73728);
  // gc: 1·(8/2)·8·64 = 2,048 MACs, ·16 = 32,768
  CHECK(r.layers[2].kind == "gconv");
  CHECK(r.layers[2].macs == 2048);
  CHECK(r.layers[2].bops == 32768);
  // fc (last, w8a8): 8·10 = 80 MACs, ·64 = 5,120
  CHECK(r.layers[3].bops == 5120);
  CHECK(r.bops == 884736 + 73728 + 32768 + 5120);
  // weights: 216·8 + 72·4 + 32·4 + 80·8 = 1,728 + 288 + 128 + 640 = 2,784 bits
  CHECK(r.weight_bits == 2784);
}

}  // namespace saq::host

// Per-layer bits from [quantizer] on PreResNet-20 (layers "conv", "layer1.0.conv1", ..., "fc"): the defaults, the
// paper's first/last-layer policy (w8a32 stem, w8a8 fc, §3.4), [[quantizer.rule]] globs in order, the downsample
// convs' ties to their block's conv2 (§5.2), the checks on bit values, and attaching/applying them to a model.
#include "unit.hpp"

#include <tuple>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <saq/layers.hpp>
#include <saq/model.hpp>

#include "bops.hpp"
#include "errors.hpp"
#include "quantize.hpp"

namespace saq::host {

namespace {

struct Resolved {
  std::shared_ptr<Model> model;
  std::shared_ptr<Quantizer> quantizer;
  std::vector<LayerBits> bits;
  std::vector<std::string> warnings;
  std::string error;  ///< what resolve_bits threw, or ""
};

/// PreResNet-20 (3×32×32, 100 classes) and the bits a [quantizer] table with `body` (after `use = "liq_wn"`) gives.
/// Loads the pipeline (which checks every bit-width) and resolves its bits; the first error is kept.
Resolved resolve(const std::string& body) {
  test::TempDir dir;
  Resolved r;
  Pipeline p;
  try {
    p = test::pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"preresnet20\"\n"
                                      "[quantizer]\nuse = \"liq_wn\"\n" +
                                          body + "\n[[stage]]\nuse = \"eval\"\n");
  } catch (const InputError& e) {
    r.error = e.what();
    return r;
  }
  const Registry& reg = test::registry();
  Context ctx;
  ctx.data = DataInfo{{3, 32, 32}, 100, {}};
  r.model = reg.make<Model>(reg.require(Kind::Model, "preresnet20", "test"), *p.model, ctx);
  r.quantizer = reg.make<Quantizer>(reg.require(Kind::Quantizer, "liq_wn", "test"), *p.quantizer, ctx);
  try {
    r.bits = resolve_bits(*r.model, *p.quantizer, r.warnings);
  } catch (const std::invalid_argument& e) {
    r.error = e.what();
  }
  return r;
}

const LayerBits& named(const Resolved& r, const std::string& name) {
  const LayerBits* found = nullptr;
  for (const auto& b : r.bits)
    if (b.name == name) found = &b;
  REQUIRE_MESSAGE(found != nullptr, "no layer " << name);
  return *found;
}

using saq::test::contains;

void check_bits(const LayerBits& b, int w, int a, const std::string& source) {
  CAPTURE(b.name);
  CHECK(b.weight_bits == w);
  CHECK(b.activation_bits == a);
  CHECK(b.source == source);
}

}  // namespace

TEST_CASE("resolve_bits: defaults W4A4, the first layer w8a32 and the last w8a8 (the paper's policy)") {
  Resolved r = resolve("");
  REQUIRE(r.error.empty());
  REQUIRE(r.bits.size() == 22);  // stem + 18 block convs + 2 downsample convs + fc
  check_bits(r.bits.front(), 8, 32, "first layer");
  CHECK(r.bits.front().name == "conv");
  check_bits(r.bits.back(), 8, 8, "last layer");
  CHECK(r.bits.back().name == "fc");
  for (size_t i = 1; i + 1 < r.bits.size(); ++i) {
    const std::string& name = r.bits[i].name;
    const bool tied = name.find("downsample") != std::string::npos;
    check_bits(r.bits[i], 4, 4, tied ? "tied to " + name.substr(0, name.find("downsample")) + "conv2" : "default");
  }
  CHECK(r.bits[1].name == "layer1.0.conv1");
  check_bits(named(r, "layer2.0.downsample"), 4, 4, "tied to layer2.0.conv2");
  CHECK(r.warnings.empty());
}

TEST_CASE("resolve_bits: the section's keys set the defaults and the first/last policy") {
  Resolved r = resolve("weight_bits = 3\nactivation_bits = 5\nfirst_weight_bits = 6\nfirst_activation_bits = 8\n"
                       "last_weight_bits = 32\nlast_activation_bits = 32");
  REQUIRE(r.error.empty());
  check_bits(named(r, "conv"), 6, 8, "first layer");
  check_bits(named(r, "layer3.2.conv2"), 3, 5, "default");
  check_bits(named(r, "fc"), 32, 32, "last layer");
}

TEST_CASE("resolve_bits: rules apply in order, later rules win, a rule may set one of the two bits") {
  Resolved r = resolve(R"(
[[quantizer.rule]]
match = "layer3.*"
weight_bits = 2
activation_bits = 3
[[quantizer.rule]]
match = "layer3.0.*"
weight_bits = 6
[[quantizer.rule]]
match = "conv"
weight_bits = 4
[[quantizer.rule]]
match = "layer2.0.conv?"
activation_bits = 8
)");
  REQUIRE(r.error.empty());
  // rule 0 alone: layer3.1.conv1 is 2/3
  check_bits(named(r, "layer3.1.conv1"), 2, 3, "quantizer.rule[0] \"layer3.*\"");
  // rule 1 sets only the weight: layer3.0.conv1 keeps rule 0's activation bits
  check_bits(named(r, "layer3.0.conv1"), 6, 3, "quantizer.rule[1] \"layer3.0.*\"");
  // rule 3 sets only the activations of layer2.0's convs; the downsample convs follow their block's conv2
  check_bits(named(r, "layer2.0.conv1"), 4, 8, "quantizer.rule[3] \"layer2.0.conv?\"");
  check_bits(named(r, "layer2.0.downsample"), 4, 8, "tied to layer2.0.conv2");
  check_bits(named(r, "layer3.0.downsample"), 6, 3, "tied to layer3.0.conv2");
  // a rule overrides the first-layer policy; the glob "conv" matches the whole name only
  check_bits(named(r, "conv"), 4, 32, "quantizer.rule[2] \"conv\"");
  check_bits(named(r, "layer1.0.conv1"), 4, 4, "default");
  check_bits(named(r, "fc"), 8, 8, "last layer");
  CHECK(r.warnings.empty());
}

TEST_CASE("resolve_bits: a rule that matches no layer is a warning naming it") {
  Resolved r = resolve(R"(
[[quantizer.rule]]
match = "layer1.*"
weight_bits = 3
[[quantizer.rule]]
match = "layer4.*"
weight_bits = 2
)");
  REQUIRE(r.error.empty());
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] == "quantizer.rule[1] \"layer4.*\" matches no layer");
  CHECK(named(r, "layer1.2.conv2").weight_bits == 3);
}

TEST_CASE("resolve_bits: a downsample conv takes its block's conv2 bits after every rule; the tables say so") {
  Resolved r = resolve(R"(
[[quantizer.rule]]
match = "layer2.0.conv2"
weight_bits = 2
activation_bits = 3
[[quantizer.rule]]
match = "layer3.*"
weight_bits = 5
)");
  REQUIRE(r.error.empty());
  check_bits(named(r, "layer2.0.conv2"), 2, 3, "quantizer.rule[0] \"layer2.0.conv2\"");
  check_bits(named(r, "layer2.0.downsample"), 2, 3, "tied to layer2.0.conv2");
  check_bits(named(r, "layer2.0.conv1"), 4, 4, "default");
  // "layer3.*" sets the downsample conv and its conv2 alike: no warning
  check_bits(named(r, "layer3.0.downsample"), 5, 4, "tied to layer3.0.conv2");
  CHECK(r.warnings.empty());
  CHECK(contains(bits_table(r.bits), "layer2.0.downsample                   2      3  tied to layer2.0.conv2\n"));
  // report.md: 1×1 16→32 at 16×16 = 131,072 MACs ·2·3 = 786,432 BOPs; 512 weights ·2 bits = 0.128 KB;
  // its input 16·32·32 = 16,384 values ·3 bits = 6.144 KB
  const std::string md = cost_markdown(measure_costs(*r.model, DataInfo{{3, 32, 32}, 100, {}}, &r.bits), "t");
  CHECK(contains(md, "| layer2.0.downsample | conv | 32x16x1x1 | 2 | 3 | 131072 | 0.786 | 0.128 | 6.144 | "
                     "tied to layer2.0.conv2 |\n"));
  CHECK(contains(md, "| layer2.0.conv2 | conv | 32x32x3x3 | 2 | 3 |"));
  CHECK(contains(md, "| conv | conv | 16x3x3x3 | 8 | 32 (counted 8) | 442368 | 28.312 | 0.432 | 3.072 | "
                     "first layer |"));
}

TEST_CASE("resolve_bits: a rule that sets a tied layer but not the layer it follows is a warning naming both") {
  Resolved r = resolve("[[quantizer.rule]]\nmatch = \"*.downsample\"\nweight_bits = 2\n");
  REQUIRE(r.error.empty());
  REQUIRE(r.warnings.size() == 2);
  CHECK(r.warnings[0] == "quantizer.rule[0] \"*.downsample\" sets layer2.0.downsample, whose bits follow "
                         "layer2.0.conv2; the rule does not change it");
  CHECK(r.warnings[1] == "quantizer.rule[0] \"*.downsample\" sets layer3.0.downsample, whose bits follow "
                         "layer3.0.conv2; the rule does not change it");
  check_bits(named(r, "layer2.0.downsample"), 4, 4, "tied to layer2.0.conv2");
}

namespace {

/// conv1 → a → b → c → fc, every conv 4→4 1×1 but the first; ties set by each test.
class Chain final : public Model {
 public:
  Chain() {
    conv1_ = conv2d(*this, "conv1", {3, 4, 3, 1, 1});
    for (const char* name : {"a", "b", "c"}) convs_.push_back(conv2d(*this, name, {4, 4, 1, 1, 0}));
    fc_ = linear(*this, "fc", 4, 2);
  }
  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor h = conv1_->forward(x);
    for (auto& c : convs_) h = c->forward(h);
    return fc_->forward(h.mean({2, 3}));
  }
  std::shared_ptr<Conv2dLayer> conv1_;
  std::vector<std::shared_ptr<Conv2dLayer>> convs_;
  std::shared_ptr<LinearLayer> fc_;
};

std::string resolve_error(Model& m, const Params& q) {
  std::vector<std::string> warnings;
  try {
    resolve_bits(m, q, warnings);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("resolve_bits: ties chain to the end; a tie to a missing layer or a cycle of ties is an error") {
  test::TempDir dir;
  Pipeline p = test::pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"small_cnn\"\n"
                                             "[quantizer]\nuse = \"liq_wn\"\n[[quantizer.rule]]\nmatch = \"c\"\n"
                                             "weight_bits = 3\n[[stage]]\nuse = \"eval\"\n");
  Chain m;
  m.convs_[0]->set_bits_from("b");  // a → b → c
  m.convs_[1]->set_bits_from("c");
  std::vector<std::string> warnings;
  auto bits = resolve_bits(m, *p.quantizer, warnings);
  check_bits(bits[1], 3, 4, "tied to b");
  check_bits(bits[2], 3, 4, "tied to c");
  check_bits(bits[3], 3, 4, "quantizer.rule[0] \"c\"");

  m.convs_[1]->set_bits_from("layer9");
  CHECK(resolve_error(m, *p.quantizer) ==
        "layer 'b' takes its bits from 'layer9', which is not a quantizable layer of the model");
  m.convs_[1]->set_bits_from("c");
  m.convs_[2]->set_bits_from("a");
  CHECK(resolve_error(m, *p.quantizer) == "layers take their bits from each other: a -> b -> c -> a");
}

TEST_CASE("bits outside 2..8 and 32 are an error when the pipeline loads, naming the key and the value") {
  Resolved rule = resolve("[[quantizer.rule]]\nmatch = \"layer1.*\"\nweight_bits = 9\n");
  CHECK(contains(rule.error, "pipeline.toml:"));
  CHECK(contains(rule.error, "quantizer.rule[0].weight_bits: must be 2..8, or 32 for full precision, got 9"));
  Resolved act = resolve("[[quantizer.rule]]\nmatch = \"fc\"\nweight_bits = 4\n[[quantizer.rule]]\nmatch = \"conv\"\n"
                         "activation_bits = 1\n");
  CHECK(contains(act.error, "quantizer.rule[1].activation_bits: must be 2..8, or 32 for full precision, got 1"));
  Resolved section = resolve("weight_bits = 9");
  CHECK(contains(section.error, "pipeline.toml:7:"));  // the line of the key
  CHECK(contains(section.error, "quantizer.weight_bits: must be 2..8, or 32 for full precision, got 9"));
  CHECK(contains(resolve("first_activation_bits = 16").error, "quantizer.first_activation_bits: must be 2..8"));
  CHECK(contains(resolve("last_weight_bits = 0").error, "quantizer.last_weight_bits: must be 2..8"));
}

TEST_CASE("attach_quantizers and apply_bits set every layer's bits; an FP32 stage sets 32/32") {
  Resolved r = resolve("[[quantizer.rule]]\nmatch = \"layer2.*\"\nweight_bits = 2\n");
  REQUIRE(r.error.empty());
  attach_quantizers(*r.model, *r.quantizer);
  attach_quantizers(*r.model, *r.quantizer);  // layers that have quantizers keep them
  apply_bits(*r.model, r.bits, false);
  auto layers = quant_layers(*r.model);
  REQUIRE(layers.size() == r.bits.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    CAPTURE(layers[i].first);
    CHECK(layers[i].first == r.bits[i].name);
    CHECK(layers[i].second->quantizable());
    CHECK(layers[i].second->weight_bits() == r.bits[i].weight_bits);
    CHECK(layers[i].second->activation_bits() == r.bits[i].activation_bits);
  }
  CHECK(layers[7].first == "layer2.0.conv1");
  CHECK(layers[7].second->weight_bits() == 2);
  apply_bits(*r.model, r.bits, true);
  for (const auto& item : layers) {
    const auto& name = std::get<0>(item);
    const auto& layer = std::get<1>(item);
    CAPTURE(name);
    CHECK(layer->weight_bits() == 32);
    CHECK(layer->activation_bits() == 32);
  }
}

TEST_CASE("bits_table lists every layer with its bits and what set them") {
  Resolved r = resolve("[[quantizer.rule]]\nmatch = \"layer3.*\"\nweight_bits = 2\n");
  const std::string table = bits_table(r.bits);
  std::vector<std::string> lines;
  for (size_t at = 0, next; at < table.size(); at = next + 1) {
    next = table.find('\n', at);
    lines.push_back(table.substr(at, next - at));
  }
  REQUIRE(lines.size() == 23);  // a header and 22 layers
  CHECK(contains(lines[0], "layer"));
  CHECK(contains(lines[0], "set by"));
  for (size_t i = 0; i < r.bits.size(); ++i) {
    CAPTURE(lines[i + 1]);
    CHECK(lines[i + 1].rfind(r.bits[i].name + " ", 0) == 0);
  }
  CHECK(contains(lines[1], "8     32  first layer"));
  CHECK(contains(lines[22], "8      8  last layer"));
  CHECK(contains(table, "layer3.0.downsample"));
  CHECK(contains(table, "2      4  quantizer.rule[0] \"layer3.*\""));
}

}  // namespace saq::host

// What a search acts on: bits set on a layer change the forward pass, and a rules file (a search's result.toml)
// resolves to exactly its bits, tied layers following.
#include "model_zoo.hpp"

#include "quantize.hpp"

namespace {

std::shared_ptr<saq::Quantizer> make_quantizer(const saq::host::Pipeline& p) {
  const saq::host::Registry& reg = saq::test::registry();
  return reg.make<saq::Quantizer>(reg.require(saq::Kind::Quantizer, p.quantizer->use(), "test"), *p.quantizer,
                                  saq::Context());
}

}  // namespace

TEST_CASE("a layer's bits change the model's output; setting them back restores it") {
  saq::test::TempDir dir;
  auto p = saq::test::pipeline_from_text(dir, R"([data]
use = "synthetic"
size = 12
[model]
use = "small_cnn"
width = 4
[quantizer]
use = "liq_wn"
[[stage]]
use = "eval"
)");
  auto model = saq::test::make_model(p, saq::DataInfo{{1, 12, 12}, 10, {}});
  saq::host::attach_quantizers(*model, *make_quantizer(p));
  auto layers = saq::quant_layers(*model);
  for (auto& [name, l] : layers) l->set_bits(4, 4);
  at::manual_seed(0);
  at::Tensor x = at::randn({4, 1, 12, 12});
  model->train();
  model->forward(x);  // data-driven clip initialisation
  model->eval();
  at::NoGradGuard no_grad;
  at::Tensor y4 = model->forward(x);
  layers[2].second->set_bits(2, 2);
  at::Tensor y2 = model->forward(x);
  layers[2].second->set_bits(4, 4);
  CHECK(!at::allclose(y2, y4));
  CHECK(at::equal(model->forward(x), y4));
}

TEST_CASE("a rules file sets exactly its layers; tied layers follow the layer they are tied to") {
  saq::test::TempDir dir;
  auto model = saq::test::zoo_model("preresnet20", saq::test::kCifar100);
  auto layers = saq::quant_layers(*model);
  std::string tied, source;
  for (auto& [name, l] : layers)
    if (!l->bits_from().empty()) tied = name, source = l->bits_from();
  REQUIRE(!tied.empty());
  saq::test::write_file(dir / "result.toml", "# a search result\n[[quantizer.rule]]\nmatch = \"" + source +
                                                 "\"\nweight_bits = 3\nactivation_bits = 5\n"
                                                 "[[quantizer.rule]]\nmatch = \"layer1.0.conv1\"\nweight_bits = 2\n"
                                                 "activation_bits = 2\n");
  auto p = saq::test::pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"preresnet20\"\n"
                                              "[quantizer]\nuse = \"liq_wn\"\nrules_file = \"" +
                                                  (dir / "result.toml").string() + "\"\n[[stage]]\nuse = \"eval\"\n");
  std::vector<std::string> warnings;
  auto bits = saq::host::resolve_bits(*model, *p.quantizer, warnings);
  CHECK(warnings.empty());
  saq::host::attach_quantizers(*model, *make_quantizer(p));
  saq::host::apply_bits(*model, bits, false);
  for (size_t i = 0; i < layers.size(); ++i) {
    CAPTURE(layers[i].first);
    const auto& l = *layers[i].second;
    if (layers[i].first == source || layers[i].first == tied) {
      CHECK(l.weight_bits() == 3);
      CHECK(l.activation_bits() == 5);
    } else if (layers[i].first == "layer1.0.conv1") {
      CHECK(l.weight_bits() == 2);
      CHECK(l.activation_bits() == 2);
    } else if (i == 0) {
      CHECK(l.weight_bits() == 8);
    } else if (i + 1 < layers.size()) {
      CHECK(l.weight_bits() == 4);
    }
  }
  saq::test::write_file(dir / "bad.toml", "[[quantizer.rule]]\nmatch = \"fc\"\nweight_bits = 9\n");
  auto bad = saq::test::pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"preresnet20\"\n"
                                                "[quantizer]\nuse = \"liq_wn\"\nrules_file = \"" +
                                                    (dir / "bad.toml").string() + "\"\n[[stage]]\nuse = \"eval\"\n");
  const std::string why = saq::test::error_of([&] { saq::host::resolve_bits(*model, *bad.quantizer, warnings); });
  CHECK(saq::test::contains(why, "bad.toml: quantizer.rule[0].weight_bits: must be 2..8, or 32 for full precision, got 9"));
}

// The switchable-bit supernet (saq/supernet.hpp, core/supernet.cpp): per-bit quantizers, BatchNorm copies chosen
// by the bits of the layer that produced their input (research/algorithms.md §5.2), the trace that finds that
// layer, the exemption that reproduces the paper's released code, and the model given back intact.
#include "sharpness_aware_fixture.hpp"

#include <set>

#include <saq/supernet.hpp>

#include "model_zoo.hpp"
#include "quantize.hpp"
#include "supernet.hpp"

using namespace saq;
using namespace saq::sa_test;

namespace {

/// conv (1 → 2, 1×1) → bn → ReLU → spatial mean → fc (2 → 3): the norm's input comes from conv.
class ConvNormNet : public Model {
 public:
  ConvNormNet() {
    conv = conv2d(*this, "conv", ConvSpec{1, 2, 1, 1, 0, 1, false});
    bn = batch_norm2d(*this, "bn", 2);
    fc = linear(*this, "fc", 2, 3, true);
    conv->attach(std::make_shared<GainQuantizer>(), std::make_shared<GainQuantizer>());
    fc->attach(std::make_shared<GainQuantizer>(), std::make_shared<GainQuantizer>());
    conv->set_bits(3, 3);
    fc->set_bits(8, 8);
    to(at::kDouble);
  }
  at::Tensor forward(const at::Tensor& x) override { return fc->forward(at::relu(bn->forward(conv->forward(x))).mean({2, 3})); }
  std::shared_ptr<Conv2dLayer> conv;
  std::shared_ptr<BatchNorm2dLayer> bn;
  std::shared_ptr<LinearLayer> fc;
};

std::set<std::string> state_names(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters()) out.insert(p.key());
  for (const auto& b : m.named_buffers()) out.insert(b.key());
  return out;
}

/// batch_norm in eval mode by hand: γ·(x − μ)/√(σ² + ε) + β per channel.
at::Tensor norm_by_hand(const at::Tensor& x, const BatchNorm2dLayer& bn) {
  auto v = [](const at::Tensor& t) { return t.view({1, -1, 1, 1}); };
  return v(bn.weight) * (x - v(bn.running_mean)) / at::sqrt(v(bn.running_var) + bn.eps) + v(bn.bias);
}

}  // namespace

TEST_CASE("the forward trace names the layer that produced each norm's input") {
  ConvNormNet net;
  auto producers = norm_producers(net, at::zeros({1, 1, 2, 2}, at::kDouble));
  REQUIRE(producers.size() == 1);
  CHECK(producers["bn"] == "conv");

  // PreResNet (pre-activation): a block's bn1 takes the previous block's conv2 output (§5.2); layer1.0.bn1 the
  // stem's; bn2 its own block's conv1.
  auto model = test::zoo_model("preresnet20", test::kCifar100);
  auto p = norm_producers(*model, at::zeros({1, 3, 32, 32}));
  CHECK(p["layer1.0.bn1"] == "conv");
  CHECK(p["layer1.0.bn2"] == "layer1.0.conv1");
  CHECK(p["layer1.1.bn1"] == "layer1.0.conv2");
  CHECK(p["layer2.0.bn1"] == "layer1.2.conv2");
}

TEST_CASE("switchable BN uses the copy its producer's bits name, and only that copy learns statistics") {
  ConvNormNet net;
  net.bn->make_switchable(net.conv, {2, 3, 4}, /*same_bits_only=*/true);
  CHECK(net.bn->switchable());
  CHECK(net.bn->copy_for(3, 4) == nullptr);  // same bits only: the diagonal
  auto c2 = net.bn->copy_for(2, 2), c3 = net.bn->copy_for(3, 3), c4 = net.bn->copy_for(4, 4);
  REQUIRE((c2 && c3 && c4));
  CHECK(state_names(net).count("bn.w3a3.running_mean") == 1);
  {
    at::NoGradGuard no_grad;
    c2->running_mean.fill_(0.5), c3->running_mean.fill_(-1.0), c2->weight.fill_(2.0);
  }
  at::Tensor x = at::sin(at::arange(8, at::kDouble)).view({2, 1, 2, 2});
  net.eval();
  at::NoGradGuard no_grad;
  at::Tensor h = net.conv->forward(x);
  net.conv->set_bits(3, 3);
  CHECK(at::allclose(net.bn->forward(h), norm_by_hand(h, *c3)));
  net.conv->set_bits(2, 2);
  CHECK(at::allclose(net.bn->forward(h), norm_by_hand(h, *c2)));
  CHECK(!at::allclose(norm_by_hand(h, *c2), norm_by_hand(h, *c3)));
  net.conv->set_bits(3, 4);
  CHECK_THROWS_WITH_AS(net.bn->forward(h), doctest::Contains("no copy for bits w3a4"), std::invalid_argument);

  net.train();
  net.conv->set_bits(4, 4);
  const at::Tensor before2 = c2->running_mean.clone(), before_own = net.bn->running_mean.clone();
  net.bn->forward(h);
  // momentum 0.1 towards the batch mean, in copy w4a4 only
  CHECK(at::allclose(c4->running_mean, 0.1 * h.mean({0, 2, 3})));
  CHECK(c4->num_batches_tracked.item<std::int64_t>() == 1);
  CHECK(at::equal(c2->running_mean, before2));
  CHECK(at::equal(net.bn->running_mean, before_own));

  net.bn->drop_switchable();
  CHECK(!net.bn->switchable());
  CHECK(state_names(net).count("bn.w3a3.running_mean") == 0);
}

TEST_CASE("a switchable quantizer runs one inner quantizer per bit-width; only that one's clip gets a gradient") {
  SwitchableQuantizer q({2, 4}, [] { return std::make_shared<GainQuantizer>(); });
  auto& q2 = dynamic_cast<GainQuantizer&>(q.inner(2));
  auto& q4 = dynamic_cast<GainQuantizer&>(q.inner(4));
  {
    at::NoGradGuard no_grad;
    q2.clip.fill_(2.0), q4.clip.fill_(4.0);
  }
  at::Tensor x = at::ones({3});
  CHECK(at::allclose(q.forward(x, 2), 2 * x));
  at::Tensor y = q.forward(x, 4);
  CHECK(at::allclose(y, 4 * x));
  y.sum().backward();
  CHECK(q4.clip.grad().item<double>() == doctest::Approx(3.0));  // d(α·Σx)/dα = Σx
  CHECK(!q2.clip.grad().defined());
  CHECK(q.named_parameters().contains("bits4.clip"));
  CHECK_THROWS_WITH_AS(q.forward(x, 3), doctest::Contains("3 bits is not one of its choices"), std::invalid_argument);

  GainQuantizer fresh;
  CHECK(copy_matching_state(q4, fresh) == 1);
  CHECK(fresh.clip.item<double>() == 4.0);
}

TEST_CASE("a supernet on PreResNet-20: per-bit clips and norms on the searched layers, the model given back intact") {
  test::TempDir dir;
  auto p = test::pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"preresnet20\"\n"
                                         "[quantizer]\nuse = \"liq_wn\"\nclip_init = \"max\"\nweight_bits = 4\nactivation_bits = 4\n"
                                         "[[stage]]\nuse = \"eval\"\n");
  auto model = test::make_model(p, test::kCifar100);
  const host::Registry& reg = test::registry();
  auto quantizer = reg.make<Quantizer>(reg.require(Kind::Quantizer, "liq_wn", "test"), *p.quantizer, Context());
  host::attach_quantizers(*model, *quantizer);
  std::vector<std::string> warnings;
  host::apply_bits(*model, host::resolve_bits(*model, *p.quantizer, warnings), false);
  const auto names_before = state_names(*model);
  auto layers = quant_layers(*model);
  auto find = [&layers](const std::string& name) {
    for (const auto& l : layers)
      if (l.first == name) return l.second;
    FAIL("no layer " << name);
    return std::shared_ptr<QuantLayer>();
  };
  auto bn_of = [](Model& m, const std::string& name) {
    return std::dynamic_pointer_cast<BatchNorm2dLayer>(m.named_modules()[name]).get();
  };
  const auto own_weight_quantizer = find("layer1.0.conv1")->named_children()["weight_quantizer"];

  const DataInfo info = test::kCifar100;
  host::SupernetScope scope(*model, *quantizer, info, host::searchable_layers(*model), {2, 3, 4, 5});
  SupernetOptions o;
  o.perturb_searched = false;
  scope.build(o);
  CHECK(std::dynamic_pointer_cast<SwitchableQuantizer>(find("layer1.0.conv1")->named_children()["weight_quantizer"]));
  CHECK(!std::dynamic_pointer_cast<SwitchableQuantizer>(find("conv")->named_children()["weight_quantizer"]));
  CHECK(!find("layer2.0.conv1")->perturbed());
  CHECK(find("conv")->perturbed());
  CHECK(find("fc")->perturbed());
  CHECK(!bn_of(*model, "layer1.0.bn1")->switchable());  // its input comes from the stem, whose bits are fixed
  CHECK(bn_of(*model, "layer1.0.bn2")->switchable());
  CHECK(state_names(*model).count("layer1.0.bn2.w5a5.weight") == 1);
  CHECK(state_names(*model).count("layer1.0.conv1.activation_quantizer.bits2.clip_value") == 1);

  // a training forward at 2 bits on every layer but the stem and the classifier (tied ones included) initialises
  // and uses the 2-bit clips and the w2a2 norms only
  for (const auto& l : layers)
    if (l.first != "conv" && l.first != "fc") l.second->set_bits(2, 2);
  model->train();
  model->forward(at::randn({4, 3, 32, 32}));
  auto buffers = model->named_buffers();
  CHECK(buffers["layer1.0.conv1.weight_quantizer.bits2.initialized"].item<int>() == 1);
  CHECK(buffers["layer1.0.conv1.weight_quantizer.bits3.initialized"].item<int>() == 0);
  CHECK(buffers["layer1.0.bn2.w2a2.num_batches_tracked"].item<std::int64_t>() == 1);
  CHECK(buffers["layer1.0.bn2.w3a3.num_batches_tracked"].item<std::int64_t>() == 0);
  CHECK(buffers["layer1.0.bn2.num_batches_tracked"].item<std::int64_t>() == 0);
  CHECK(buffers["layer1.0.bn1.num_batches_tracked"].item<std::int64_t>() == 1);

  scope.restore();
  CHECK(state_names(*model) == names_before);
  CHECK(find("layer1.0.conv1")->named_children()["weight_quantizer"] == own_weight_quantizer);
  CHECK(find("layer2.0.conv1")->perturbed());
  CHECK(!bn_of(*model, "layer1.0.bn2")->switchable());
}

TEST_CASE("SAQ's step leaves a layer that is not perturbed() alone: ε only on the others, ‖ε‖ = ρ over them") {
  SmallNet m;
  m.conv->set_perturbed(false);
  auto opt = make_optimizer("use = \"sam\"\nrho = 0.1\nperturb = \"quantized\"\nperturb_batch_norm = false\nperturb_bias = false\n"
                            "perturb_activation_clip = false\n" + sgd("0.1"), m.net);
  LossFn loss = m.loss();
  bool conv_perturbed = true, fc_perturbed = false;
  int calls = 0;
  LossFn watched = [&](const at::Tensor& rows) {
    if (++calls == 2) conv_perturbed = m.conv->perturbation().defined(), fc_perturbed = m.fc->perturbation().defined();
    return loss(rows);
  };
  StepResult r = opt->step(watched);
  CHECK(!conv_perturbed);
  CHECK(fc_perturbed);
  CHECK(r.perturbation_norm == doctest::Approx(0.1).epsilon(1e-9));
}

// saqhost analyze's one-step sharpness (core/sharpness.hpp) is what the sam plugin reports for the same batch, ρ
// and perturbation targets: ε = ρ·g/‖g‖ on the quantized conv/linear weights, the loss rise L(Qw + ε) − L(Qw).
#include "unit.hpp"

#include "loss_probe.hpp"
#include "sharpness.hpp"
#include "sharpness_aware_fixture.hpp"

using namespace saq;
using namespace saq::sa_test;

namespace {

class Tiny final : public Model {
 public:
  Tiny() {
    conv = conv2d(*this, "conv", {1, 4, 3, 1, 1});
    bn = batch_norm2d(*this, "bn", 4);
    fc = linear(*this, "fc", 4, 3);
    for (const auto& l : std::vector<std::shared_ptr<QuantLayer>>{conv, fc}) {
      l->attach(std::make_shared<GridQuantizer>(7), std::make_shared<GridQuantizer>(7));
      l->set_bits(4, 4);
    }
  }
  at::Tensor forward(const at::Tensor& x) override { return fc->forward(at::relu(bn->forward(conv->forward(x))).mean({2, 3})); }
  std::shared_ptr<Conv2dLayer> conv;
  std::shared_ptr<BatchNorm2dLayer> bn;
  std::shared_ptr<LinearLayer> fc;
};

}  // namespace

TEST_CASE("analyze's one-step sharpness on the quantized weights equals sam's reported sharpness") {
  at::manual_seed(4);
  auto model = std::make_shared<Tiny>();
  model->eval();  // both sides in eval mode: BatchNorm on its running statistics
  const at::Tensor x = at::randn({8, 1, 6, 6}), y = at::randint(0, 3, {8}, at::kLong);
  const host::LossProbe probe(*model, {Batch{x, y}}, host::PerturbTarget::Quantized);
  const host::Sharpness s = host::measure_sharpness(probe, {0.1}, 0, false);
  REQUIRE(s.points.size() == 1);
  CHECK(s.loss == doctest::Approx(at::cross_entropy_loss(model->forward(x), y).item<double>()).epsilon(1e-7));
  auto opt = make_optimizer("use = \"sam\"\nrho = 0.1\nperturb = \"quantized\"\nperturb_activation_clip = false\n"
                            "perturb_bias = false\nperturb_batch_norm = false\n" + sgd("0.1"), model);
  LossFn loss = [&](const at::Tensor&) { return at::cross_entropy_loss(model->forward(x), y); };
  const StepResult r = opt->step(loss);
  CHECK(r.loss == doctest::Approx(s.loss).epsilon(1e-6));
  CHECK(r.sharpness == doctest::Approx(s.points[0].one_step).epsilon(1e-4));
  CHECK(s.points[0].one_step > 0);
}

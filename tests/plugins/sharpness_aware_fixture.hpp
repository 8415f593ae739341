#pragma once
// Hand-written models, quantizers and helpers shared by the tests of the sharpness-aware optimizers.
#include "plugin_test.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include <saq/layers.hpp>
#include <saq/model.hpp>
#include <saq/optimizer.hpp>
#include <saq/quantizer.hpp>

#include "session.hpp"

namespace saq::sa_test {

using namespace saq;

/// A model made of the layers a test registers on it; the tests' loss functions call those layers themselves.
class Net : public Model {
 public:
  at::Tensor forward(const at::Tensor& x) override { return x; }
};

/// Test double of a quantizer plugin: Q(x) = α·round(n·clamp(x/α, −1, 1))/n with straight-through rounding and a
/// learnable clip α ("clip"); n levels each side whatever the bits.
class GridQuantizer : public TensorQuantizer {
 public:
  explicit GridQuantizer(double levels) : n_(levels) { clip = register_parameter("clip", at::ones({})); }
  at::Tensor forward(const at::Tensor& x, int) override {
    at::Tensor u = at::clamp(x / clip, -1.0, 1.0);
    return (u + (at::round(u * n_) / n_ - u).detach()) * clip;
  }
  at::Tensor clip;

 private:
  double n_;
};

/// Test double: Q(x) = α·x with a learnable α ("clip"), so that losses stay polynomial in every target.
class GainQuantizer : public TensorQuantizer {
 public:
  GainQuantizer() { clip = register_parameter("clip", at::ones({})); }
  at::Tensor forward(const at::Tensor& x, int) override { return x * clip; }
  at::Tensor clip;
};

inline at::Tensor dbl(const std::vector<double>& v) { return at::tensor(v, at::kDouble); }
inline void assign(const at::Tensor& p, const std::vector<double>& v) {
  at::NoGradGuard no_grad;
  p.copy_(dbl(v).view(p.sizes()));
}
inline double val(const at::Tensor& t, std::int64_t i = 0) { return t.flatten()[i].item<double>(); }
inline at::Tensor copy(const at::Tensor& t) { return t.detach().clone(); }
inline bool close(const at::Tensor& a, const std::vector<double>& b, double tol = 1e-9) {
  return at::allclose(a.detach().flatten(), dbl(b), 0, tol);
}

/// The optimizer an [optimizer] table with this body builds, as the engine builds it: every parameter of `model`
/// in one group, the model in the context, nested optimizers from the registry.
inline std::shared_ptr<Optimizer> make_optimizer(const std::string& body, const std::shared_ptr<Model>& model) {
  static const host::HostBuilder builder(test::registry());
  test::TempDir dir;
  host::Pipeline p = test::pipeline_from_text(
      dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"small_cnn\"\n[optimizer]\n" + body +
               "\n[[stage]]\nuse = \"train\"\n");
  Context ctx;
  ctx.build = &builder;
  ctx.model = model;
  ctx.groups = {ParamGroup{"all", model->parameters(), std::nullopt, std::nullopt}};
  const host::Registry& reg = test::registry();
  return reg.make<Optimizer>(reg.require(Kind::Optimizer, p.optimizer->use(), "test"), *p.optimizer, ctx);
}

/// The base optimizer table: plain SGD at `lr`.
inline std::string sgd(const std::string& lr) { return "base = { use = \"sgd\", lr = " + lr + ", momentum = 0 }\n"; }

/// fc: 2 → 1 with bias, w = [0.5, −0.25], b = 0.5; the loss of the sample x = [1, 2] is (x·w + b)².
struct OneNeuron {
  std::shared_ptr<Net> net = std::make_shared<Net>();
  std::shared_ptr<LinearLayer> fc = linear(*net, "fc", 2, 1, true);
  at::Tensor x = dbl({1, 2}).view({1, 2});
  OneNeuron() {
    net->to(at::kDouble);
    assign(fc->weight, {0.5, -0.25});
    assign(fc->bias, {0.5});
  }
};

/// BN(1) → conv 1×1 (1 → 2, bias, grid quantizers) → ReLU → spatial mean → fc (2 → 3, bias, grid quantizers),
/// with fixed weights: two instances are identical.
struct SmallNet {
  std::shared_ptr<Net> net = std::make_shared<Net>();
  std::shared_ptr<BatchNorm2dLayer> bn = batch_norm2d(*net, "bn", 1);
  std::shared_ptr<Conv2dLayer> conv = conv2d(*net, "conv", ConvSpec{1, 2, 1, 1, 0, 1, true});
  std::shared_ptr<LinearLayer> fc = linear(*net, "fc", 2, 3, true);
  SmallNet() {
    conv->attach(std::make_shared<GridQuantizer>(7), std::make_shared<GridQuantizer>(7));
    fc->attach(std::make_shared<GridQuantizer>(7), std::make_shared<GridQuantizer>(7));
    conv->set_bits(4, 4);
    fc->set_bits(8, 8);
    net->to(at::kDouble);
    assign(conv->weight, {0.8, -0.6});
    assign(conv->bias, {0.1, 0.2});
    assign(fc->weight, {0.5, -0.4, 0.3, 0.2, -0.1, 0.6});
    assign(fc->bias, {0.05, -0.05, 0.1});
  }
  /// Per-sample squared error over 8 fixed 2×2 images (rows `rows`, or all).
  LossFn loss() const {
    at::Tensor x = at::sin(at::arange(32, at::kDouble) * 1.3).view({8, 1, 2, 2});
    at::Tensor t = at::cos(at::arange(24, at::kDouble)).view({8, 3});
    return [x, t, bn = bn, conv = conv, fc = fc](const at::Tensor& rows) {
      at::Tensor xs = rows.defined() ? x.index_select(0, rows) : x, ts = rows.defined() ? t.index_select(0, rows) : t;
      at::Tensor h = at::relu(conv->forward(bn->forward(xs))).mean({2, 3});
      return (fc->forward(h) - ts).pow(2).sum(1);
    };
  }
};

inline bool same_state(const torch::nn::Module& a, const torch::nn::Module& b) {
  for (const auto& p : a.named_parameters())
    if (!at::equal(p.value(), b.named_parameters()[p.key()])) return false;
  for (const auto& p : a.named_buffers())
    if (!at::equal(p.value(), b.named_buffers()[p.key()])) return false;
  return true;
}


}  // namespace saq::sa_test

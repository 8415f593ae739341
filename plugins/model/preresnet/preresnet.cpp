// Pre-activation ResNet for CIFAR (He et al. 2016), in the layout and parameter names of the SAQ paper's code:
//   conv (3×3, 16) → layer1 (16 ch) → layer2 (32 ch, stride 2) → layer3 (64 ch, stride 2) → bn → ReLU → pool → fc,
// with n = (depth − 2)/6 blocks per stage. The first block of each stage is "half pre-activation":
//   x ← ReLU(bn1(x)); out = conv2(ReLU(bn2(conv1(x)))) + downsample(x)   (downsample: 1×1 conv, no BN)
// and the others "both pre-activation": out = conv2(ReLU(bn2(conv1(ReLU(bn1(x)))))) + x.
// Convs have no bias and start N(0, √(2/(k²·C_out))); BN starts γ = 1, β = 0; fc keeps PyTorch's default.
#include <ATen/ATen.h>

#include <saq/sdk.hpp>

namespace saq::plugins {

namespace {

class PreBlock final : public torch::nn::Module {
 public:
  PreBlock(std::int64_t in, std::int64_t out, std::int64_t stride, bool half_preact) : half_(half_preact) {
    bn1_ = batch_norm2d(*this, "bn1", in);
    conv1_ = conv2d(*this, "conv1", {in, out, 3, stride, 1});
    bn2_ = batch_norm2d(*this, "bn2", out);
    conv2_ = conv2d(*this, "conv2", {out, out, 3, 1, 1});
    if (stride != 1 || in != out) downsample_ = conv2d(*this, "downsample", {in, out, 1, stride, 0});
  }

  at::Tensor forward(const at::Tensor& input) {
    at::Tensor x = at::relu(bn1_->forward(input));
    at::Tensor residual = half_ ? x : input;
    at::Tensor h = conv2_->forward(at::relu(bn2_->forward(conv1_->forward(x))));
    if (downsample_) residual = downsample_->forward(residual);
    return h + residual;
  }

 private:
  bool half_;
  std::shared_ptr<BatchNorm2dLayer> bn1_, bn2_;
  std::shared_ptr<Conv2dLayer> conv1_, conv2_, downsample_;
};

}  // namespace

class PreResNet : public Model {
 public:
  PreResNet(std::int64_t depth, const Context& ctx) {
    if (ctx.data.input_shape.size() != 3) throw std::invalid_argument("preresnet needs image input {C, H, W}");
    const std::int64_t n = (depth - 2) / 6;
    conv_ = conv2d(*this, "conv", {ctx.data.input_shape[0], 16, 3, 1, 1});
    std::int64_t in = 16;
    for (int stage = 0; stage < 3; ++stage) {
      auto layer = register_module("layer" + std::to_string(stage + 1), std::make_shared<torch::nn::Module>());
      const std::int64_t out = 16 << stage;
      for (std::int64_t b = 0; b < n; ++b) {
        blocks_.push_back(layer->register_module(
            std::to_string(b), std::make_shared<PreBlock>(in, out, b == 0 && stage > 0 ? 2 : 1, b == 0)));
        in = out;
      }
    }
    bn_ = batch_norm2d(*this, "bn", in);
    fc_ = linear(*this, "fc", in, ctx.data.num_classes);
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = conv_->forward(input);
    for (auto& b : blocks_) x = b->forward(x);
    x = at::relu(bn_->forward(x));
    return fc_->forward(x.mean({2, 3}));  // global average pooling (AvgPool(8) on 32×32 inputs)
  }

 private:
  std::shared_ptr<Conv2dLayer> conv_;
  std::vector<std::shared_ptr<PreBlock>> blocks_;
  std::shared_ptr<BatchNorm2dLayer> bn_;
  std::shared_ptr<LinearLayer> fc_;
};

/// Any depth 6n + 2.
class PreResNetN final : public PreResNet {
 public:
  PreResNetN(const Params& p, const Context& ctx) : PreResNet(checked_depth(p), ctx) {}
  static Schema schema() {
    Schema s;
    s.integer("depth", 20, "6n + 2 layers: 20, 32, 44, 56, 110").min(8);
    return s;
  }

 private:
  static std::int64_t checked_depth(const Params& p) {
    const auto depth = p.get<std::int64_t>("depth");
    if ((depth - 2) % 6 != 0) p.fail("depth", "must be 6n + 2 (20, 32, 44, 56, 110), got " + std::to_string(depth));
    return depth;
  }
};

class PreResNet20 final : public PreResNet {
 public:
  PreResNet20(const Params&, const Context& ctx) : PreResNet(20, ctx) {}
  static Schema schema() { return {}; }
};

}  // namespace saq::plugins

SAQ_PLUGIN("preresnet", "1.0.0", "pre-activation ResNets for CIFAR (the SAQ paper's layout)", reg) {
  reg.add<saq::plugins::PreResNetN>("preresnet", "pre-activation ResNet, depth 6n+2 (CIFAR layout, paper's names)");
  reg.add<saq::plugins::PreResNet20>("preresnet20", "pre-activation ResNet-20 (CIFAR layout, paper's names)");
}

// Pre-activation ResNet for CIFAR (He et al. 2016), in the layout and parameter names of the SAQ paper's code:
//   conv (3×3, 16) → layer1 (16 ch) → layer2 (32 ch, stride 2) → layer3 (64 ch, stride 2) → bn → ReLU → pool → fc,
// with n = (depth − 2)/6 blocks per stage. The first block of each stage is "half pre-activation":
//   x ← ReLU(bn1(x)); out = conv2(ReLU(bn2(conv1(x)))) + downsample(x)   (downsample: 1×1 conv, no BN)
// and the others "both pre-activation": out = conv2(ReLU(bn2(conv1(ReLU(bn1(x)))))) + x.
// A downsample conv takes the bits of its block's conv2 (the paper's tie).
// Convs have no bias and start N(0, √(2/(k²·C_out))); BN starts γ = 1, β = 0; fc keeps PyTorch's default.
#include <ATen/ATen.h>

#include <saq/sdk.hpp>

namespace saq::plugins {

namespace {

class PreBlock final : public torch::nn::Module {
 public:
  /// `name`: the block's full module name ("layer2.0"), for the downsample conv's tie.
  PreBlock(const std::string& name, std::int64_t in, std::int64_t out, std::int64_t stride, bool half_preact)
      : half_(half_preact) {
    bn1_ = batch_norm2d(*this, "bn1", in);
    conv1_ = conv2d(*this, "conv1", {in, out, 3, stride, 1});
    bn2_ = batch_norm2d(*this, "bn2", out);
    conv2_ = conv2d(*this, "conv2", {out, out, 3, 1, 1});
    if (stride != 1 || in != out)
      downsample_ = conv2d(*this, "downsample", {in, out, 1, stride, 0, 1, false, name + ".conv2"});
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
      const std::string stage_name = "layer" + std::to_string(stage + 1);
      auto layer = register_module(stage_name, std::make_shared<torch::nn::Module>());
      const std::int64_t out = 16 << stage;
      for (std::int64_t b = 0; b < n; ++b) {
        const std::string block = std::to_string(b);
        blocks_.push_back(layer->register_module(
            block, std::make_shared<PreBlock>(stage_name + "." + block, in, out, b == 0 && stage > 0 ? 2 : 1, b == 0)));
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

/// A fixed depth: preresnet20, preresnet32, preresnet44, preresnet56, preresnet110.
template <std::int64_t Depth>
class PreResNetFixed final : public PreResNet {
 public:
  PreResNetFixed(const Params&, const Context& ctx) : PreResNet(Depth, ctx) {}
  static Schema schema() { return {}; }
};

}  // namespace saq::plugins

SAQ_PLUGIN("preresnet", "1.1.0", "pre-activation ResNets for CIFAR (the SAQ paper's layout)", reg) {
  using namespace saq::plugins;
  reg.add<PreResNetN>("preresnet", "pre-activation ResNet, depth 6n+2 (CIFAR layout, paper's names)");
  reg.add<PreResNetFixed<20>>("preresnet20", "pre-activation ResNet-20 (CIFAR layout, paper's names)");
  reg.add<PreResNetFixed<32>>("preresnet32", "pre-activation ResNet-32 (CIFAR layout, paper's names)");
  reg.add<PreResNetFixed<44>>("preresnet44", "pre-activation ResNet-44 (CIFAR layout, paper's names)");
  reg.add<PreResNetFixed<56>>("preresnet56", "pre-activation ResNet-56 (CIFAR layout, paper's names)");
  reg.add<PreResNetFixed<110>>("preresnet110", "pre-activation ResNet-110 (CIFAR layout, paper's names)");
}

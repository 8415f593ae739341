// ResNets for ImageNet (He et al. 2016) in torchvision's layout and parameter names, so that torchvision's and
// the SAQ paper's state_dicts load by name:
//   conv1 (7×7/2) → bn1 → ReLU → maxpool (3×3/2) → layer1..layer4 (64/128/256/512 planes, strides 1/2/2/2)
//   → global average pool → fc.
// BasicBlock (ResNet-18/34):  out = ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x))
// Bottleneck (ResNet-50, v1.5: the stride on the 3×3 conv2):
//   out = ReLU(bn3(conv3(ReLU(bn2(conv2(ReLU(bn1(conv1(x)))))))) + shortcut(x)), 4× expansion.
// shortcut = downsample.0 (1×1 conv, stride s) → downsample.1 (BN) where the shape changes, identity otherwise;
// the downsample conv takes the bits of the block's last conv (conv2 / conv3), as in the SAQ paper.
// Convs start Kaiming-normal (fan_out, ReLU), BN γ = 1, β = 0, fc PyTorch's default; zero_init_residual starts
// each block's last BN at γ = 0.
#include <array>

#include <ATen/ATen.h>

#include <saq/sdk.hpp>

namespace saq::plugins {

namespace {

class Block : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  virtual void zero_last_bn() = 0;

 protected:
  /// downsample.0 / downsample.1 where the shape changes; `last_conv` is the block's own last conv, by full name.
  void make_downsample(std::int64_t in, std::int64_t out, std::int64_t stride, const std::string& last_conv) {
    if (stride == 1 && in == out) return;
    auto seq = register_module("downsample", std::make_shared<torch::nn::Module>());
    ds_conv_ = conv2d(*seq, "0", {in, out, 1, stride, 0, 1, false, last_conv});
    ds_bn_ = batch_norm2d(*seq, "1", out);
  }
  at::Tensor shortcut(const at::Tensor& x) { return ds_conv_ ? ds_bn_->forward(ds_conv_->forward(x)) : x; }

 private:
  std::shared_ptr<Conv2dLayer> ds_conv_;
  std::shared_ptr<BatchNorm2dLayer> ds_bn_;
};

class BasicBlock final : public Block {
 public:
  static constexpr std::int64_t expansion = 1;
  BasicBlock(const std::string& name, std::int64_t in, std::int64_t planes, std::int64_t stride) {
    conv1_ = conv2d(*this, "conv1", {in, planes, 3, stride, 1});
    bn1_ = batch_norm2d(*this, "bn1", planes);
    conv2_ = conv2d(*this, "conv2", {planes, planes, 3, 1, 1});
    bn2_ = batch_norm2d(*this, "bn2", planes);
    make_downsample(in, planes, stride, name + ".conv2");
  }
  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor h = at::relu(bn1_->forward(conv1_->forward(x)));
    return at::relu(bn2_->forward(conv2_->forward(h)) + shortcut(x));
  }
  void zero_last_bn() override {
    at::NoGradGuard no_grad;
    bn2_->weight.zero_();
  }

 private:
  std::shared_ptr<Conv2dLayer> conv1_, conv2_;
  std::shared_ptr<BatchNorm2dLayer> bn1_, bn2_;
};

class Bottleneck final : public Block {
 public:
  static constexpr std::int64_t expansion = 4;
  Bottleneck(const std::string& name, std::int64_t in, std::int64_t planes, std::int64_t stride) {
    conv1_ = conv2d(*this, "conv1", {in, planes, 1, 1, 0});
    bn1_ = batch_norm2d(*this, "bn1", planes);
    conv2_ = conv2d(*this, "conv2", {planes, planes, 3, stride, 1});
    bn2_ = batch_norm2d(*this, "bn2", planes);
    conv3_ = conv2d(*this, "conv3", {planes, planes * expansion, 1, 1, 0});
    bn3_ = batch_norm2d(*this, "bn3", planes * expansion);
    make_downsample(in, planes * expansion, stride, name + ".conv3");
  }
  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor h = at::relu(bn1_->forward(conv1_->forward(x)));
    h = at::relu(bn2_->forward(conv2_->forward(h)));
    return at::relu(bn3_->forward(conv3_->forward(h)) + shortcut(x));
  }
  void zero_last_bn() override {
    at::NoGradGuard no_grad;
    bn3_->weight.zero_();
  }

 private:
  std::shared_ptr<Conv2dLayer> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2dLayer> bn1_, bn2_, bn3_;
};

}  // namespace

class ResNet : public Model {
 public:
  /// `blocks`: blocks per stage; `bottleneck`: Bottleneck blocks (ResNet-50 and deeper), else BasicBlock.
  ResNet(const std::array<int, 4>& blocks, bool bottleneck, const Params& p, const Context& ctx) {
    if (ctx.data.input_shape.size() != 3) throw std::invalid_argument("resnet needs image input {C, H, W}");
    conv1_ = conv2d(*this, "conv1", {ctx.data.input_shape[0], 64, 7, 2, 3});
    bn1_ = batch_norm2d(*this, "bn1", 64);
    const std::int64_t expansion = bottleneck ? Bottleneck::expansion : BasicBlock::expansion;
    std::int64_t in = 64;
    for (int stage = 0; stage < 4; ++stage) {
      const std::string stage_name = "layer" + std::to_string(stage + 1);
      auto layer = register_module(stage_name, std::make_shared<torch::nn::Module>());
      const std::int64_t planes = 64 << stage;
      for (int b = 0; b < blocks[stage]; ++b) {
        const std::string name = std::to_string(b), full = stage_name + "." + name;
        const std::int64_t stride = b == 0 && stage > 0 ? 2 : 1;
        std::shared_ptr<Block> block;
        if (bottleneck) block = std::make_shared<Bottleneck>(full, in, planes, stride);
        else block = std::make_shared<BasicBlock>(full, in, planes, stride);
        blocks_.push_back(layer->register_module(name, block));
        in = planes * expansion;
      }
    }
    fc_ = linear(*this, "fc", in, ctx.data.num_classes);
    if (p.get<bool>("zero_init_residual"))
      for (auto& b : blocks_) b->zero_last_bn();
  }

  static Schema schema() {
    Schema s;
    s.boolean("zero_init_residual", false, "start each block's last BN at gamma = 0 (each block starts as identity)");
    return s;
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = at::relu(bn1_->forward(conv1_->forward(input)));
    x = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
    for (auto& b : blocks_) x = b->forward(x);
    return fc_->forward(x.mean({2, 3}));  // adaptive average pooling to 1×1: any input size
  }

 private:
  std::shared_ptr<Conv2dLayer> conv1_;
  std::shared_ptr<BatchNorm2dLayer> bn1_;
  std::vector<std::shared_ptr<Block>> blocks_;
  std::shared_ptr<LinearLayer> fc_;
};

template <bool UseBottleneck, int B1, int B2, int B3, int B4>
class ResNetDepth final : public ResNet {
 public:
  ResNetDepth(const Params& p, const Context& ctx) : ResNet({B1, B2, B3, B4}, UseBottleneck, p, ctx) {}
};

}  // namespace saq::plugins

SAQ_PLUGIN("resnet", "1.0.0", "ResNet-18/34/50 for ImageNet (torchvision's layout and names)", reg) {
  using namespace saq::plugins;
  reg.add<ResNetDepth<false, 2, 2, 2, 2>>("resnet18", "ResNet-18: BasicBlocks [2, 2, 2, 2], torchvision's names");
  reg.add<ResNetDepth<false, 3, 4, 6, 3>>("resnet34", "ResNet-34: BasicBlocks [3, 4, 6, 3], torchvision's names");
  reg.add<ResNetDepth<true, 3, 4, 6, 3>>("resnet50", "ResNet-50 (v1.5): Bottlenecks [3, 4, 6, 3], torchvision's names");
}

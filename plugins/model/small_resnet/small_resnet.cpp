// A small ResNet for small images: conv3×3 stem, three stages of basic blocks (width w, 2w, 4w; the second
// and third stages halve the resolution), global average pooling, fc. A block is
//   out = ReLU(BN2(conv2(ReLU(BN1(conv1(x))))) + shortcut(x)),  shortcut = 1×1 conv + BN when the shape changes.
#include <ATen/ATen.h>

#include <saq/sdk.hpp>

namespace saq::plugins {

namespace {

class BasicBlock final : public torch::nn::Module {
 public:
  BasicBlock(std::int64_t in, std::int64_t out, std::int64_t stride) {
    conv1_ = conv2d(*this, "conv1", {in, out, 3, stride, 1});
    bn1_ = batch_norm2d(*this, "bn1", out);
    conv2_ = conv2d(*this, "conv2", {out, out, 3, 1, 1});
    bn2_ = batch_norm2d(*this, "bn2", out);
    if (stride != 1 || in != out) {
      auto down = register_module("downsample", std::make_shared<torch::nn::Module>());
      down_conv_ = conv2d(*down, "0", {in, out, 1, stride, 0});
      down_bn_ = batch_norm2d(*down, "1", out);
    }
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = at::relu(bn1_->forward(conv1_->forward(x)));
    h = bn2_->forward(conv2_->forward(h));
    at::Tensor shortcut = down_conv_ ? down_bn_->forward(down_conv_->forward(x)) : x;
    return at::relu(h + shortcut);
  }

 private:
  std::shared_ptr<Conv2dLayer> conv1_, conv2_, down_conv_;
  std::shared_ptr<BatchNorm2dLayer> bn1_, bn2_, down_bn_;
};

}  // namespace

class SmallResNet final : public Model {
 public:
  SmallResNet(const Params& p, const Context& ctx) {
    if (ctx.data.input_shape.size() != 3) throw std::invalid_argument("small_resnet needs image input {C, H, W}");
    const std::int64_t w = p.get<std::int64_t>("width"), blocks = p.get<std::int64_t>("blocks");
    conv1_ = conv2d(*this, "conv1", {ctx.data.input_shape[0], w, 3, 1, 1});
    bn1_ = batch_norm2d(*this, "bn1", w);
    std::int64_t in = w;
    for (int stage = 0; stage < 3; ++stage) {
      auto layer = register_module("layer" + std::to_string(stage + 1), std::make_shared<torch::nn::Module>());
      std::int64_t out = w << stage;
      for (std::int64_t b = 0; b < blocks; ++b) {
        blocks_.push_back(layer->register_module(std::to_string(b),
                                                 std::make_shared<BasicBlock>(in, out, b == 0 && stage > 0 ? 2 : 1)));
        in = out;
      }
    }
    fc_ = linear(*this, "fc", in, ctx.data.num_classes);
  }

  static Schema schema() {
    Schema s;
    s.integer("width", 16, "channels of the first stage (then 2x, 4x)").min(1);
    s.integer("blocks", 1, "basic blocks per stage").min(1);
    return s;
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = at::relu(bn1_->forward(conv1_->forward(input)));
    for (auto& b : blocks_) x = b->forward(x);
    return fc_->forward(x.mean({2, 3}));
  }

 private:
  std::shared_ptr<Conv2dLayer> conv1_;
  std::shared_ptr<BatchNorm2dLayer> bn1_;
  std::vector<std::shared_ptr<BasicBlock>> blocks_;
  std::shared_ptr<LinearLayer> fc_;
};

}  // namespace saq::plugins

SAQ_PLUGIN("small_resnet", "1.0.0", "a small ResNet for small images", reg) {
  reg.add<saq::plugins::SmallResNet>("small_resnet", "3-stage ResNet of basic blocks for small images");
}

// MobileNetV2 (Sandler et al. 2018), two layouts the SAQ paper uses:
//  - mobilenetv2: ImageNet, torchvision's layout and names (features.N…, classifier.1), ReLU6. An inverted residual
//    block is [1×1 expand conv, BN, ReLU6] (t ≠ 1 only) → [3×3 depthwise conv (stride s), BN, ReLU6] → 1×1
//    project conv → BN, plus the input when s = 1 and the width is kept. Stem 3×3/2 → 17 blocks → 1×1 conv to
//    1280 → global mean → dropout → classifier. Convs start Kaiming-normal (fan_out), BN 1/0, the classifier
//    N(0, 0.01) with a zero bias, as torchvision.
//  - mobilenetv2_cifar: CIFAR, in the layout and names of kuangliu's pytorch-cifar model (conv1, bn1,
//    layers.N.conv1…bn3, layers.N.shortcut.0/.1, conv2, bn2, linear), ReLU, a stride-1 stem and stride 1 in the
//    second group. Every block has the expand conv (also at t = 1); a stride-1 block whose width changes adds a
//    1×1 conv + BN shortcut, which takes the bits of the block's conv3 (the SAQ paper's tie). PyTorch's default
//    initialisation (conv and linear U(±1/√fan_in)), as that model.
// Both: (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1), with the
// second group at stride 1 for CIFAR.
#include <cmath>

#include <ATen/ATen.h>

#include <saq/sdk.hpp>

namespace saq::plugins {

namespace {

struct Group {
  std::int64_t t, c, n, s;
};
constexpr Group kGroups[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
constexpr Group kCifarGroups[] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

/// torchvision's _make_divisible: the nearest multiple of `divisor`, at least `divisor`, never below 90% of v.
std::int64_t make_divisible(double v, std::int64_t divisor = 8) {
  std::int64_t out = std::max(divisor, static_cast<std::int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (out < 0.9 * v) out += divisor;
  return out;
}

/// A conv and the BN after it, optionally followed by ReLU6.
struct ConvBn {
  std::shared_ptr<Conv2dLayer> conv;
  std::shared_ptr<BatchNorm2dLayer> bn;
  bool act = true;
  at::Tensor forward(const at::Tensor& x) const {
    at::Tensor y = bn->forward(conv->forward(x));
    return act ? at::relu6(y) : y;
  }
};

/// torchvision's Conv2dNormActivation: a module `name` holding "0" (conv, padding (k−1)/2) and "1" (BN).
ConvBn conv_bn_act(torch::nn::Module& owner, const std::string& name, std::int64_t in, std::int64_t out,
                   std::int64_t kernel, std::int64_t stride, std::int64_t groups = 1) {
  auto seq = owner.register_module(name, std::make_shared<torch::nn::Module>());
  return {conv2d(*seq, "0", {in, out, kernel, stride, (kernel - 1) / 2, groups}), batch_norm2d(*seq, "1", out), true};
}

class InvertedResidual final : public torch::nn::Module {
 public:
  InvertedResidual(std::int64_t in, std::int64_t out, std::int64_t stride, std::int64_t t)
      : residual_(stride == 1 && in == out) {
    const std::int64_t hidden = in * t;
    auto seq = register_module("conv", std::make_shared<torch::nn::Module>());
    int next = 0;
    if (t != 1) units_.push_back(conv_bn_act(*seq, std::to_string(next++), in, hidden, 1, 1));
    units_.push_back(conv_bn_act(*seq, std::to_string(next++), hidden, hidden, 3, stride, hidden));
    ConvBn project{conv2d(*seq, std::to_string(next), {hidden, out, 1, 1, 0}), nullptr, false};
    project.bn = batch_norm2d(*seq, std::to_string(next + 1), out);
    units_.push_back(project);
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = x;
    for (const auto& u : units_) h = u.forward(h);
    return residual_ ? h + x : h;
  }

 private:
  bool residual_;
  std::vector<ConvBn> units_;
};

}  // namespace

class MobileNetV2 final : public Model {
 public:
  MobileNetV2(const Params& p, const Context& ctx) : dropout_(p.get<double>("dropout")) {
    if (ctx.data.input_shape.size() != 3) throw std::invalid_argument("mobilenetv2 needs image input {C, H, W}");
    const double width = p.get<double>("width_mult");
    auto features = register_module("features", std::make_shared<torch::nn::Module>());
    std::int64_t in = make_divisible(32 * width), index = 0;
    stem_ = conv_bn_act(*features, std::to_string(index++), ctx.data.input_shape[0], in, 3, 2);
    for (const Group& g : kGroups) {
      const std::int64_t out = make_divisible(g.c * width);
      for (std::int64_t i = 0; i < g.n; ++i) {
        blocks_.push_back(features->register_module(
            std::to_string(index++), std::make_shared<InvertedResidual>(in, out, i == 0 ? g.s : 1, g.t)));
        in = out;
      }
    }
    const std::int64_t last = make_divisible(1280 * std::max(1.0, width));
    head_ = conv_bn_act(*features, std::to_string(index), in, last, 1, 1);
    auto classifier = register_module("classifier", std::make_shared<torch::nn::Module>());
    fc_ = linear(*classifier, "1", last, ctx.data.num_classes);  // "0" is the (parameterless) dropout
    at::NoGradGuard no_grad;
    fc_->weight.normal_(0, 0.01);
    fc_->bias.zero_();
  }

  static Schema schema() {
    Schema s;
    s.real("width_mult", 1.0, "channel multiplier (widths rounded to multiples of 8, as torchvision)").above(0);
    s.real("dropout", 0.0, "dropout before the classifier (the SAQ paper: 0; torchvision: 0.2)").min(0).below(1);
    return s;
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = stem_.forward(input);
    for (auto& b : blocks_) x = b->forward(x);
    x = head_.forward(x).mean({2, 3});
    if (dropout_ > 0) x = at::dropout(x, dropout_, is_training());
    return fc_->forward(x);
  }

 private:
  double dropout_;
  ConvBn stem_, head_;
  std::vector<std::shared_ptr<InvertedResidual>> blocks_;
  std::shared_ptr<LinearLayer> fc_;
};

namespace {

class CifarBlock final : public torch::nn::Module {
 public:
  /// `name`: the block's full module name ("layers.3"), for the shortcut conv's tie.
  CifarBlock(const std::string& name, std::int64_t in, std::int64_t out, std::int64_t t, std::int64_t stride)
      : stride_(stride) {
    const std::int64_t hidden = in * t;
    conv1_ = conv2d(*this, "conv1", {in, hidden, 1, 1, 0});
    bn1_ = batch_norm2d(*this, "bn1", hidden);
    conv2_ = conv2d(*this, "conv2", {hidden, hidden, 3, stride, 1, hidden});
    bn2_ = batch_norm2d(*this, "bn2", hidden);
    conv3_ = conv2d(*this, "conv3", {hidden, out, 1, 1, 0});
    bn3_ = batch_norm2d(*this, "bn3", out);
    if (stride == 1 && in != out) {
      auto seq = register_module("shortcut", std::make_shared<torch::nn::Module>());
      shortcut_ = {conv2d(*seq, "0", {in, out, 1, 1, 0, 1, false, name + ".conv3"}), batch_norm2d(*seq, "1", out),
                   false};
    }
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = at::relu(bn1_->forward(conv1_->forward(x)));
    h = at::relu(bn2_->forward(conv2_->forward(h)));
    h = bn3_->forward(conv3_->forward(h));
    if (stride_ != 1) return h;
    return h + (shortcut_.conv ? shortcut_.forward(x) : x);
  }

 private:
  std::int64_t stride_;
  std::shared_ptr<Conv2dLayer> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2dLayer> bn1_, bn2_, bn3_;
  ConvBn shortcut_;
};

}  // namespace

class MobileNetV2Cifar final : public Model {
 public:
  MobileNetV2Cifar(const Params&, const Context& ctx) {
    if (ctx.data.input_shape.size() != 3) throw std::invalid_argument("mobilenetv2_cifar needs image input {C, H, W}");
    conv1_ = conv2d(*this, "conv1", {ctx.data.input_shape[0], 32, 3, 1, 1});
    bn1_ = batch_norm2d(*this, "bn1", 32);
    auto layers = register_module("layers", std::make_shared<torch::nn::Module>());
    std::int64_t in = 32, index = 0;
    for (const Group& g : kCifarGroups) {
      for (std::int64_t i = 0; i < g.n; ++i) {
        const std::string name = std::to_string(index++);
        blocks_.push_back(layers->register_module(
            name, std::make_shared<CifarBlock>("layers." + name, in, g.c, g.t, i == 0 ? g.s : 1)));
        in = g.c;
      }
    }
    conv2_ = conv2d(*this, "conv2", {in, 1280, 1, 1, 0});
    bn2_ = batch_norm2d(*this, "bn2", 1280);
    linear_ = linear(*this, "linear", 1280, ctx.data.num_classes);
    // PyTorch's default conv init, U(±1/√fan_in) (kaiming_uniform with a = √5), as the reference model has.
    at::NoGradGuard no_grad;
    for (auto& [name, layer] : quant_layers(*this))
      if (layer->is_conv()) {
        const double bound = 1.0 / std::sqrt(static_cast<double>(layer->weight[0].numel()));
        layer->weight.uniform_(-bound, bound);
      }
  }

  static Schema schema() { return {}; }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = at::relu(bn1_->forward(conv1_->forward(input)));
    for (auto& b : blocks_) x = b->forward(x);
    x = at::relu(bn2_->forward(conv2_->forward(x)));
    return linear_->forward(x.mean({2, 3}));  // AvgPool(4) on the 4×4 map of a 32×32 input
  }

 private:
  std::shared_ptr<Conv2dLayer> conv1_, conv2_;
  std::shared_ptr<BatchNorm2dLayer> bn1_, bn2_;
  std::vector<std::shared_ptr<CifarBlock>> blocks_;
  std::shared_ptr<LinearLayer> linear_;
};

}  // namespace saq::plugins

SAQ_PLUGIN("mobilenetv2", "1.0.0", "MobileNetV2 for ImageNet (torchvision's names) and CIFAR (the SAQ paper's)", reg) {
  using namespace saq::plugins;
  reg.add<MobileNetV2>("mobilenetv2", "MobileNetV2 for ImageNet: torchvision's layout and names, ReLU6");
  reg.add<MobileNetV2Cifar>("mobilenetv2_cifar", "MobileNetV2 for CIFAR: kuangliu's layout and names, ReLU");
}

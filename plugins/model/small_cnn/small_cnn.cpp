// A small VGG-style CNN for 28×28 inputs:
//   [conv3×3(w) BN ReLU] ×2 → maxpool → [conv3×3(2w) BN ReLU] ×2 → maxpool → global avg pool → fc.
// batch_norm = false drops the BN layers: a model whose gradient is a plain mean over the samples of a batch
// (data-parallel equivalence is exact for it).
#include <ATen/ATen.h>

#include <saq/sdk.hpp>

namespace saq::plugins {

class SmallCnn final : public Model {
 public:
  SmallCnn(const Params& p, const Context& ctx) {
    if (ctx.data.input_shape.size() != 3) throw std::invalid_argument("small_cnn needs image input {C, H, W}");
    const std::int64_t w = p.get<std::int64_t>("width"), c = ctx.data.input_shape[0];
    dropout_ = p.get<double>("dropout");
    std::int64_t in = c;
    for (int i = 0; i < 4; ++i) {
      std::int64_t out = i < 2 ? w : 2 * w;
      std::string n = std::to_string(i + 1);
      convs_.push_back(conv2d(*this, "conv" + n, {in, out, 3, 1, 1}));
      if (p.get<bool>("batch_norm")) bns_.push_back(batch_norm2d(*this, "bn" + n, out));
      in = out;
    }
    fc_ = linear(*this, "fc", in, ctx.data.num_classes);
  }

  static Schema schema() {
    Schema s;
    s.integer("width", 32, "channels of the first two convolutions (the last two have twice as many)").min(1);
    s.real("dropout", 0.0, "dropout before the classifier").min(0).below(1);
    s.boolean("batch_norm", true, "BatchNorm after each convolution");
    return s;
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = input;
    for (size_t i = 0; i < convs_.size(); ++i) {
      x = convs_[i]->forward(x);
      x = at::relu(bns_.empty() ? x : bns_[i]->forward(x));
      if (i % 2 == 1) x = at::max_pool2d(x, {2, 2});
    }
    x = x.mean({2, 3});
    if (dropout_ > 0) x = at::dropout(x, dropout_, is_training());
    return fc_->forward(x);
  }

 private:
  std::vector<std::shared_ptr<Conv2dLayer>> convs_;
  std::vector<std::shared_ptr<BatchNorm2dLayer>> bns_;
  std::shared_ptr<LinearLayer> fc_;
  double dropout_ = 0;
};

}  // namespace saq::plugins

SAQ_PLUGIN("small_cnn", "1.0.0", "a small CNN for 28x28 images", reg) {
  reg.add<saq::plugins::SmallCnn>("small_cnn", "4-conv CNN with BatchNorm for small images (Fashion-MNIST)");
}

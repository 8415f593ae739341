// A complete third-party plugin: one model, its parameters, and the entry point.
#include <ATen/ATen.h>

#include <saq/sdk.hpp>

/// flatten → [linear → ReLU] × depth → linear, built with the SDK's layer factory.
class TinyMlp final : public saq::Model {
 public:
  TinyMlp(const saq::Params& p, const saq::Context& ctx) {
    std::int64_t in = 1;
    for (auto d : ctx.data.input_shape) in *= d;
    const auto hidden = p.get<std::int64_t>("hidden");
    for (std::int64_t i = 0; i < p.get<std::int64_t>("depth"); ++i) {
      layers_.push_back(saq::linear(*this, "fc" + std::to_string(i + 1), in, hidden));
      in = hidden;
    }
    head_ = saq::linear(*this, "head", in, ctx.data.num_classes);
  }

  static saq::Schema schema() {
    saq::Schema s;
    s.integer("hidden", 64, "width of each hidden layer").min(1);
    s.integer("depth", 1, "hidden layers").min(0).max(16);
    return s;
  }

  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor h = x.flatten(1);
    for (auto& l : layers_) h = at::relu(l->forward(h));
    return head_->forward(h);
  }

 private:
  std::vector<std::shared_ptr<saq::LinearLayer>> layers_;
  std::shared_ptr<saq::LinearLayer> head_;
};

SAQ_PLUGIN("tiny_mlp", "1.0.0", "an example third-party model plugin", reg) {
  reg.add<TinyMlp>("tiny_mlp", "a multi-layer perceptron (plugin template)");
}

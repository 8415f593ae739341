// LSQ, learned step size quantization (Esser et al. 2020):
//   v̂ = round(clamp(v/s, −Q_N, Q_P))·s,   weights signed: Q_N = 2^(b−1), Q_P = 2^(b−1) − 1;
//                                          activations unsigned: Q_N = 0, Q_P = 2^b − 1
// The step's gradient is scaled by g = 1/√(N·Q_P), N = the weight's element count (or, per channel, one
// channel's) or the features of one sample; s starts at 2·mean|v|/√Q_P of the first training tensor.
#include <cmath>

#include <ATen/ATen.h>

#include <saq/fake_quant.hpp>
#include <saq/sdk.hpp>

namespace saq::plugins {

namespace {

class LsqTensorQuantizer final : public TensorQuantizer {
 public:
  LsqTensorQuantizer(bool is_signed, std::int64_t channels) : signed_(is_signed) {
    step_ = register_parameter("step_size", at::ones({channels}));
    initialized_ = register_buffer("initialized", at::zeros({1}, at::kByte));
  }

  at::Tensor forward(const at::Tensor& v, int bits) override {
    const std::int64_t qn = signed_ ? std::int64_t{1} << (bits - 1) : 0;
    const std::int64_t qp = signed_ ? (std::int64_t{1} << (bits - 1)) - 1 : (std::int64_t{1} << bits) - 1;
    const bool per_channel = step_.numel() > 1;
    // The buffer (read with a device sync on GPUs) is read only until it says "initialised"; checkpoints set it too.
    if (is_training() && !known_initialized_) known_initialized_ = initialized_.item<std::uint8_t>() != 0;
    if (is_training() && !known_initialized_) {
      at::NoGradGuard no_grad;
      at::Tensor mean_abs = per_channel ? v.detach().abs().flatten(1).mean(1) : v.detach().abs().mean().reshape({1});
      step_.copy_(2.0 * mean_abs / std::sqrt(static_cast<double>(qp)));
      initialized_.fill_(1);
      known_initialized_ = true;
    }
    // weights: elements per step; activations: features of one sample
    const double n = per_channel ? static_cast<double>(v[0].numel())
                                 : static_cast<double>(signed_ ? v.numel() : v.numel() / v.size(0));
    return fake_quant::lsq(v, step_, qn, qp, 1.0 / std::sqrt(n * static_cast<double>(qp)));
  }

  /// Codes −Q_N..Q_P (weights) or 0..Q_P (activations), scale s: per channel when the steps are.
  QuantGrid grid(const at::Tensor&, int bits) override {
    const std::int64_t qn = signed_ ? std::int64_t{1} << (bits - 1) : 0;
    const std::int64_t qp = signed_ ? (std::int64_t{1} << (bits - 1)) - 1 : (std::int64_t{1} << bits) - 1;
    return {step_.detach().to(at::kFloat).clone(), 0, -qn, qp};
  }

 private:
  bool signed_;
  at::Tensor step_, initialized_;
  bool known_initialized_ = false;
};

}  // namespace

class Lsq final : public Quantizer {
 public:
  Lsq(const Params& p, const Context&) : per_channel_(p.get<bool>("per_channel")) {}
  static Schema schema() {
    Schema s;
    s.boolean("per_channel", false, "one weight step per output channel instead of one per tensor");
    return s;
  }
  std::shared_ptr<TensorQuantizer> weight_quantizer(const QuantLayerInfo& layer) const override {
    return std::make_shared<LsqTensorQuantizer>(true, per_channel_ ? layer.weight_shape.at(0) : 1);
  }
  std::shared_ptr<TensorQuantizer> activation_quantizer(const QuantLayerInfo&) const override {
    return std::make_shared<LsqTensorQuantizer>(false, 1);
  }

 private:
  bool per_channel_;
};

}  // namespace saq::plugins

SAQ_PLUGIN("lsq", "1.0.0", "learned step size quantization", reg) {
  reg.add<saq::plugins::Lsq>("lsq", "LSQ: learned step sizes (per tensor or per channel) with gradient scaling");
}

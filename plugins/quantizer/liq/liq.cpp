// LIQ, the learnable-clip quantizer of the SAQ paper, and LIQ_wn, its weight-normalised form that SAQ trains with.
//   activations (unsigned): y = round(clamp(x/α_a, 0, 1)·n)/n·α_a
//   weights (symmetric, 2^k levels, no zero): X = (2·round((clamp(ŵ/α_w, −1, 1) + 1)/2·n)/n − 1)·α_w
// liq_wn standardises conv weights first, ŵ = (w − μ)/σ with μ, σ (unbiased, no ε) of the whole tensor, detached;
// the conv consumes X itself (the following BN absorbs the scale). Linear layers are never normalised.
// Clip initialisation "code" is what the paper's code runs: conv clips stay 1.0, the last layer's clips become
// 0.8·max|·| on the first training batch; "max" gives every clip 0.8·max|·| of its first training tensor.
#include <ATen/ATen.h>

#include <saq/fake_quant.hpp>
#include <saq/sdk.hpp>

namespace saq::plugins {

namespace {

class LiqTensorQuantizer final : public TensorQuantizer {
 public:
  LiqTensorQuantizer(bool weight, bool normalize, bool init_from_data, double init_value)
      : weight_(weight), normalize_(normalize) {
    clip_ = register_parameter("clip_value", at::full({1}, init_value));
    initialized_ = register_buffer("initialized", at::full({1}, init_from_data ? 0 : 1, at::kByte));
  }

  at::Tensor forward(const at::Tensor& x, int bits) override {
    at::Tensor v = x;
    if (normalize_) {
      // μ and σ are constants for the gradient (∂ŵ/∂w = 1/σ); ŵ itself stays in the graph.
      auto stats = at::std_mean(x.detach(), /*unbiased=*/true);
      v = (x - std::get<1>(stats)) / std::get<0>(stats);
    }
    // The buffer (read with a device sync on GPUs) is read only until it says "initialised"; checkpoints set it too.
    if (is_training() && !known_initialized_) known_initialized_ = initialized_.item<std::uint8_t>() != 0;
    if (is_training() && !known_initialized_) {
      at::NoGradGuard no_grad;
      clip_.fill_(0.8 * v.detach().abs().max().item<double>());
      initialized_.fill_(1);
      known_initialized_ = true;
    }
    return weight_ ? fake_quant::liq_weight(v, clip_, bits) : fake_quant::liq_activation(v, clip_, bits);
  }

  /// Weights: odd codes −n..n (the 2^bits levels α·m/n, no zero); activations: codes 0..n; scale α/n for both.
  QuantGrid grid(const at::Tensor&, int bits) override {
    const std::int64_t n = (std::int64_t{1} << bits) - 1;
    return {clip_.detach().abs().to(at::kFloat) / static_cast<double>(n), 0, weight_ ? -n : 0, n};
  }

 private:
  bool weight_, normalize_;  // init_from_data lives in the `initialized` buffer (checkpoints carry it)
  at::Tensor clip_, initialized_;
  bool known_initialized_ = false;
};

class Liq : public Quantizer {
 public:
  Liq(const Params& p, bool weight_norm)
      : weight_norm_(weight_norm), code_init_(p.get<std::string>("clip_init") == "code") {}

  static Schema schema(const char* default_init) {
    Schema s;
    s.choice("clip_init", default_init, {"code", "max"},
             "\"code\": conv clips 1.0 and the last layer's 0.8·max on the first batch (the paper's code); "
             "\"max\": every clip 0.8·max|·| of its first training tensor");
    return s;
  }

  std::shared_ptr<TensorQuantizer> weight_quantizer(const QuantLayerInfo& layer) const override {
    return std::make_shared<LiqTensorQuantizer>(true, weight_norm_ && layer.is_conv, from_data(layer), 1.0);
  }
  std::shared_ptr<TensorQuantizer> activation_quantizer(const QuantLayerInfo& layer) const override {
    return std::make_shared<LiqTensorQuantizer>(false, false, from_data(layer), 1.0);
  }

 private:
  bool from_data(const QuantLayerInfo& layer) const { return !code_init_ || !layer.is_conv; }
  bool weight_norm_, code_init_;
};

class LiqWn final : public Liq {
 public:
  LiqWn(const Params& p, const Context&) : Liq(p, true) {}
  static Schema schema() { return Liq::schema("code"); }
};

class LiqPlain final : public Liq {
 public:
  LiqPlain(const Params& p, const Context&) : Liq(p, false) {}
  static Schema schema() { return Liq::schema("max"); }
};

}  // namespace

}  // namespace saq::plugins

SAQ_PLUGIN("liq", "1.0.0", "learnable-clip quantizers of the SAQ paper", reg) {
  reg.add<saq::plugins::LiqWn>("liq_wn", "LIQ with conv weight standardisation: the SAQ paper's quantizer");
  reg.add<saq::plugins::LiqPlain>("liq", "learnable clip values for weights (symmetric) and activations (unsigned)");
}

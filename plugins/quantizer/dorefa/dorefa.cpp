// DoReFa-Net (Zhou et al. 2016) and PACT (Choi et al. 2018). Both quantize weights the DoReFa way:
//   t = tanh(w);  u = t/(2·max|t|) + 1/2;  X = 2·round(u·n)/n − 1  ∈ [−1, 1]   (straight-through round)
// Activations: DoReFa clips to [0, 1], y = round(clamp(x, 0, 1)·n)/n; PACT learns the clip α,
//   y = round(clamp(x, 0, α)·n/α)·α/n, with ∂y/∂α = 1 where x ≥ α (the PACT paper; α starts at 10).
#include <ATen/ATen.h>

#include <saq/fake_quant.hpp>
#include <saq/sdk.hpp>

namespace saq::plugins {

namespace {

class DorefaWeight final : public TensorQuantizer {
 public:
  at::Tensor forward(const at::Tensor& w, int bits) override {
    at::Tensor t = at::tanh(w);
    at::Tensor u = t / (2.0 * t.abs().max().detach()) + 0.5;
    return 2.0 * fake_quant::uniform_ste(u, bits) - 1.0;
  }
  /// X = 2k/n − 1 = (2k − n)/n: odd codes −n..n, scale 1/n.
  QuantGrid grid(const at::Tensor& w, int bits) override {
    const std::int64_t n = (std::int64_t{1} << bits) - 1;
    return {at::full({1}, 1.0 / static_cast<double>(n), w.options().dtype(at::kFloat)), 0, -n, n};
  }
};

class DorefaActivation final : public TensorQuantizer {
 public:
  at::Tensor forward(const at::Tensor& x, int bits) override {
    return fake_quant::uniform_ste(at::clamp(x, 0.0, 1.0), bits);
  }
  QuantGrid grid(const at::Tensor&, int bits) override {
    const std::int64_t n = (std::int64_t{1} << bits) - 1;
    return {at::full({1}, 1.0 / static_cast<double>(n), at::kFloat), 0, 0, n};
  }
};

class PactActivation final : public TensorQuantizer {
 public:
  explicit PactActivation(double init) { clip_ = register_parameter("clip_value", at::full({1}, init)); }
  at::Tensor forward(const at::Tensor& x, int bits) override { return fake_quant::pact_activation(x, clip_, bits); }
  QuantGrid grid(const at::Tensor&, int bits) override {
    const std::int64_t n = (std::int64_t{1} << bits) - 1;
    return {clip_.detach().to(at::kFloat) / static_cast<double>(n), 0, 0, n};
  }

 private:
  at::Tensor clip_;
};

}  // namespace

class Dorefa final : public Quantizer {
 public:
  Dorefa(const Params&, const Context&) {}
  static Schema schema() { return {}; }
  std::shared_ptr<TensorQuantizer> weight_quantizer(const QuantLayerInfo&) const override {
    return std::make_shared<DorefaWeight>();
  }
  std::shared_ptr<TensorQuantizer> activation_quantizer(const QuantLayerInfo&) const override {
    return std::make_shared<DorefaActivation>();
  }
};

class Pact final : public Quantizer {
 public:
  Pact(const Params& p, const Context&) : init_(p.get<double>("clip_init")) {}
  static Schema schema() {
    Schema s;
    s.real("clip_init", 10.0, "initial activation clip α (the PACT paper: 10, with L2 decay on α)").above(0);
    return s;
  }
  std::shared_ptr<TensorQuantizer> weight_quantizer(const QuantLayerInfo&) const override {
    return std::make_shared<DorefaWeight>();
  }
  std::shared_ptr<TensorQuantizer> activation_quantizer(const QuantLayerInfo&) const override {
    return std::make_shared<PactActivation>(init_);
  }

 private:
  double init_;
};

}  // namespace saq::plugins

SAQ_PLUGIN("dorefa", "1.0.0", "DoReFa-Net and PACT quantizers", reg) {
  reg.add<saq::plugins::Dorefa>("dorefa", "DoReFa: tanh-normalised weights, activations clipped to [0, 1]");
  reg.add<saq::plugins::Pact>("pact", "PACT: learnable activation clip, DoReFa weights");
}

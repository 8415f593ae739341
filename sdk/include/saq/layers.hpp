#pragma once
/// The layer factory models are written against. Each call creates a named layer and registers it on its
/// owner, so parameter names follow PyTorch ("layer1.0.conv1.weight"). Convolutions and linear layers are
/// quantizable: the host attaches a quantizer plugin's weight and activation quantizers and sets their bits.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include <saq/abi.hpp>
#include <saq/quantizer.hpp>

namespace saq {

/// A conv or linear layer whose weight and input can be fake-quantized:
///   y = op(Qa(x), Qw(w) + ε)
/// with Qa, Qw from a quantizer plugin (identity at 32 bits) and ε an optional additive perturbation of the
/// quantized weight (SAQ's), applied from set_perturbation() until clear_perturbation().
class SAQ_VISIBLE QuantLayer : public torch::nn::Module {
 public:
  at::Tensor forward(const at::Tensor& x);

  /// Installs the quantizers (registered as submodules "weight_quantizer" / "activation_quantizer").
  void attach(std::shared_ptr<TensorQuantizer> weight_q, std::shared_ptr<TensorQuantizer> activation_q);
  bool quantizable() const { return weight_q_ != nullptr; }
  /// Swaps in other quantizers (a supernet's switchable ones, and back) and returns the pair it replaced.
  std::pair<std::shared_ptr<TensorQuantizer>, std::shared_ptr<TensorQuantizer>> replace_quantizers(
      std::shared_ptr<TensorQuantizer> weight_q, std::shared_ptr<TensorQuantizer> activation_q);
  /// Bits of the weight and of the input (2..8, or 32 = full precision); changeable between any two batches.
  void set_bits(int weight_bits, int activation_bits);
  int weight_bits() const { return weight_bits_; }
  int activation_bits() const { return activation_bits_; }

  /// The weight tensor the last forward fed to the op, before ε: Qw(w) (or w at 32 bits), in the graph.
  const at::Tensor& quantized_weight() const { return quantized_weight_; }
  void set_perturbation(at::Tensor eps);
  void clear_perturbation() { perturbation_ = at::Tensor(); }
  const at::Tensor& perturbation() const { return perturbation_; }
  /// Whether sharpness-aware steps perturb this layer (its quantized or latent weight, bias and quantizer
  /// parameters). A supernet can exempt its switchable layers, as the paper's released search code did.
  bool perturbed() const { return perturbed_; }
  void set_perturbed(bool on) { perturbed_ = on; }

  /// Shapes seen by the last forward (for BOPs and footprints).
  const std::vector<std::int64_t>& last_input_shape() const { return input_shape_; }
  const std::vector<std::int64_t>& last_output_shape() const { return output_shape_; }
  /// Multiply-accumulates of one sample at the last forward's shapes.
  virtual std::int64_t macs_per_sample() const = 0;
  virtual bool is_conv() const = 0;
  virtual std::int64_t groups() const { return 1; }

  /// The full name of the layer whose bits this one takes ("layer2.0.conv2"), or "" for its own. The host applies
  /// it after the defaults, the first/last-layer policy and the rules: the paper ties a block's shortcut conv to
  /// the block's last conv, so that a bit search has one decision for both.
  const std::string& bits_from() const { return bits_from_; }
  void set_bits_from(std::string layer) { bits_from_ = std::move(layer); }

  at::Tensor weight, bias;

 protected:
  virtual at::Tensor compute(const at::Tensor& x, const at::Tensor& w) = 0;

 private:
  std::shared_ptr<TensorQuantizer> weight_q_, activation_q_;
  int weight_bits_ = kFullPrecision, activation_bits_ = kFullPrecision;
  at::Tensor quantized_weight_, perturbation_;
  std::vector<std::int64_t> input_shape_, output_shape_;
  std::string bits_from_;
  bool perturbed_ = true;
};

struct ConvSpec {
  std::int64_t in_channels = 0, out_channels = 0, kernel = 3;
  std::int64_t stride = 1, padding = 0, groups = 1;
  bool bias = false;
  std::string bits_from{};  ///< see QuantLayer::bits_from()
};

/// 2-D convolution (grouped and depthwise included). Weights start Kaiming-normal (fan_out, ReLU gain), as in
/// torchvision and the paper's nets.
class SAQ_VISIBLE Conv2dLayer : public QuantLayer {
 public:
  explicit Conv2dLayer(const ConvSpec& spec);
  const ConvSpec& spec() const { return spec_; }
  /// k² · (C_in/groups) · C_out · H_out · W_out
  std::int64_t macs_per_sample() const override;
  bool is_conv() const override { return true; }
  std::int64_t groups() const override { return spec_.groups; }

 protected:
  at::Tensor compute(const at::Tensor& x, const at::Tensor& w) override;

 private:
  ConvSpec spec_;
};

/// Fully connected layer, PyTorch's default initialisation U(−1/√in, 1/√in) for weight and bias.
class SAQ_VISIBLE LinearLayer : public QuantLayer {
 public:
  LinearLayer(std::int64_t in_features, std::int64_t out_features, bool bias);
  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }
  /// C_in · C_out
  std::int64_t macs_per_sample() const override { return in_ * out_; }
  bool is_conv() const override { return false; }

 protected:
  at::Tensor compute(const at::Tensor& x, const at::Tensor& w) override;

 private:
  std::int64_t in_, out_;
};

/// BatchNorm2d with γ = 1, β = 0, PyTorch's momentum 0.1 and ε 1e-5; parameters "weight", "bias",
/// buffers "running_mean", "running_var", "num_batches_tracked".
class SAQ_VISIBLE BatchNorm2dLayer : public torch::nn::Module {
 public:
  explicit BatchNorm2dLayer(std::int64_t channels);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double momentum = 0.1, eps = 1e-5;

  /// Switchable copies, for a bit-search supernet: the statistics of a norm's input depend on the bits of the
  /// layer that produced it, so each (weight, activation) bit pair of `producer` gets its own norm, registered as
  /// "w<b>a<b>" and starting from this norm's parameters and statistics. While they exist, forward uses the copy
  /// the producer's current bits name (an error for a pair without one) and this norm's own tensors rest.
  /// `same_bits_only`: copies for the pairs (b, b) only (a search that gives weights and activations one width).
  void make_switchable(const std::shared_ptr<QuantLayer>& producer, const std::vector<int>& choices,
                       bool same_bits_only);
  /// Removes the copies; the norm is as it was before make_switchable.
  void drop_switchable();
  bool switchable() const { return !copies_.empty(); }
  /// The copy for a bit pair, or null.
  std::shared_ptr<BatchNorm2dLayer> copy_for(int weight_bits, int activation_bits) const;

 private:
  std::weak_ptr<QuantLayer> producer_;
  std::vector<std::pair<std::pair<int, int>, std::shared_ptr<BatchNorm2dLayer>>> copies_;
};

std::shared_ptr<Conv2dLayer> conv2d(torch::nn::Module& owner, const std::string& name, const ConvSpec& spec);
std::shared_ptr<LinearLayer> linear(torch::nn::Module& owner, const std::string& name, std::int64_t in,
                                    std::int64_t out, bool bias = true);
std::shared_ptr<BatchNorm2dLayer> batch_norm2d(torch::nn::Module& owner, const std::string& name,
                                               std::int64_t channels);

/// The quantizable layers of a model with their full names, in registration order.
std::vector<std::pair<std::string, std::shared_ptr<QuantLayer>>> quant_layers(torch::nn::Module& model);

}  // namespace saq

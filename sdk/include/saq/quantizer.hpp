#pragma once
/// Quantizer plugins: they make the fake quantizers that quantizable layers (saq/layers.hpp) apply to their
/// weight and to their input activation.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <saq/params.hpp>

namespace saq {

/// Bit-widths a layer accepts: 2..8, or 32 for "not quantized".
constexpr int kFullPrecision = 32;
inline bool valid_bits(std::int64_t bits) { return (bits >= 2 && bits <= 8) || bits == kFullPrecision; }

/// What a quantizer is made for.
struct QuantLayerInfo {
  std::string name;                  ///< "layer1.0.conv1"
  bool is_conv = true;               ///< conv2d (any groups) or linear
  std::vector<std::int64_t> weight_shape;
  std::int64_t groups = 1;
  bool is_first = false, is_last = false;  ///< the model's first and last quantizable layers
};

/// The fake quantizer of one tensor of one layer, with its learnable parameters (clip values, step sizes).
/// forward returns the tensor the layer consumes, with straight-through gradients to x and to its parameters.
/// Data-driven initialisation (from the first training batch) is the quantizer's own business; it should keep
/// "initialised" in a buffer so that checkpoints carry it, and run in training mode only.
/// The integer grid a fake quantizer's outputs lie on, for export to integer runtimes (ONNX QDQ): every value
/// forward returns is (code − zero_point)·scale for an integer code in [qmin, qmax].
struct QuantGrid {
  at::Tensor scale;                  ///< float; one element, or one per slice of dim 0 (a weight's output channels)
  std::int64_t zero_point = 0;
  std::int64_t qmin = 0, qmax = 0;   ///< the codes' range: LIQ's 4-bit weights −15..15 (odd), activations 0..15
  bool defined() const { return scale.defined(); }
};

class SAQ_VISIBLE TensorQuantizer : public torch::nn::Module {
 public:
  /// `x`: the layer's latent weight, or its input activation. `bits`: 2..8, checked by the host (and accepted by
  /// the quantizer's refuse_bits); never 32: a full-precision layer does not call its quantizers.
  virtual at::Tensor forward(const at::Tensor& x, int bits) = 0;
  /// The grid of forward(x, bits), in eval mode. A weight quantizer gets the latent weight (its grid may depend on
  /// it) and promises forward(x, bits) == (codes − zero_point)·scale; an activation quantizer gets an undefined x
  /// and promises forward(x, bits) == (clamp(round(x/scale) + zero_point, qmin, qmax) − zero_point)·scale for
  /// every x (up to the rounding of exact ties). The host derives the codes from forward's output and checks them.
  /// The default, an undefined grid, tells `saqhost export` that this quantizer cannot be exported.
  virtual QuantGrid grid(const at::Tensor& x, int bits) {
    (void)x, (void)bits;
    return {};
  }
};

class SAQ_VISIBLE Quantizer {
 public:
  static constexpr Kind kind = Kind::Quantizer;
  using Interface = Quantizer;
  virtual ~Quantizer() = default;
  /// The weight quantizer of `layer` (it sees the layer's latent weight and returns what the op consumes).
  virtual std::shared_ptr<TensorQuantizer> weight_quantizer(const QuantLayerInfo& layer) const = 0;
  /// The input-activation quantizer of `layer`.
  virtual std::shared_ptr<TensorQuantizer> activation_quantizer(const QuantLayerInfo& layer) const = 0;
  /// Why this quantizer cannot quantize `layer` at these bits (32 = that tensor stays full precision), or "" when
  /// it can. The host asks for every layer's resolved bits before the run's first stage, so a pipeline the
  /// quantizer cannot serve stops at once (exit 2, naming the layer and where its bits came from).
  virtual std::string refuse_bits(const QuantLayerInfo& layer, int weight_bits, int activation_bits) const {
    (void)layer, (void)weight_bits, (void)activation_bits;
    return {};
  }
};

}  // namespace saq

#include <saq/layers.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

#include <torch/nn/init.h>
#include <torch/nn/functional/conv.h>

#include "forward_trace.hpp"

namespace saq {

using detail::trace_forward;

namespace {
void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}
}  // namespace

at::Tensor QuantLayer::forward(const at::Tensor& x) {
  trace_forward(this);
  input_shape_ = x.sizes().vec();
  at::Tensor in = activation_q_ && activation_bits_ != kFullPrecision ? activation_q_->forward(x, activation_bits_) : x;
  quantized_weight_ = weight_q_ && weight_bits_ != kFullPrecision ? weight_q_->forward(weight, weight_bits_) : weight;
  at::Tensor out = compute(in, perturbation_.defined() ? quantized_weight_ + perturbation_ : quantized_weight_);
  output_shape_ = out.sizes().vec();
  return out;
}

void QuantLayer::attach(std::shared_ptr<TensorQuantizer> weight_q, std::shared_ptr<TensorQuantizer> activation_q) {
  require(weight_q && activation_q, "attach: both quantizers are needed");
  require(!weight_q_, "attach: the layer already has quantizers");
  weight_q_ = register_module("weight_quantizer", std::move(weight_q));
  activation_q_ = register_module("activation_quantizer", std::move(activation_q));
}

std::pair<std::shared_ptr<TensorQuantizer>, std::shared_ptr<TensorQuantizer>> QuantLayer::replace_quantizers(
    std::shared_ptr<TensorQuantizer> weight_q, std::shared_ptr<TensorQuantizer> activation_q) {
  require(weight_q && activation_q, "replace_quantizers: both quantizers are needed");
  require(weight_q_ != nullptr, "replace_quantizers: the layer has no quantizers attached");
  auto old = std::make_pair(weight_q_, activation_q_);
  weight_q_ = replace_module("weight_quantizer", std::move(weight_q));
  activation_q_ = replace_module("activation_quantizer", std::move(activation_q));
  return old;
}

void QuantLayer::set_bits(int weight_bits, int activation_bits) {
  require(valid_bits(weight_bits) && valid_bits(activation_bits),
          "bits must be 2..8 or 32, got weight " + std::to_string(weight_bits) + ", activation " +
              std::to_string(activation_bits));
  require(weight_q_ || (weight_bits == kFullPrecision && activation_bits == kFullPrecision),
          "set_bits: the layer has no quantizers attached");
  weight_bits_ = weight_bits;
  activation_bits_ = activation_bits;
}

void QuantLayer::set_perturbation(at::Tensor eps) {
  require(eps.sizes() == weight.sizes(), "set_perturbation: shape differs from the weight's");
  perturbation_ = eps.detach();
}

std::vector<std::pair<std::string, std::shared_ptr<QuantLayer>>> quant_layers(torch::nn::Module& model) {
  std::vector<std::pair<std::string, std::shared_ptr<QuantLayer>>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (auto layer = std::dynamic_pointer_cast<QuantLayer>(item.value())) out.emplace_back(item.key(), layer);
  return out;
}

Conv2dLayer::Conv2dLayer(const ConvSpec& spec) : spec_(spec) {
  require(spec.in_channels > 0 && spec.out_channels > 0 && spec.kernel > 0,
          "conv2d: channels and kernel must be > 0, got in=" + std::to_string(spec.in_channels) +
              " out=" + std::to_string(spec.out_channels) + " kernel=" + std::to_string(spec.kernel));
  require(spec.groups > 0 && spec.in_channels % spec.groups == 0 && spec.out_channels % spec.groups == 0,
          "conv2d: groups=" + std::to_string(spec.groups) + " must divide in=" + std::to_string(spec.in_channels) +
              " and out=" + std::to_string(spec.out_channels));
  weight = register_parameter(
      "weight", torch::empty({spec.out_channels, spec.in_channels / spec.groups, spec.kernel, spec.kernel}));
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
  if (spec.bias) bias = register_parameter("bias", torch::zeros({spec.out_channels}));
  set_bits_from(spec.bits_from);
}

at::Tensor Conv2dLayer::compute(const at::Tensor& x, const at::Tensor& w) {
  return at::conv2d(x, w, bias, {spec_.stride, spec_.stride}, {spec_.padding, spec_.padding}, {1, 1}, spec_.groups);
}

std::int64_t Conv2dLayer::macs_per_sample() const {
  const auto& out = last_output_shape();
  if (out.size() != 4) return 0;
  return spec_.kernel * spec_.kernel * (spec_.in_channels / spec_.groups) * spec_.out_channels * out[2] * out[3];
}

LinearLayer::LinearLayer(std::int64_t in, std::int64_t out, bool with_bias) : in_(in), out_(out) {
  require(in > 0 && out > 0, "linear: features must be > 0, got in=" + std::to_string(in) + " out=" + std::to_string(out));
  double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", torch::empty({out, in}).uniform_(-bound, bound));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound));
}

at::Tensor LinearLayer::compute(const at::Tensor& x, const at::Tensor& w) { return at::linear(x, w, bias); }

BatchNorm2dLayer::BatchNorm2dLayer(std::int64_t channels) {
  require(channels > 0, "batch_norm2d: channels must be > 0, got " + std::to_string(channels));
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

at::Tensor BatchNorm2dLayer::forward(const at::Tensor& x) {
  trace_forward(this);
  if (!copies_.empty()) {
    auto producer = producer_.lock();
    require(producer != nullptr, "switchable batch norm: its producing layer is gone");
    auto copy = copy_for(producer->weight_bits(), producer->activation_bits());
    if (!copy)
      throw std::invalid_argument("switchable batch norm: no copy for bits w" +
                                  std::to_string(producer->weight_bits()) + "a" +
                                  std::to_string(producer->activation_bits()) + " of its input's layer");
    return copy->forward(x);
  }
  if (is_training()) num_batches_tracked.add_(1);
  return at::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps,
                        /*cudnn_enabled=*/true);
}

void BatchNorm2dLayer::make_switchable(const std::shared_ptr<QuantLayer>& producer, const std::vector<int>& choices,
                                       bool same_bits_only) {
  require(producer != nullptr, "make_switchable: no producing layer");
  require(copies_.empty(), "make_switchable: the norm is switchable already");
  at::NoGradGuard no_grad;
  for (int w : choices)
    for (int a : choices) {
      if (same_bits_only && w != a) continue;
      auto copy = std::make_shared<BatchNorm2dLayer>(weight.size(0));
      copy->momentum = momentum, copy->eps = eps;
      copy->to(weight.device(), weight.scalar_type());
      copy->weight.copy_(weight), copy->bias.copy_(bias);
      copy->running_mean.copy_(running_mean), copy->running_var.copy_(running_var);
      copy->num_batches_tracked.copy_(num_batches_tracked);
      copies_.push_back({{w, a}, register_module("w" + std::to_string(w) + "a" + std::to_string(a), copy)});
    }
  producer_ = producer;
}

void BatchNorm2dLayer::drop_switchable() {
  for (const auto& c : copies_) unregister_module("w" + std::to_string(c.first.first) + "a" + std::to_string(c.first.second));
  copies_.clear();
  producer_.reset();
}

std::shared_ptr<BatchNorm2dLayer> BatchNorm2dLayer::copy_for(int weight_bits, int activation_bits) const {
  for (const auto& c : copies_)
    if (c.first.first == weight_bits && c.first.second == activation_bits) return c.second;
  return nullptr;
}

std::shared_ptr<Conv2dLayer> conv2d(torch::nn::Module& owner, const std::string& name, const ConvSpec& spec) {
  return owner.register_module(name, std::make_shared<Conv2dLayer>(spec));
}

std::shared_ptr<LinearLayer> linear(torch::nn::Module& owner, const std::string& name, std::int64_t in,
                                    std::int64_t out, bool bias) {
  return owner.register_module(name, std::make_shared<LinearLayer>(in, out, bias));
}

std::shared_ptr<BatchNorm2dLayer> batch_norm2d(torch::nn::Module& owner, const std::string& name,
                                               std::int64_t channels) {
  return owner.register_module(name, std::make_shared<BatchNorm2dLayer>(channels));
}

}  // namespace saq

#include <saq/layers.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

#include <torch/nn/init.h>
#include <torch/nn/functional/conv.h>

namespace saq {

namespace {
void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}
}  // namespace

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
}

at::Tensor Conv2dLayer::forward(const at::Tensor& x) {
  return at::conv2d(x, weight, bias, {spec_.stride, spec_.stride}, {spec_.padding, spec_.padding}, {1, 1},
                    spec_.groups);
}

LinearLayer::LinearLayer(std::int64_t in, std::int64_t out, bool with_bias) : in_(in), out_(out) {
  require(in > 0 && out > 0, "linear: features must be > 0, got in=" + std::to_string(in) + " out=" + std::to_string(out));
  double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", torch::empty({out, in}).uniform_(-bound, bound));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound));
}

at::Tensor LinearLayer::forward(const at::Tensor& x) { return at::linear(x, weight, bias); }

BatchNorm2dLayer::BatchNorm2dLayer(std::int64_t channels) {
  require(channels > 0, "batch_norm2d: channels must be > 0, got " + std::to_string(channels));
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

at::Tensor BatchNorm2dLayer::forward(const at::Tensor& x) {
  if (is_training()) num_batches_tracked.add_(1);
  return at::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps,
                        /*cudnn_enabled=*/true);
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

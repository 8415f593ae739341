#pragma once
/// The layer factory models are written against. Each call creates a named layer and registers it on its
/// owner, so parameter names follow PyTorch ("layer1.0.conv1.weight").
#include <cstdint>
#include <memory>
#include <string>

#include <torch/nn/module.h>

#include <saq/abi.hpp>

namespace saq {

struct ConvSpec {
  std::int64_t in_channels = 0, out_channels = 0, kernel = 3;
  std::int64_t stride = 1, padding = 0, groups = 1;
  bool bias = false;
};

/// 2-D convolution. Weights start Kaiming-normal (fan_out, ReLU gain), as in torchvision and the paper's nets.
class SAQ_VISIBLE Conv2dLayer : public torch::nn::Module {
 public:
  explicit Conv2dLayer(const ConvSpec& spec);
  at::Tensor forward(const at::Tensor& x);
  const ConvSpec& spec() const { return spec_; }
  at::Tensor weight, bias;

 private:
  ConvSpec spec_;
};

/// Fully connected layer, PyTorch's default initialisation U(−1/√in, 1/√in) for weight and bias.
class SAQ_VISIBLE LinearLayer : public torch::nn::Module {
 public:
  LinearLayer(std::int64_t in_features, std::int64_t out_features, bool bias);
  at::Tensor forward(const at::Tensor& x);
  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }
  at::Tensor weight, bias;

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
};

std::shared_ptr<Conv2dLayer> conv2d(torch::nn::Module& owner, const std::string& name, const ConvSpec& spec);
std::shared_ptr<LinearLayer> linear(torch::nn::Module& owner, const std::string& name, std::int64_t in,
                                    std::int64_t out, bool bias = true);
std::shared_ptr<BatchNorm2dLayer> batch_norm2d(torch::nn::Module& owner, const std::string& name,
                                               std::int64_t channels);

}  // namespace saq

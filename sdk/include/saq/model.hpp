#pragma once
/// Model plugins: a torch::nn::Module whose layers come from the SDK's layer factory (saq/layers.hpp).
#include <torch/nn/module.h>

#include <saq/params.hpp>

namespace saq {

class SAQ_VISIBLE Model : public torch::nn::Module {
 public:
  static constexpr Kind kind = Kind::Model;
  using Interface = Model;
  /// Logits [B, num_classes] for a batch [B, C, H, W].
  virtual at::Tensor forward(const at::Tensor& x) = 0;
};

}  // namespace saq

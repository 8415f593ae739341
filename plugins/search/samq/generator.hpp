#pragma once
// SAMQ's configuration generator: an LSTM that emits one bit choice per searchable layer (or a weight and an
// activation choice per layer, alternating, with two heads).
#include <cstdint>
#include <vector>

#include <saq/sdk.hpp>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

namespace saq::plugins {

/// Rollout (batch 1), h = c = 0 and input 0 at t = 1:
///   (h, c) = LSTMCell(input, (h, c));  p_t = softmax(W h + b);  a_t ~ Categorical(p_t)
///   log π += log p_t[a_t];  H += −Σ_k p_t[k] log p_t[k];  input = Embedding(a_t)
/// Every parameter starts U(−0.1, 0.1). With `separate`, decisions alternate weight/activation per layer, each
/// kind with its own head W, b.
class Generator : public torch::nn::Module {
 public:
  Generator(std::int64_t layers, std::int64_t choices, std::int64_t hidden, bool separate);

  struct Rollout {
    std::vector<std::int64_t> actions;  ///< one per decision (2 per layer when separate)
    at::Tensor log_prob, entropy;       ///< scalars, in the graph unless sampled under NoGradGuard
  };
  /// Samples one configuration with `rng` (only its draws decide the actions).
  Rollout sample(SplitMix& rng);
  /// log π and H of given actions (the same graph as sample()).
  Rollout evaluate(const std::vector<std::int64_t>& actions);
  /// The actions as bits: choices[a] for weights and activations (same index twice unless separate).
  BitConfig to_config(const std::vector<std::int64_t>& actions, const std::vector<int>& choices) const;
  std::int64_t decisions() const { return separate_ ? 2 * layers_ : layers_; }

  torch::nn::Embedding embedding{nullptr};
  torch::nn::LSTMCell lstm{nullptr};
  torch::nn::Linear head{nullptr}, activation_head{nullptr};

 private:
  Rollout roll(SplitMix* rng, const std::vector<std::int64_t>* given);
  std::int64_t layers_, choices_, hidden_;
  bool separate_;
};

}  // namespace saq::plugins

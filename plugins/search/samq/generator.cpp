#include "generator.hpp"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

namespace saq::plugins {

Generator::Generator(std::int64_t layers, std::int64_t choices, std::int64_t hidden, bool separate)
    : layers_(layers), choices_(choices), hidden_(hidden), separate_(separate) {
  TORCH_CHECK(layers > 0 && choices > 0 && hidden > 0, "generator: layers, choices and hidden must be > 0, got ",
              layers, ", ", choices, ", ", hidden);
  embedding = register_module("embedding", torch::nn::Embedding(choices, hidden));
  lstm = register_module("lstm", torch::nn::LSTMCell(hidden, hidden));
  head = register_module("head", torch::nn::Linear(hidden, choices));
  if (separate) activation_head = register_module("activation_head", torch::nn::Linear(hidden, choices));
  at::NoGradGuard no_grad;
  for (auto& p : parameters()) torch::nn::init::uniform_(p, -0.1, 0.1);
}

Generator::Rollout Generator::roll(SplitMix* rng, const std::vector<std::int64_t>* given) {
  const auto options = head->weight.options();
  at::Tensor input = at::zeros({1, hidden_}, options);
  at::Tensor h = at::zeros({1, hidden_}, options), c = at::zeros({1, hidden_}, options);
  Rollout r;
  std::vector<at::Tensor> log_probs, entropies;
  for (std::int64_t t = 0; t < decisions(); ++t) {
    std::tie(h, c) = lstm->forward(input, std::make_tuple(h, c));
    at::Tensor logits = (separate_ && t % 2 == 1 ? activation_head : head)->forward(h);
    at::Tensor log_p = at::log_softmax(logits, 1).squeeze(0);
    at::Tensor p = log_p.exp();
    std::int64_t a = 0;
    if (given) {
      a = (*given)[static_cast<size_t>(t)];
      TORCH_CHECK(a >= 0 && a < choices_, "generator: action ", a, " outside [0, ", choices_, ")");
    } else {
      // Inverse CDF on the probabilities read back: the draw depends on `rng` alone.
      at::Tensor cpu = p.detach().to(at::kCPU, at::kDouble).contiguous();
      const double* q = cpu.data_ptr<double>();
      double u = rng->uniform(), acc = 0;
      a = choices_ - 1;
      for (std::int64_t k = 0; k < choices_; ++k)
        if (u < (acc += q[k])) {
          a = k;
          break;
        }
    }
    r.actions.push_back(a);
    log_probs.push_back(log_p[a]);
    entropies.push_back(-(p * log_p).sum());
    input = embedding->forward(at::full({1}, a, at::TensorOptions().dtype(at::kLong).device(options.device())));
  }
  r.log_prob = at::stack(log_probs).sum();
  r.entropy = at::stack(entropies).sum();
  return r;
}

Generator::Rollout Generator::sample(SplitMix& rng) { return roll(&rng, nullptr); }

Generator::Rollout Generator::evaluate(const std::vector<std::int64_t>& actions) {
  TORCH_CHECK(static_cast<std::int64_t>(actions.size()) == decisions(), "generator: ", actions.size(),
              " actions for ", decisions(), " decisions");
  return roll(nullptr, &actions);
}

BitConfig Generator::to_config(const std::vector<std::int64_t>& actions, const std::vector<int>& choices) const {
  BitConfig c;
  for (std::int64_t l = 0; l < layers_; ++l) {
    const auto w = actions[static_cast<size_t>(separate_ ? 2 * l : l)];
    const auto a = actions[static_cast<size_t>(separate_ ? 2 * l + 1 : l)];
    c.emplace_back(choices[static_cast<size_t>(w)], choices[static_cast<size_t>(a)]);
  }
  return c;
}

}  // namespace saq::plugins

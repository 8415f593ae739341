// SAMQ's generator: valid configurations of the searchable-layer count of each model, log π and H against a
// hand computation for fixed logits, and REINFORCE driving the policy to a preferred bit per layer.
#include "model_zoo.hpp"

#include <cmath>
#include <vector>

#include <torch/optim/adam.h>

#include "../../plugins/search/samq/generator.hpp"
#include "../../plugins/search/samq/samq.hpp"
#include "quantize.hpp"

using saq::plugins::Generator;

TEST_CASE("searchable layers: the paper's decision counts, and the generator fills them with valid bits") {
  // §5.3: PreResNet-20 has 18 decisions and ResNet-18 16 (stem, FC and the downsample convs excluded);
  // MobileNetV2 for ImageNet 51.
  struct Case {
    std::string model;
    saq::DataInfo info;
    size_t decisions;
  };
  for (const auto& c : {Case{"preresnet20", saq::test::kCifar100, 18}, Case{"resnet18", saq::test::kImageNet, 16},
                        Case{"mobilenetv2", saq::test::kImageNet, 51}}) {
    CAPTURE(c.model);
    auto model = saq::test::zoo_model(c.model, c.info);
    const auto at = saq::host::searchable_layers(*model);
    CHECK(at.size() == c.decisions);
    const std::vector<int> choices{2, 3, 4, 5};
    for (bool separate : {false, true}) {
      Generator gen(static_cast<std::int64_t>(at.size()), 4, 64, separate);
      CHECK(gen.decisions() == static_cast<std::int64_t>(separate ? 2 * at.size() : at.size()));
      saq::SplitMix rng(7);
      for (int i = 0; i < 3; ++i) {
        const auto r = gen.sample(rng);
        const saq::BitConfig config = gen.to_config(r.actions, choices);
        REQUIRE(config.size() == at.size());
        for (const auto& [w, a] : config) {
          CHECK((w >= 2 && w <= 5));
          CHECK((a >= 2 && a <= 5));
          if (!separate) CHECK(w == a);
        }
      }
    }
  }
}

TEST_CASE("generator: log-probability and entropy of a rollout match a hand computation for fixed logits") {
  // Zero head weights leave the logits at the bias at every step, whatever the LSTM does.
  const std::vector<double> bias{0.0, 1.0, 2.0, 3.0}, bias_a{0.5, -1.0, 0.0, 2.5};
  auto softmax = [](const std::vector<double>& z) {
    double s = 0;
    for (double v : z) s += std::exp(v);
    std::vector<double> p;
    for (double v : z) p.push_back(std::exp(v) / s);
    return p;
  };
  auto entropy = [](const std::vector<double>& p) {
    double h = 0;
    for (double v : p) h -= v * std::log(v);
    return h;
  };
  const auto p = softmax(bias), q = softmax(bias_a);
  {
    Generator gen(3, 4, 8, false);
    at::NoGradGuard no_grad;
    gen.head->weight.zero_();
    gen.head->bias.copy_(at::tensor(std::vector<float>(bias.begin(), bias.end())));
    const auto r = gen.evaluate({0, 3, 1});
    CHECK(r.log_prob.item<double>() == doctest::Approx(std::log(p[0]) + std::log(p[3]) + std::log(p[1])).epsilon(1e-5));
    CHECK(r.entropy.item<double>() == doctest::Approx(3 * entropy(p)).epsilon(1e-5));
  }
  {
    Generator gen(2, 4, 8, true);  // decisions alternate weight (head) and activation (activation_head)
    at::NoGradGuard no_grad;
    gen.head->weight.zero_();
    gen.head->bias.copy_(at::tensor(std::vector<float>(bias.begin(), bias.end())));
    gen.activation_head->weight.zero_();
    gen.activation_head->bias.copy_(at::tensor(std::vector<float>(bias_a.begin(), bias_a.end())));
    const auto r = gen.evaluate({2, 3, 0, 1});
    CHECK(r.log_prob.item<double>() ==
          doctest::Approx(std::log(p[2]) + std::log(q[3]) + std::log(p[0]) + std::log(q[1])).epsilon(1e-5));
    CHECK(r.entropy.item<double>() == doctest::Approx(2 * entropy(p) + 2 * entropy(q)).epsilon(1e-5));
    CHECK(gen.to_config(r.actions, {2, 3, 4, 5}) == saq::BitConfig{{4, 5}, {2, 3}});
  }
}

/// The probability the generator gives `actions` after `updates` REINFORCE updates (Adam, the paper's betas) on
/// the cost "number of decisions off `preferred`", always ≥ 0 as the paper's reward (no baseline).
double trained_probability(const std::vector<std::int64_t>& preferred, int updates) {
  torch::manual_seed(0);
  saq::SplitMix rng(3);
  Generator gen(static_cast<std::int64_t>(preferred.size()), 4, 16, false);
  torch::optim::Adam adam(gen.parameters(), torch::optim::AdamOptions(0.01).betas({0.5, 0.999}));
  for (int i = 0; i < updates; ++i) {
    const auto r = gen.sample(rng);
    double cost = 0;
    for (size_t t = 0; t < preferred.size(); ++t) cost += r.actions[t] == preferred[t] ? 0.0 : 1.0;
    saq::plugins::Samq::reinforce(adam, r, cost, 0.0);
  }
  return std::exp(gen.evaluate(preferred).log_prob.item<double>());
}

TEST_CASE("REINFORCE on a toy cost (decisions off a preferred bit) drives the policy to the preferred bits") {
  // At the U(−0.1, 0.1) start every rollout has probability about (1/4)^T.
  for (std::int64_t bit = 0; bit < 4; ++bit) {
    CAPTURE(bit);
    CHECK(trained_probability({bit}, 200) > 0.9);
  }
  // Five layers sharing one preferred bit: the shared head learns it (a per-layer pattern takes the LSTM far
  // more updates, as its state must first tell the steps apart).
  CHECK(trained_probability({2, 2, 2, 2, 2}, 600) > 0.95);
}

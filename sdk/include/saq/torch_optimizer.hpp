#pragma once
/// Adapts a torch::optim optimizer to saq::Optimizer: one forward, one backward of the mean loss, one update.
/// In a data-parallel run every update first averages the gradients over the ranks (one all-reduce).
#include <memory>
#include <vector>

#include <torch/optim/optimizer.h>

#include <saq/collective.hpp>
#include <saq/optimizer.hpp>

namespace saq {

class SAQ_VISIBLE TorchOptimizer : public Optimizer {
 public:
  /// `collective`: the run's ranks (Context::collective), null in a single process.
  explicit TorchOptimizer(std::unique_ptr<torch::optim::Optimizer> impl, Collective* collective = nullptr);
  StepResult step(const LossFn& loss_fn) override;
  void apply_gradients() override;
  void zero_grad() override;
  void set_lr_factor(double factor) override;
  double lr() const override;
  void save(StateDict& state) const override;
  void load(const StateDict& state) override;
  torch::optim::Optimizer& impl() { return *impl_; }

 private:
  std::unique_ptr<torch::optim::Optimizer> impl_;
  std::vector<double> base_lrs_;
  Collective* collective_;
};

/// The state of a torch::optim SGD, Adam or AdamW: its kind, each group's rate and, per parameter, the buffers
/// and step count it keeps. load_torch_optimizer checks the kind, the groups' sizes and every buffer's shape
/// and dtype against the parameters before it changes anything (std::runtime_error naming `state.where()`).
SAQ_VISIBLE void save_torch_optimizer(const torch::optim::Optimizer& optimizer, StateDict& state);
SAQ_VISIBLE void load_torch_optimizer(torch::optim::Optimizer& optimizer, const StateDict& state);

/// Parameter groups for torch::optim: each ParamGroup with its lr/weight-decay overrides applied to a copy
/// of `defaults`. Options must offer lr() and weight_decay() setters (SGD, Adam, AdamW do).
template <class Options>
std::vector<torch::optim::OptimizerParamGroup> torch_groups(const std::vector<ParamGroup>& groups,
                                                            const Options& defaults) {
  std::vector<torch::optim::OptimizerParamGroup> out;
  for (const auto& g : groups) {
    auto options = std::make_unique<Options>(defaults);
    if (g.lr) options->lr(*g.lr);
    if (g.weight_decay) options->weight_decay(*g.weight_decay);
    out.emplace_back(g.params, std::move(options));
  }
  return out;
}

}  // namespace saq

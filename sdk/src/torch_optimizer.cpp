#include <saq/torch_optimizer.hpp>

#include <cmath>
#include <string>

#include <ATen/ATen.h>

namespace saq {

NonFiniteError::~NonFiniteError() = default;

void check_finite_gradients(const std::vector<at::Tensor>& params) {
  // A double sum of float gradients is finite exactly when every element is: it cannot overflow.
  std::vector<at::Tensor> sums;
  for (const auto& p : params)
    if (p.grad().defined()) sums.push_back(p.grad().sum(at::kDouble));
  if (sums.empty()) return;
  const double total = at::stack(sums).sum().item<double>();
  if (!std::isfinite(total)) throw NonFiniteError("a gradient holds NaN or Inf (their sum is " + std::to_string(total) + ")");
}

TorchOptimizer::TorchOptimizer(std::unique_ptr<torch::optim::Optimizer> impl, Collective* collective)
    : impl_(std::move(impl)), collective_(collective) {
  for (auto& g : impl_->param_groups()) base_lrs_.push_back(g.options().get_lr());
}

StepResult TorchOptimizer::step(const LossFn& loss_fn) {
  zero_grad();
  at::Tensor loss = loss_fn(at::Tensor()).mean();
  loss.backward();
  apply_gradients();
  StepResult r;
  r.loss = loss.item<double>();
  return r;
}

void TorchOptimizer::apply_gradients() {
  std::vector<at::Tensor> params;
  for (const auto& g : impl_->param_groups()) params.insert(params.end(), g.params().begin(), g.params().end());
  // After the average a NaN on one rank is a NaN on all: every rank skips (or stops at) the same step.
  if (collective_) average_gradients(*collective_, params);
  check_finite_gradients(params);
  impl_->step();
}

// Gradients are dropped, not zeroed (LibTorch 1.13's zero_grad zeroes them): a parameter the next step does not
// reach, such as a supernet's BatchNorm copy for bits not drawn, then gets neither weight decay nor momentum, and
// a run resumed from a checkpoint (which holds no gradients) steps exactly as the uninterrupted one.
void TorchOptimizer::zero_grad() {
  for (auto& g : impl_->param_groups())
    for (auto& p : g.params()) p.mutable_grad().reset();
}

void TorchOptimizer::set_lr_factor(double factor) {
  auto& groups = impl_->param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(base_lrs_[i] * factor);
}

double TorchOptimizer::lr() const { return impl_->param_groups().front().options().get_lr(); }

void TorchOptimizer::save(StateDict& state) const { save_torch_optimizer(*impl_, state); }

void TorchOptimizer::load(const StateDict& state) { load_torch_optimizer(*impl_, state); }

}  // namespace saq

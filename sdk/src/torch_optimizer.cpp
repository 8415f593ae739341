#include <saq/torch_optimizer.hpp>

#include <torch/serialize/archive.h>

namespace saq {

TorchOptimizer::TorchOptimizer(std::unique_ptr<torch::optim::Optimizer> impl) : impl_(std::move(impl)) {
  for (auto& g : impl_->param_groups()) base_lrs_.push_back(g.options().get_lr());
}

StepResult TorchOptimizer::step(const LossFn& loss_fn) {
  impl_->zero_grad();
  at::Tensor loss = loss_fn(at::Tensor()).mean();
  loss.backward();
  impl_->step();
  StepResult r;
  r.loss = loss.item<double>();
  return r;
}

void TorchOptimizer::apply_gradients() { impl_->step(); }

void TorchOptimizer::zero_grad() { impl_->zero_grad(); }

void TorchOptimizer::set_lr_factor(double factor) {
  auto& groups = impl_->param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(base_lrs_[i] * factor);
}

double TorchOptimizer::lr() const { return impl_->param_groups().front().options().get_lr(); }

void TorchOptimizer::save(torch::serialize::OutputArchive& archive) const { impl_->save(archive); }

void TorchOptimizer::load(torch::serialize::InputArchive& archive) { impl_->load(archive); }

}  // namespace saq

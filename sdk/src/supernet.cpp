#include <saq/supernet.hpp>

#include <stdexcept>

#include <ATen/ATen.h>

#include "forward_trace.hpp"

namespace saq {

namespace detail {
thread_local std::vector<const torch::nn::Module*>* active_forward_trace = nullptr;
}  // namespace detail

SwitchableQuantizer::SwitchableQuantizer(const std::vector<int>& choices,
                                         const std::function<std::shared_ptr<TensorQuantizer>()>& make)
    : choices_(choices) {
  if (choices.empty()) throw std::invalid_argument("SwitchableQuantizer: no bit choices");
  for (int b : choices) inner_.push_back(register_module("bits" + std::to_string(b), make()));
}

TensorQuantizer& SwitchableQuantizer::inner(int bits) const {
  for (size_t i = 0; i < choices_.size(); ++i)
    if (choices_[i] == bits) return *inner_[i];
  throw std::invalid_argument("switchable quantizer: " + std::to_string(bits) + " bits is not one of its choices");
}

at::Tensor SwitchableQuantizer::forward(const at::Tensor& x, int bits) { return inner(bits).forward(x, bits); }

std::size_t copy_matching_state(const torch::nn::Module& from, torch::nn::Module& to) {
  at::NoGradGuard no_grad;
  std::size_t copied = 0;
  auto copy = [&copied](const torch::OrderedDict<std::string, at::Tensor>& src,
                        torch::OrderedDict<std::string, at::Tensor> dst) {
    for (const auto& item : dst) {
      const at::Tensor* s = src.find(item.key());
      if (s && s->sizes() == item.value().sizes()) {
        item.value().copy_(*s);
        ++copied;
      }
    }
  };
  copy(from.named_parameters(), to.named_parameters());
  copy(from.named_buffers(), to.named_buffers());
  return copied;
}

std::map<std::string, std::string> norm_producers(Model& model, const at::Tensor& probe) {
  std::map<const torch::nn::Module*, std::string> names;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) names[item.value().get()] = item.key();
  std::vector<const torch::nn::Module*> order;
  const bool was_training = model.is_training();
  model.eval();
  detail::active_forward_trace = &order;
  try {
    at::NoGradGuard no_grad;
    model.forward(probe);
  } catch (...) {
    detail::active_forward_trace = nullptr;
    model.train(was_training);
    throw;
  }
  detail::active_forward_trace = nullptr;
  model.train(was_training);

  std::map<std::string, std::string> out;
  std::string last;
  for (const auto* m : order) {
    if (dynamic_cast<const QuantLayer*>(m)) {
      last = names[m];
    } else if (dynamic_cast<const BatchNorm2dLayer*>(m) && !last.empty()) {
      out.emplace(names[m], last);  // the first run counts (a norm reused later keeps its first producer)
    }
  }
  return out;
}

}  // namespace saq

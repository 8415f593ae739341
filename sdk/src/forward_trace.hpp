#pragma once
// The order in which layers run, recorded while saq::norm_producers traces a forward pass (and nowhere else:
// the hook is one thread-local null check in each layer's forward).
#include <vector>

#include <torch/nn/module.h>

namespace saq::detail {

extern thread_local std::vector<const torch::nn::Module*>* active_forward_trace;

inline void trace_forward(const torch::nn::Module* layer) {
  if (active_forward_trace) active_forward_trace->push_back(layer);
}

}  // namespace saq::detail

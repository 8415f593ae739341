#pragma once
/// The host's training loss and accuracy counts.
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace saq::host {

/// Per-sample cross-entropy with label smoothing s: (1 − s)·(−log p_y) + s·mean_k(−log p_k).
at::Tensor cross_entropy_per_sample(const at::Tensor& logits, const at::Tensor& labels, double smoothing);

struct Correct {
  std::int64_t top1 = 0, top5 = 0;
};
/// How many rows have the label first, and among the first five (all classes when there are fewer).
Correct count_correct(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace saq::host

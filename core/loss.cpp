#include "loss.hpp"

#include <algorithm>

#include <ATen/ATen.h>

namespace saq::host {

at::Tensor cross_entropy_per_sample(const at::Tensor& logits, const at::Tensor& labels, double smoothing) {
  at::Tensor logp = at::log_softmax(logits, 1);
  at::Tensor nll = -logp.gather(1, labels.unsqueeze(1)).squeeze(1);
  if (smoothing == 0.0) return nll;
  return (1.0 - smoothing) * nll - smoothing * logp.mean(1);
}

Correct count_correct(const at::Tensor& logits, const at::Tensor& labels) {
  at::NoGradGuard no_grad;
  std::int64_t k = std::min<std::int64_t>(5, logits.size(1));
  at::Tensor top = std::get<1>(logits.topk(k, 1));
  at::Tensor hit = top.eq(labels.unsqueeze(1));
  Correct c;
  c.top1 = hit.select(1, 0).sum().item<std::int64_t>();
  c.top5 = hit.any(1).sum().item<std::int64_t>();
  return c;
}

}  // namespace saq::host

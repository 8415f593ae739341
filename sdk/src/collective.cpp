#include <saq/collective.hpp>

#include <map>

#include <ATen/ATen.h>

namespace saq {

namespace {

/// Indices of `tensors` grouped by dtype, in order: one flat buffer per group.
std::map<at::ScalarType, std::vector<size_t>> by_dtype(const std::vector<at::Tensor>& tensors) {
  std::map<at::ScalarType, std::vector<size_t>> groups;
  for (size_t i = 0; i < tensors.size(); ++i) groups[tensors[i].scalar_type()].push_back(i);
  return groups;
}

at::Tensor flatten(const std::vector<at::Tensor>& tensors, const std::vector<size_t>& idx) {
  std::vector<at::Tensor> parts;
  for (size_t i : idx) parts.push_back(tensors[i].detach().reshape({-1}));
  return at::cat(parts);
}

void unflatten(const at::Tensor& flat, const std::vector<at::Tensor>& tensors, const std::vector<size_t>& idx) {
  at::NoGradGuard no_grad;
  std::int64_t offset = 0;
  for (size_t i : idx) {
    const std::int64_t n = tensors[i].numel();
    tensors[i].detach().copy_(flat.narrow(0, offset, n).view_as(tensors[i]));
    offset += n;
  }
}

}  // namespace

void average_gradients(Collective& c, const std::vector<at::Tensor>& params) {
  if (c.world_size() <= 1 || params.empty()) return;
  at::NoGradGuard no_grad;
  for (const auto& [dtype, idx] : by_dtype(params)) {
    // [gradients..., one "defined here" flag per parameter]: the flags ride in the same all-reduce.
    std::vector<at::Tensor> parts;
    for (size_t i : idx) {
      const at::Tensor& g = params[i].grad();
      parts.push_back(g.defined() ? g.reshape({-1}) : at::zeros({params[i].numel()}, params[i].options()));
    }
    std::vector<double> flags;
    for (size_t i : idx) flags.push_back(params[i].grad().defined() ? 1.0 : 0.0);
    parts.push_back(at::tensor(flags, at::TensorOptions().dtype(dtype)).to(params[idx.front()].device()));
    at::Tensor flat = at::cat(parts);
    c.all_reduce_sum(flat);
    const double inv = 1.0 / static_cast<double>(c.world_size());
    const std::int64_t total = flat.numel() - static_cast<std::int64_t>(idx.size());
    at::Tensor reached = flat.narrow(0, total, static_cast<std::int64_t>(idx.size())).to(at::kCPU, at::kDouble).contiguous();
    const double* reached_by = reached.data_ptr<double>();  // one device-to-host copy, not one per parameter
    std::int64_t offset = 0;
    for (size_t k = 0; k < idx.size(); ++k) {
      const at::Tensor& p = params[idx[k]];
      const std::int64_t n = p.numel();
      if (reached_by[k] > 0) {
        at::Tensor mean = flat.narrow(0, offset, n).view_as(p).mul(inv);
        if (p.grad().defined()) p.mutable_grad().copy_(mean);
        else p.mutable_grad() = mean.clone();
      }
      offset += n;
    }
  }
}

void average_tensors(Collective& c, const std::vector<at::Tensor>& tensors) {
  if (c.world_size() <= 1) return;
  for (const auto& [dtype, idx] : by_dtype(tensors)) {
    at::Tensor flat = flatten(tensors, idx);
    c.all_reduce_sum(flat);
    flat.div_(static_cast<double>(c.world_size()));
    unflatten(flat, tensors, idx);
  }
}

void broadcast_tensors(Collective& c, const std::vector<at::Tensor>& tensors, int root) {
  if (c.world_size() <= 1) return;
  for (const auto& [dtype, idx] : by_dtype(tensors)) {
    at::Tensor flat = flatten(tensors, idx);
    c.broadcast(flat, root);
    unflatten(flat, tensors, idx);
  }
}

}  // namespace saq

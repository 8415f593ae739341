#pragma once
/// The collectives of a data-parallel run, as plugins see them: what an optimizer needs to average gradients
/// over the ranks, and which rank logs. The host implements it on LibTorch's c10d (Gloo on CPU, NCCL on CUDA);
/// a single-process run has none (Context::collective is null).
#include <vector>

#include <ATen/core/Tensor.h>

#include <saq/abi.hpp>

namespace saq {

class SAQ_VISIBLE Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  /// Sums `flat` (one contiguous tensor, the same shape and dtype on every rank) over the ranks, in place.
  /// Throws std::runtime_error naming what failed when a rank is gone or the collective timeout passes.
  virtual void all_reduce_sum(at::Tensor& flat) = 0;
  /// Overwrites `flat` on every rank with rank `root`'s values.
  virtual void broadcast(at::Tensor& flat, int root) = 0;
  /// Returns when every rank has reached it.
  virtual void barrier() = 0;
  /// Rank 0 writes the run directory and logs progress; the others log warnings and errors only.
  bool logging_rank() const { return rank() == 0; }
};

/// Averages the gradients of `params` over the ranks: one flattened SUM all-reduce per dtype, divided by the
/// world size (as DDP). A gradient undefined on a rank counts as zero there; one undefined on every rank stays
/// undefined, so a parameter no rank reached is left alone by the update.
SAQ_VISIBLE void average_gradients(Collective& c, const std::vector<at::Tensor>& params);

/// Averages floating-point `tensors` over the ranks in place (the tensors themselves, not their gradients).
SAQ_VISIBLE void average_tensors(Collective& c, const std::vector<at::Tensor>& tensors);

/// Copies rank `root`'s values of `tensors` to every rank: one broadcast of one flat buffer per dtype.
SAQ_VISIBLE void broadcast_tensors(Collective& c, const std::vector<at::Tensor>& tensors, int root = 0);

}  // namespace saq

#pragma once
/// Dataset plugins: what a data set holds, and loaders that hand out normalised batches.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include <saq/params.hpp>

namespace saq {

/// What a model is built for.
struct DataInfo {
  std::vector<std::int64_t> input_shape;  ///< one sample: {C, H, W}
  std::int64_t num_classes = 0;
  std::vector<std::string> class_names;
};

/// x: float [B, C, H, W], normalised; y: int64 [B] class indices.
struct Batch {
  at::Tensor x, y;
};

/// How a loader walks one split. Training loaders shuffle and augment; evaluation loaders do neither.
struct LoaderSpec {
  std::string split = "train";
  std::int64_t batch_size = 128;
  bool train = true;
  bool drop_last = false;
  std::uint64_t seed = 0;
  std::int64_t begin = 0;  ///< a sub-range [begin, end) of the split; end < 0 = to the end
  std::int64_t end = -1;
  /// Data parallelism: batch k of rank r is the r-th share of the global batch k (world_size × batch_size
  /// samples of the epoch's order), so W ranks see together what one process with batch W·B sees.
  std::int64_t rank = 0, world_size = 1;
};

/// Where batch k of one rank lies in the epoch's order: `count` samples from position `first`.
struct BatchSlice {
  std::int64_t first = 0, count = 0;
};

/// Batches of a loader over `samples` samples: ⌈samples / (W·B)⌉ (⌊⌋ with drop_last); with W > 1 a last global
/// batch of fewer than W samples is dropped, so that every rank has a sample in every batch it takes.
SAQ_VISIBLE std::int64_t sliced_batches(const LoaderSpec& spec, std::int64_t samples);
/// Rank spec.rank's share of global batch k: the global batch split as evenly as possible (sizes differ by at
/// most one, lower ranks larger). Throws std::invalid_argument for a bad rank or world size.
SAQ_VISIBLE BatchSlice batch_slice(const LoaderSpec& spec, std::int64_t samples, std::int64_t k);

/// Batches of one split. The order of an epoch is a function of (seed, epoch) alone, so a run can restart
/// at any batch of any epoch and see the same data.
class SAQ_VISIBLE Loader {
 public:
  virtual ~Loader() = default;
  virtual std::int64_t num_samples() const = 0;
  virtual std::int64_t num_batches() const = 0;
  /// Positions the loader at `first_batch` of `epoch`.
  virtual void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0) = 0;
  /// The next batch of the epoch; false when the epoch is over.
  virtual bool next(Batch& out) = 0;
};

class SAQ_VISIBLE Dataset {
 public:
  static constexpr Kind kind = Kind::Dataset;
  using Interface = Dataset;
  virtual ~Dataset() = default;
  virtual DataInfo info() const = 0;
  virtual std::vector<std::string> splits() const = 0;
  /// Throws std::invalid_argument for an unknown split or range.
  virtual std::unique_ptr<Loader> loader(const LoaderSpec& spec) const = 0;
};

}  // namespace saq

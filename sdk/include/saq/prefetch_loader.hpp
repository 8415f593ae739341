#pragma once
/// A loader that decodes samples on worker threads ahead of the training step — what file-backed data sets
/// (ImageNet) use. Workers run plain C++ (decode, resample, memcpy), never ATen kernels, so they do not compete
/// with the step's intra-op threads for the cores.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <saq/dataset.hpp>
#include <saq/random.hpp>
#include <saq/tensor_loader.hpp>

namespace saq {

/// Where a prefetching loader gets its samples: one split with its transform. Called from several threads
/// at once: every method must be thread-safe.
class SAQ_VISIBLE SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual std::int64_t size() const = 0;
  /// One sample's shape {C, H, W}; every sample has it.
  virtual std::vector<std::int64_t> shape() const = 0;
  virtual std::int64_t label(std::int64_t index) const = 0;
  /// What error messages call sample `index` (its file).
  virtual std::string name(std::int64_t index) const = 0;
  /// Writes sample `index` as uint8 [C, H, W] to `out`. Random augmentation draws from `rng` only, which the
  /// loader seeds from (seed, epoch, index). Throws on unreadable data; the loader adds name(index).
  virtual void read(std::int64_t index, SplitMix& rng, std::uint8_t* out) const = 0;
};

/// Threads and memory of a prefetching loader.
struct PrefetchOptions {
  /// Worker threads; 0 = default_workers().
  std::int64_t workers = 0;
  /// Batches decoded ahead of the consumer (ready or in progress), at least `workers`; 0 = 2 x workers.
  /// Each holds B x C x H x W floats (77 MB for 128 ImageNet crops).
  std::int64_t prefetch = 0;
  /// A sample whose read() throws is left out of its batch (which comes out one shorter) instead of failing
  /// next(); `on_skip` hears "name: message" from the worker thread that met it.
  bool skip_bad = false;
  std::function<void(const std::string&)> on_skip;
};

/// All hardware threads, at least 1, at most 32. A worker sleeps while the queue is full, so when the workers
/// keep up with training they cost only the decode time itself; when they do not, decoding is the bottleneck
/// and every core should decode.
std::int64_t default_workers();

/// The seed of sample `index`'s augmentation in `epoch`: a function of these three values alone, so a batch is
/// the same whatever the thread count, the timing or the batch it lands in.
std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index);

/// Batches of `source` in the order of `spec` (shuffled per (seed, epoch) when spec.train, as
/// make_tensor_loader), each pixel p given as (p/255 − mean[c]) / std[c]. Batch k of epoch e is the same for
/// any `options`; next() waits only when batch k is not ready yet. A worker's exception is re-thrown by the
/// next() that reaches its batch, as std::runtime_error "name: message". Destroying the loader stops and joins
/// its workers.
std::unique_ptr<Loader> make_prefetch_loader(std::shared_ptr<const SampleSource> source, const LoaderSpec& spec,
                                             const Normalize& norm, const PrefetchOptions& options = {});

}  // namespace saq

#pragma once
/// A loader over images held in memory as uint8 — what Fashion-MNIST, CIFAR and the synthetic set use.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <saq/dataset.hpp>

namespace saq {

/// Images uint8 [N, C, H, W] and labels int64 [N].
struct ImageSet {
  at::Tensor images, labels;
};

/// Training augmentation: a random crop after zero padding by `pad` pixels, and a random horizontal flip.
struct Augment {
  std::int64_t pad = 0;
  bool flip = false;
};

/// Normalisation applied to pixel/255: (x − mean[c]) / std[c].
struct Normalize {
  std::vector<double> mean, std;
};

/// The shared in-memory loader. Shuffling and augmentation draw from (seed, epoch, position) only, so an
/// epoch's batches are identical however the run got there.
std::unique_ptr<Loader> make_tensor_loader(std::shared_ptr<const ImageSet> data, const LoaderSpec& spec,
                                           const Normalize& norm, const Augment& augment);

/// A data set's splits, read from disk on first use so that building the component (for `saqhost validate` or
/// `report`) needs no data. The first get() runs `load` once for all splits, under a lock; a load that throws
/// leaves nothing cached, and the next get() tries again (and throws again, with the same message).
class SAQ_VISIBLE LazySplits {
 public:
  using Splits = std::map<std::string, std::shared_ptr<const ImageSet>>;
  explicit LazySplits(std::function<Splits()> load) : load_(std::move(load)) {}
  /// The split's images; throws what `load` throws, or std::invalid_argument for a split `load` did not give.
  std::shared_ptr<const ImageSet> get(const std::string& split) const;

 private:
  std::function<Splits()> load_;
  mutable std::mutex mutex_;
  mutable std::unique_ptr<Splits> splits_;
};

}  // namespace saq

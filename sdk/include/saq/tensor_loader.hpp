#pragma once
/// A loader over images held in memory as uint8 — what Fashion-MNIST, CIFAR and the synthetic set use.
#include <cstdint>
#include <memory>
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

}  // namespace saq

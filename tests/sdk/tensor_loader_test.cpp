// The in-memory loader: batch counts, order, normalisation, resumable shuffles, augmentation, sub-ranges.
#include "unit.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include <ATen/ATen.h>

#include <saq/tensor_loader.hpp>

namespace saq {

namespace {

/// n images [1, 2, 2] whose pixels all equal their index, labelled with their index.
std::shared_ptr<const ImageSet> indexed_set(std::int64_t n) {
  auto set = std::make_shared<ImageSet>();
  set->labels = at::arange(n, at::kLong);
  set->images = set->labels.to(at::kByte).view({n, 1, 1, 1}).expand({n, 1, 2, 2}).contiguous();
  return set;
}

/// mean 0, std 1: a pixel p comes out as p/255.
const Normalize identity{{0.0}, {1.0}};

LoaderSpec spec_of(std::int64_t batch_size, bool train, bool drop_last = false, std::uint64_t seed = 7) {
  LoaderSpec s;
  s.batch_size = batch_size;
  s.train = train;
  s.drop_last = drop_last;
  s.seed = seed;
  return s;
}

/// The labels of every batch the loader gives from `first_batch` of `epoch` on, concatenated.
std::vector<std::int64_t> labels_of(Loader& loader, std::int64_t epoch, std::int64_t first_batch = 0) {
  loader.start_epoch(epoch, first_batch);
  std::vector<std::int64_t> out;
  Batch b;
  while (loader.next(b))
    for (std::int64_t i = 0; i < b.y.size(0); ++i) out.push_back(b.y[i].item<std::int64_t>());
  return out;
}

std::vector<std::int64_t> range(std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = begin; i < end; ++i) out.push_back(i);
  return out;
}

}  // namespace

TEST_CASE("num_batches rounds up, or down with drop_last") {
  auto data = indexed_set(10);
  // 10 samples in batches of 4: 4 + 4 + 2 → 3 batches; dropping the short one leaves 2.
  CHECK(make_tensor_loader(data, spec_of(4, false), identity, {})->num_batches() == 3);
  CHECK(make_tensor_loader(data, spec_of(4, false, true), identity, {})->num_batches() == 2);
  CHECK(make_tensor_loader(data, spec_of(5, false, true), identity, {})->num_batches() == 2);  // 10 / 5 exactly
  CHECK(make_tensor_loader(data, spec_of(4, false), identity, {})->num_samples() == 10);
}

TEST_CASE("drop_last leaves out the short last batch, and only that") {
  auto loader = make_tensor_loader(indexed_set(10), spec_of(4, true, true), identity, {});
  loader->start_epoch(0);
  Batch b;
  std::vector<std::int64_t> sizes;
  while (loader->next(b)) sizes.push_back(b.x.size(0));
  CHECK(sizes == std::vector<std::int64_t>{4, 4});
}

TEST_CASE("an evaluation loader gives every sample in order") {
  auto loader = make_tensor_loader(indexed_set(10), spec_of(4, false), identity, {});
  CHECK(labels_of(*loader, 0) == range(0, 10));
  CHECK(labels_of(*loader, 3) == range(0, 10));  // no shuffle in any epoch
}

TEST_CASE("a batch holds float images [B, C, H, W] normalised per channel") {
  auto set = std::make_shared<ImageSet>();
  set->images = at::zeros({1, 2, 2, 2}, at::kByte);
  set->images[0][0][1][0] = 51;
  set->images[0][1][1][0] = 51;
  set->labels = at::zeros({1}, at::kLong);
  auto loader = make_tensor_loader(set, spec_of(1, false), Normalize{{0.5, 0.0}, {0.25, 0.5}}, {});
  Batch b;
  REQUIRE(loader->next(b));
  CHECK((b.x.scalar_type() == at::kFloat));
  CHECK(b.x.sizes().vec() == std::vector<std::int64_t>{1, 2, 2, 2});
  CHECK((b.y.scalar_type() == at::kLong));
  // channel 0: (51/255 − 0.5) / 0.25 = (0.2 − 0.5) / 0.25 = −1.2;  a 0 pixel: (0 − 0.5) / 0.25 = −2
  CHECK(b.x[0][0][1][0].item<double>() == doctest::Approx(-1.2).epsilon(1e-6));
  CHECK(b.x[0][0][0][0].item<double>() == doctest::Approx(-2.0).epsilon(1e-6));
  // channel 1: (0.2 − 0) / 0.5 = 0.4
  CHECK(b.x[0][1][1][0].item<double>() == doctest::Approx(0.4).epsilon(1e-6));
  CHECK(b.x[0][1][0][0].item<double>() == 0.0);
}

TEST_CASE("a training epoch visits every sample exactly once, in a shuffled order") {
  auto loader = make_tensor_loader(indexed_set(50), spec_of(8, true), identity, {});
  for (std::int64_t epoch : {0, 1, 5}) {
    auto order = labels_of(*loader, epoch);
    CHECK(order != range(0, 50));
    std::sort(order.begin(), order.end());
    CHECK(order == range(0, 50));
  }
}

TEST_CASE("the training order is a function of (seed, epoch) alone") {
  auto data = indexed_set(50);
  auto a = make_tensor_loader(data, spec_of(8, true, false, 7), identity, {});
  auto b = make_tensor_loader(data, spec_of(8, true, false, 7), identity, {});
  auto other_seed = make_tensor_loader(data, spec_of(8, true, false, 8), identity, {});
  const auto a2 = labels_of(*a, 2);
  labels_of(*b, 0);  // b got to epoch 2 another way
  CHECK(labels_of(*b, 2) == a2);
  CHECK(labels_of(*a, 3) != a2);
  CHECK(labels_of(*other_seed, 2) != a2);
}

TEST_CASE("start_epoch(e, k) resumes at batch k of epoch e with the same data, augmentation included") {
  auto set = std::make_shared<ImageSet>();
  const std::int64_t n = 30;
  set->images = at::arange(n * 16, at::kLong).remainder(251).add(1).to(at::kByte).view({n, 1, 4, 4});
  set->labels = at::arange(n, at::kLong);
  Augment aug{1, true};
  auto full = make_tensor_loader(set, spec_of(4, true), identity, aug);
  auto resumed = make_tensor_loader(set, spec_of(4, true), identity, aug);

  full->start_epoch(3);
  std::vector<Batch> all;
  for (Batch b; full->next(b);) all.push_back(b);
  REQUIRE(all.size() == 8);  // ceil(30 / 4)

  resumed->start_epoch(3, 5);
  std::size_t k = 5;
  for (Batch b; resumed->next(b); ++k) {
    REQUIRE(k < all.size());
    CHECK(at::equal(b.y, all[k].y));
    CHECK(at::equal(b.x, all[k].x));
  }
  CHECK(k == all.size());

  resumed->start_epoch(3, 8);  // past the end: nothing left
  Batch b;
  CHECK_FALSE(resumed->next(b));
}

TEST_CASE("augmentation gives shifted, maybe mirrored copies with zero fill, in training only") {
  // One 3×3 image with pixels 1..9 (none 0, so the fill is visible), repeated 64 times.
  const std::int64_t n = 64;
  at::Tensor image = at::arange(1, 10, at::kLong).to(at::kByte).view({1, 1, 3, 3});
  auto set = std::make_shared<ImageSet>();
  set->images = image.expand({n, 1, 3, 3}).contiguous();
  set->labels = at::zeros({n}, at::kLong);

  // Every outcome, built independently: pad by 1 with zeros, crop a 3×3 window at offset (1+dy, 1+dx), then mirror.
  at::Tensor padded = at::constant_pad_nd(image.to(at::kFloat), {1, 1, 1, 1}, 0);
  std::vector<at::Tensor> plain, mirrored;
  for (std::int64_t dy = -1; dy <= 1; ++dy)
    for (std::int64_t dx = -1; dx <= 1; ++dx) {
      at::Tensor crop = padded.slice(2, 1 + dy, 4 + dy).slice(3, 1 + dx, 4 + dx);
      plain.push_back(crop);
      mirrored.push_back(crop.flip({3}));
    }

  auto loader = make_tensor_loader(set, spec_of(n, true), identity, Augment{1, true});
  Batch b;
  REQUIRE(loader->next(b));
  at::Tensor pixels = b.x.mul(255).round();
  int n_plain = 0, n_mirrored = 0, n_moved = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    at::Tensor x = pixels.slice(0, i, i + 1);
    bool is_plain = false, is_mirrored = false;
    for (const auto& c : plain) is_plain = is_plain || at::equal(x, c);
    for (const auto& c : mirrored) is_mirrored = is_mirrored || at::equal(x, c);
    CHECK((is_plain || is_mirrored));
    n_plain += is_plain;
    n_mirrored += is_mirrored && !is_plain;
    n_moved += !at::equal(x, plain[4]) && !at::equal(x, mirrored[4]);  // [4] is dy = dx = 0
  }
  // 64 draws from 18 outcomes: all-one-kind has odds 2^-64, so both kinds and some shifts appear.
  CHECK(n_plain > 0);
  CHECK(n_mirrored > 0);
  CHECK(n_moved > 0);

  auto eval = make_tensor_loader(set, spec_of(n, false), identity, Augment{1, true});
  REQUIRE(eval->next(b));
  CHECK(at::equal(b.x.mul(255).round(), image.to(at::kFloat).expand({n, 1, 3, 3})));
}

TEST_CASE("a sub-range [begin, end) gives only its samples") {
  auto data = indexed_set(10);
  LoaderSpec s = spec_of(3, false);
  s.begin = 3;
  s.end = 7;
  auto eval = make_tensor_loader(data, s, identity, {});
  CHECK(eval->num_samples() == 4);
  CHECK(eval->num_batches() == 2);  // ceil(4 / 3)
  CHECK(labels_of(*eval, 0) == range(3, 7));

  s.train = true;
  auto train = make_tensor_loader(data, s, identity, {});
  auto order = labels_of(*train, 1);
  std::sort(order.begin(), order.end());
  CHECK(order == range(3, 7));

  s.end = -1;  // to the end of the split
  CHECK(make_tensor_loader(data, s, identity, {})->num_samples() == 7);
}

TEST_CASE("a bad range, batch size or normalisation is refused") {
  auto data = indexed_set(10);
  auto with_range = [](std::int64_t begin, std::int64_t end) {
    LoaderSpec s = spec_of(2, false);
    s.begin = begin;
    s.end = end;
    return s;
  };
  CHECK_THROWS_WITH_AS(make_tensor_loader(data, with_range(-1, 5), identity, {}),
                       "split 'train' has 10 samples; the range [-1, 5) is not inside it", std::invalid_argument);
  CHECK_THROWS_AS(make_tensor_loader(data, with_range(5, 5), identity, {}), std::invalid_argument);
  CHECK_THROWS_AS(make_tensor_loader(data, with_range(0, 11), identity, {}), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_tensor_loader(data, spec_of(0, false), identity, {}), "batch_size must be > 0, got 0",
                       std::invalid_argument);
  CHECK_THROWS_AS(make_tensor_loader(data, spec_of(2, false), Normalize{{0.5, 0.5}, {1.0, 1.0}}, {}),
                  std::invalid_argument);  // 2 means for 1 channel

  auto floats = std::make_shared<ImageSet>(ImageSet{at::zeros({2, 1, 2, 2}), at::zeros({2}, at::kLong)});
  CHECK_THROWS_AS(make_tensor_loader(floats, spec_of(1, false), identity, {}), std::invalid_argument);
  auto short_labels =
      std::make_shared<ImageSet>(ImageSet{at::zeros({2, 1, 2, 2}, at::kByte), at::zeros({1}, at::kLong)});
  CHECK_THROWS_AS(make_tensor_loader(short_labels, spec_of(1, false), identity, {}), std::invalid_argument);

  auto loader = make_tensor_loader(data, spec_of(2, false), identity, {});
  CHECK_THROWS_WITH_AS(loader->start_epoch(0, -1), "start_epoch: first_batch must be >= 0, got -1",
                       std::invalid_argument);
}

}  // namespace saq

#include <saq/tensor_loader.hpp>

#include <saq/random.hpp>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include <ATen/ATen.h>

namespace saq {

namespace {

class TensorLoader final : public Loader {
 public:
  TensorLoader(std::shared_ptr<const ImageSet> data, const LoaderSpec& spec, const Normalize& norm,
               const Augment& augment)
      : data_(std::move(data)), spec_(spec), augment_(augment) {
    const std::int64_t total = data_->images.size(0);
    std::int64_t end = spec.end < 0 ? total : spec.end;
    if (spec.batch_size <= 0) throw std::invalid_argument("batch_size must be > 0, got " + std::to_string(spec.batch_size));
    if (spec.begin < 0 || spec.begin >= end || end > total)
      throw std::invalid_argument("split '" + spec.split + "' has " + std::to_string(total) + " samples; the range [" +
                                  std::to_string(spec.begin) + ", " + std::to_string(end) + ") is not inside it");
    begin_ = spec.begin;
    count_ = end - spec.begin;
    const std::int64_t channels = data_->images.size(1);
    if (static_cast<std::int64_t>(norm.mean.size()) != channels || norm.std.size() != norm.mean.size())
      throw std::invalid_argument("normalisation needs " + std::to_string(channels) + " means and stds");
    mean_ = at::tensor(std::vector<float>(norm.mean.begin(), norm.mean.end())).view({1, channels, 1, 1});
    inv_std_ = at::tensor(std::vector<float>(norm.std.begin(), norm.std.end())).reciprocal().view({1, channels, 1, 1});
    batches_ = sliced_batches(spec, count_);
    start_epoch(0, 0);
  }

  std::int64_t num_samples() const override { return count_; }
  std::int64_t num_batches() const override { return batches_; }

  void start_epoch(std::int64_t epoch, std::int64_t first_batch) override {
    if (first_batch < 0) throw std::invalid_argument("start_epoch: first_batch must be >= 0, got " + std::to_string(first_batch));
    epoch_ = epoch;
    order_.resize(count_);
    std::iota(order_.begin(), order_.end(), begin_);
    if (spec_.train) {  // Fisher–Yates, seeded by (seed, epoch)
      SplitMix rng(SplitMix::mix(spec_.seed, static_cast<std::uint64_t>(epoch)));
      for (std::int64_t i = count_ - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
    }
    next_batch_ = std::min(first_batch, batches_);
  }

  bool next(Batch& out) override {
    if (next_batch_ >= batches_) return false;
    const BatchSlice slice = batch_slice(spec_, count_, next_batch_++);
    at::Tensor idx = at::from_blob(order_.data() + slice.first, {slice.count}, at::kLong).clone();
    at::Tensor images = data_->images.index_select(0, idx).contiguous();
    // keyed on the position in the epoch's order: a rank's share is augmented as one process would augment it
    if (spec_.train && (augment_.pad > 0 || augment_.flip)) images = augmented(images, slice.first);
    out.x = images.to(at::kFloat).mul_(1.0 / 255).sub_(mean_).mul_(inv_std_);
    out.y = data_->labels.index_select(0, idx);
    return true;
  }

 private:
  /// Shift by (dy, dx) ∈ [−pad, pad]² with zero fill (= pad, then crop), then maybe mirror; per sample, with
  /// draws keyed on (seed, epoch, position in the epoch).
  at::Tensor augmented(const at::Tensor& in, std::int64_t first) const {
    const std::int64_t n = in.size(0), c = in.size(1), h = in.size(2), w = in.size(3);
    at::Tensor out = at::zeros_like(in);
    const std::uint8_t* src = in.data_ptr<std::uint8_t>();
    std::uint8_t* dst = out.data_ptr<std::uint8_t>();
    const std::int64_t p = augment_.pad;
    for (std::int64_t i = 0; i < n; ++i) {
      SplitMix rng(SplitMix::mix(SplitMix::mix(spec_.seed, static_cast<std::uint64_t>(epoch_)) + 1,
                                 static_cast<std::uint64_t>(first + i)));
      std::int64_t dy = p ? static_cast<std::int64_t>(rng.below(2 * p + 1)) - p : 0;
      std::int64_t dx = p ? static_cast<std::int64_t>(rng.below(2 * p + 1)) - p : 0;
      bool flip = augment_.flip && (rng.next() & 1);
      for (std::int64_t ch = 0; ch < c; ++ch) {
        const std::uint8_t* s = src + (i * c + ch) * h * w;
        std::uint8_t* d = dst + (i * c + ch) * h * w;
        for (std::int64_t y = 0; y < h; ++y) {
          std::int64_t sy = y + dy;
          if (sy < 0 || sy >= h) continue;
          for (std::int64_t x = 0; x < w; ++x) {
            std::int64_t sx = (flip ? w - 1 - x : x) + dx;
            if (sx >= 0 && sx < w) d[y * w + x] = s[sy * w + sx];
          }
        }
      }
    }
    return out;
  }

  std::shared_ptr<const ImageSet> data_;
  LoaderSpec spec_;
  Augment augment_;
  at::Tensor mean_, inv_std_;
  std::int64_t begin_ = 0, count_ = 0, batches_ = 0, next_batch_ = 0, epoch_ = 0;
  std::vector<std::int64_t> order_;
};

}  // namespace

std::unique_ptr<Loader> make_tensor_loader(std::shared_ptr<const ImageSet> data, const LoaderSpec& spec,
                                           const Normalize& norm, const Augment& augment) {
  if (!data || data->images.dim() != 4 || data->images.scalar_type() != at::kByte)
    throw std::invalid_argument("tensor loader: images must be uint8 [N, C, H, W]");
  if (data->labels.dim() != 1 || data->labels.size(0) != data->images.size(0))
    throw std::invalid_argument("tensor loader: need one label per image");
  return std::make_unique<TensorLoader>(std::move(data), spec, norm, augment);
}

std::shared_ptr<const ImageSet> LazySplits::get(const std::string& split) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!splits_) splits_ = std::make_unique<Splits>(load_());
  auto it = splits_->find(split);
  if (it == splits_->end()) throw std::invalid_argument("no split '" + split + "'");
  return it->second;
}

}  // namespace saq

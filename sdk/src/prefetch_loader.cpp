#include <saq/prefetch_loader.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>

#include <pthread.h>
#include <signal.h>

#include <ATen/ATen.h>

namespace saq {

std::int64_t default_workers() {
  return std::clamp<std::int64_t>(static_cast<std::int64_t>(std::thread::hardware_concurrency()), 1, 32);
}

std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index) {
  return SplitMix::mix(SplitMix::mix(seed, static_cast<std::uint64_t>(epoch)) + 1, static_cast<std::uint64_t>(index));
}

namespace {

/// One batch as a worker leaves it: the tensors, or the message of the sample that failed.
struct Slot {
  at::Tensor x, y;
  std::string error;
};

/// Workers claim whole batches, in order, at most `depth_` ahead of the consumer, and park finished ones in
/// `ready_` under their batch number; next() takes them out in order. Everything shared is guarded by `mu_`.
/// start_epoch bumps the generation `gen_`: a worker still busy with an older epoch's batch drops it.
class PrefetchLoader final : public Loader {
 public:
  PrefetchLoader(std::shared_ptr<const SampleSource> source, const LoaderSpec& spec, const Normalize& norm,
                 const PrefetchOptions& options)
      : source_(std::move(source)), spec_(spec), options_(options) {
    const std::int64_t total = source_->size();
    const std::int64_t end = spec.end < 0 ? total : spec.end;
    if (spec.batch_size <= 0)
      throw std::invalid_argument("batch_size must be > 0, got " + std::to_string(spec.batch_size));
    if (spec.begin < 0 || spec.begin >= end || end > total)
      throw std::invalid_argument("split '" + spec.split + "' has " + std::to_string(total) + " samples; the range [" +
                                  std::to_string(spec.begin) + ", " + std::to_string(end) + ") is not inside it");
    begin_ = spec.begin;
    count_ = end - spec.begin;
    shape_ = source_->shape();
    if (shape_.size() != 3) throw std::invalid_argument("prefetch loader: a sample must be [C, H, W]");
    sample_bytes_ = shape_[0] * shape_[1] * shape_[2];
    if (static_cast<std::int64_t>(norm.mean.size()) != shape_[0] || norm.std.size() != norm.mean.size())
      throw std::invalid_argument("normalisation needs " + std::to_string(shape_[0]) + " means and stds");
    lut_.resize(static_cast<std::size_t>(shape_[0]) * 256);
    for (std::int64_t c = 0; c < shape_[0]; ++c)
      for (int v = 0; v < 256; ++v)
        lut_[c * 256 + v] = static_cast<float>((v / 255.0 - norm.mean[c]) / norm.std[c]);
    workers_ = options.workers > 0 ? options.workers : default_workers();
    depth_ = std::max(options.prefetch > 0 ? options.prefetch : 2 * workers_, workers_);
    batches_ = sliced_batches(spec, count_);
  }

  ~PrefetchLoader() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      ++gen_;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  std::int64_t num_samples() const override { return count_; }
  std::int64_t num_batches() const override { return batches_; }

  void start_epoch(std::int64_t epoch, std::int64_t first_batch) override {
    if (first_batch < 0)
      throw std::invalid_argument("start_epoch: first_batch must be >= 0, got " + std::to_string(first_batch));
    auto order = std::make_shared<std::vector<std::int64_t>>(count_);
    std::iota(order->begin(), order->end(), begin_);
    if (spec_.train) {  // Fisher–Yates seeded by (seed, epoch), as the in-memory loader
      SplitMix rng(SplitMix::mix(spec_.seed, static_cast<std::uint64_t>(epoch)));
      for (std::int64_t i = count_ - 1; i > 0; --i) std::swap((*order)[i], (*order)[rng.below(i + 1)]);
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++gen_;
      ready_.clear();
      epoch_ = epoch;
      order_ = std::move(order);
      claim_ = out_ = std::min(first_batch, batches_);
      started_ = true;
      // Threads start with the first epoch: a loader built and never read costs none.
      while (static_cast<std::int64_t>(threads_.size()) < workers_) threads_.emplace_back([this] { work(); });
    }
    work_cv_.notify_all();
  }

  bool next(Batch& out) override {
    if (!started_) start_epoch(0, 0);
    for (;;) {
      Slot slot;
      {
        std::unique_lock<std::mutex> lk(mu_);
        if (out_ >= batches_) return false;
        ready_cv_.wait(lk, [&] { return ready_.count(out_) != 0; });
        auto it = ready_.find(out_);
        slot = std::move(it->second);
        ready_.erase(it);
        ++out_;
      }
      work_cv_.notify_one();
      if (!slot.error.empty()) throw std::runtime_error(slot.error);
      if (slot.y.size(0) == 0) continue;  // every sample of it skipped
      out.x = std::move(slot.x);
      out.y = std::move(slot.y);
      return true;
    }
  }

 private:
  void work() {
    // Ctrl-C and kill go to the training thread, whose handler decides; a worker never sees them (nor an
    // interrupted read on a network file system).
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&stop_signals, sig);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      work_cv_.wait(lk, [&] { return stop_ || (claim_ < batches_ && claim_ < out_ + depth_); });
      if (stop_) return;
      const std::int64_t k = claim_++;
      const std::uint64_t gen = gen_;
      const std::int64_t epoch = epoch_;
      std::shared_ptr<const std::vector<std::int64_t>> order = order_;
      lk.unlock();
      Slot slot;
      try {
        slot = build(k, *order, epoch, gen);
      } catch (const std::exception& e) {  // allocation, say: reported by the next() that reaches batch k
        slot = Slot{{}, {}, std::string("batch ") + std::to_string(k) + ": " + e.what()};
      }
      lk.lock();
      if (gen != gen_) continue;  // a newer start_epoch cleared the queue; this batch belongs to no one
      ready_[k] = std::move(slot);
      ready_cv_.notify_all();
    }
  }

  Slot build(std::int64_t k, const std::vector<std::int64_t>& order, std::int64_t epoch, std::uint64_t gen) {
    const BatchSlice share = batch_slice(spec_, count_, k);
    const std::int64_t first = share.first, n = share.count;
    Slot slot;
    slot.x = batch_buffer(n);
    slot.y = at::empty({n}, at::kLong);
    float* x = slot.x.data_ptr<float>();
    std::int64_t* y = slot.y.data_ptr<std::int64_t>();
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(sample_bytes_));
    const std::int64_t plane = shape_[1] * shape_[2];
    std::int64_t kept = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      if (gen_.load() != gen) return slot;  // stale: dropped by work()
      const std::int64_t index = order[first + i];
      SplitMix rng(sample_seed(spec_.seed, epoch, index));
      try {
        source_->read(index, rng, pixels.data());
        y[kept] = source_->label(index);
      } catch (const std::exception& e) {
        std::string message = source_->name(index) + ": " + e.what();
        if (!options_.skip_bad) return Slot{{}, {}, message};
        if (options_.on_skip) options_.on_skip(message);
        continue;
      }
      float* dst = x + kept * sample_bytes_;
      for (std::int64_t c = 0; c < shape_[0]; ++c) {
        const float* lut = lut_.data() + c * 256;
        const std::uint8_t* src = pixels.data() + c * plane;
        float* d = dst + c * plane;
        for (std::int64_t p = 0; p < plane; ++p) d[p] = lut[src[p]];
      }
      ++kept;
    }
    if (kept < n) {
      slot.x = slot.x.narrow(0, 0, kept);
      slot.y = slot.y.narrow(0, 0, kept);
    }
    return slot;
  }

  /// A float [n, C, H, W] tensor, recycled once nothing but the pool holds it: a fresh one would be mapped and
  /// zeroed by the kernel page by page (77 MB for a batch of 128 ImageNet crops).
  at::Tensor batch_buffer(std::int64_t n) {
    std::lock_guard<std::mutex> lk(mu_);
    for (const at::Tensor& t : pool_)
      if (t.size(0) == n && t.use_count() == 1 && t.storage().use_count() == 1) return t;
    at::Tensor t = at::empty({n, shape_[0], shape_[1], shape_[2]}, at::kFloat);
    if (static_cast<std::int64_t>(pool_.size()) < depth_ + 2) pool_.push_back(t);
    return t;
  }

  std::shared_ptr<const SampleSource> source_;
  LoaderSpec spec_;
  PrefetchOptions options_;
  std::vector<std::int64_t> shape_;
  std::int64_t sample_bytes_ = 0, begin_ = 0, count_ = 0, batches_ = 0, workers_ = 1, depth_ = 2;
  std::vector<float> lut_;  // (p/255 − mean[c]) / std[c] for every byte p of channel c

  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> gen_{0};
  std::atomic<bool> started_{false};
  bool stop_ = false;
  std::int64_t epoch_ = 0, claim_ = 0, out_ = 0;
  std::shared_ptr<const std::vector<std::int64_t>> order_;
  std::map<std::int64_t, Slot> ready_;
  std::vector<at::Tensor> pool_;
};

}  // namespace

std::unique_ptr<Loader> make_prefetch_loader(std::shared_ptr<const SampleSource> source, const LoaderSpec& spec,
                                             const Normalize& norm, const PrefetchOptions& options) {
  if (!source) throw std::invalid_argument("prefetch loader: no sample source");
  return std::make_unique<PrefetchLoader>(std::move(source), spec, norm, options);
}

}  // namespace saq

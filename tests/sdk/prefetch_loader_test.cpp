// The prefetching loader: order, normalisation, determinism whatever the worker count and timing, resuming,
// the prefetch bound, worker errors, skipped samples, shutdown while workers are busy or blocked, signals.
#include "unit.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>

#include <ATen/ATen.h>

#include <saq/prefetch_loader.hpp>

namespace saq {

namespace {

using namespace std::chrono_literals;

/// n samples of shape [1, 2, 2], labelled with their index and named "img<i>.jpg". Pixel k of sample i is
/// (i + k) % 256, plus a draw below 50 from the rng when `augment`. Reads of `bad` throw; each read sleeps
/// 0..400 µs chosen by the index, so that workers finish out of order.
class CountingSource final : public SampleSource {
 public:
  CountingSource(std::int64_t n, bool augment, std::int64_t bad = -1, std::chrono::microseconds delay = 0us)
      : n_(n), augment_(augment), bad_(bad), delay_(delay) {}
  std::int64_t size() const override { return n_; }
  std::vector<std::int64_t> shape() const override { return {1, 2, 2}; }
  std::int64_t label(std::int64_t index) const override { return index; }
  std::string name(std::int64_t index) const override { return "img" + std::to_string(index) + ".jpg"; }
  void read(std::int64_t index, SplitMix& rng, std::uint8_t* out) const override {
    ++reads;
    std::this_thread::sleep_for(delay_ + std::chrono::microseconds((index * 37) % 5 * 100));
    if (index == bad_) throw std::runtime_error("bad Huffman code");
    const std::uint64_t draw = augment_ ? rng.below(50) : 0;
    for (int k = 0; k < 4; ++k) out[k] = static_cast<std::uint8_t>((index + k + draw) % 256);
  }
  mutable std::atomic<std::int64_t> reads{0};

 private:
  std::int64_t n_;
  bool augment_;
  std::int64_t bad_;
  std::chrono::microseconds delay_;
};

const Normalize identity{{0.0}, {1.0}};

LoaderSpec spec_of(std::int64_t batch_size, bool train, std::uint64_t seed = 11) {
  LoaderSpec s;
  s.batch_size = batch_size;
  s.train = train;
  s.seed = seed;
  return s;
}

PrefetchOptions threads(std::int64_t workers, std::int64_t prefetch = 0) {
  PrefetchOptions o;
  o.workers = workers;
  o.prefetch = prefetch;
  return o;
}

std::vector<Batch> epoch_of(Loader& loader, std::int64_t epoch, std::int64_t first_batch = 0) {
  loader.start_epoch(epoch, first_batch);
  std::vector<Batch> out;
  for (Batch b; loader.next(b);) out.push_back(b);
  return out;
}

std::vector<std::int64_t> labels(const std::vector<Batch>& batches) {
  std::vector<std::int64_t> out;
  for (const auto& b : batches)
    for (std::int64_t i = 0; i < b.y.size(0); ++i) out.push_back(b.y[i].item<std::int64_t>());
  return out;
}

bool same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (!at::equal(a[k].x, b[k].x) || !at::equal(a[k].y, b[k].y)) return false;
  return true;
}

/// Waits up to 5 s for `reads` to reach `target`, then 50 ms more so that a read past it would show.
std::int64_t settled_reads(const CountingSource& s, std::int64_t target) {
  for (int i = 0; i < 500 && s.reads.load() < target; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(50ms);
  return s.reads.load();
}

}  // namespace

TEST_CASE("prefetch: an evaluation loader gives every sample in order, normalised, in batches of B") {
  auto source = std::make_shared<CountingSource>(10, false);
  auto loader = make_prefetch_loader(source, spec_of(4, false), Normalize{{0.5}, {0.25}}, threads(3));
  CHECK(loader->num_batches() == 3);
  CHECK(loader->num_samples() == 10);
  auto batches = epoch_of(*loader, 0);
  REQUIRE(batches.size() == 3);
  CHECK(batches[2].x.sizes().vec() == std::vector<std::int64_t>{2, 1, 2, 2});  // 4 + 4 + 2
  CHECK((batches[0].x.scalar_type() == at::kFloat));
  CHECK(labels(batches) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  // sample 5, pixel 3: byte 8, (8/255 − 0.5) / 0.25 = −1.874509...
  CHECK(batches[1].x[1][0][1][1].item<double>() == doctest::Approx((8 / 255.0 - 0.5) / 0.25).epsilon(1e-6));
}

TEST_CASE("prefetch: drop_last and a sub-range of the split") {
  auto source = std::make_shared<CountingSource>(10, false);
  LoaderSpec spec = spec_of(4, false);
  spec.drop_last = true;
  CHECK(labels(epoch_of(*make_prefetch_loader(source, spec, identity, threads(2)), 0)) ==
        std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  spec.drop_last = false;
  spec.begin = 3;
  spec.end = 8;
  CHECK(labels(epoch_of(*make_prefetch_loader(source, spec, identity, threads(2)), 0)) ==
        std::vector<std::int64_t>{3, 4, 5, 6, 7});
  spec.end = 11;
  CHECK_THROWS_AS(make_prefetch_loader(source, spec, identity), std::invalid_argument);
}

TEST_CASE("prefetch: batch k of epoch e is the same with 1, 3 or 4 workers and any prefetch depth") {
  auto source = std::make_shared<CountingSource>(45, true);
  auto one = make_prefetch_loader(source, spec_of(4, true), identity, threads(1, 1));
  auto three = make_prefetch_loader(source, spec_of(4, true), identity, threads(3));
  auto four = make_prefetch_loader(source, spec_of(4, true), identity, threads(4, 9));
  for (std::int64_t epoch : {0, 2}) {
    auto reference = epoch_of(*one, epoch);
    REQUIRE(reference.size() == 12);  // ceil(45 / 4)
    CHECK(same(epoch_of(*three, epoch), reference));
    CHECK(same(epoch_of(*four, epoch), reference));
    auto order = labels(reference);
    std::sort(order.begin(), order.end());
    std::vector<std::int64_t> all(45);
    for (std::int64_t i = 0; i < 45; ++i) all[i] = i;
    CHECK(order == all);  // every sample once
  }
  CHECK(labels(epoch_of(*one, 0)) != labels(epoch_of(*one, 1)));  // reshuffled per epoch
}

TEST_CASE("prefetch: a sample's augmentation depends on (seed, epoch, index), not on where it lands") {
  auto source = std::make_shared<CountingSource>(30, true);
  auto shuffled = make_prefetch_loader(source, spec_of(7, true), identity, threads(2));
  auto in_order = make_prefetch_loader(source, spec_of(5, false), identity, threads(3));
  auto pixels_by_index = [](const std::vector<Batch>& batches) {
    std::vector<at::Tensor> out(30);
    for (const auto& b : batches)
      for (std::int64_t i = 0; i < b.y.size(0); ++i) out[b.y[i].item<std::int64_t>()] = b.x[i];
    return out;
  };
  auto a = pixels_by_index(epoch_of(*shuffled, 4));
  auto b = pixels_by_index(epoch_of(*in_order, 4));
  auto other_epoch = pixels_by_index(epoch_of(*in_order, 5));
  std::int64_t differ = 0;
  for (int i = 0; i < 30; ++i) {
    CHECK(at::equal(a[i], b[i]));
    differ += !at::equal(a[i], other_epoch[i]);
  }
  CHECK(differ > 20);  // a draw below 50 repeats with probability 1/50 per sample
}

TEST_CASE("prefetch: start_epoch(e, k) resumes at batch k, also while a previous epoch is in flight") {
  auto source = std::make_shared<CountingSource>(40, true);
  auto full = make_prefetch_loader(source, spec_of(3, true), identity, threads(2));
  auto reference = epoch_of(*full, 3);
  REQUIRE(reference.size() == 14);
  auto resumed = make_prefetch_loader(source, spec_of(3, true), identity, threads(3));
  Batch b;
  resumed->start_epoch(1);
  REQUIRE(resumed->next(b));  // epoch 1 is being decoded when we jump
  auto tail = epoch_of(*resumed, 3, 9);
  CHECK(same(tail, std::vector<Batch>(reference.begin() + 9, reference.end())));
  CHECK(epoch_of(*resumed, 3, 14).empty());
  CHECK(epoch_of(*resumed, 3, 99).empty());
  CHECK_THROWS_AS(resumed->start_epoch(3, -1), std::invalid_argument);
}

TEST_CASE("prefetch: next() without start_epoch reads epoch 0") {
  auto source = std::make_shared<CountingSource>(20, true);
  auto a = make_prefetch_loader(source, spec_of(6, true), identity, threads(2));
  auto b = make_prefetch_loader(source, spec_of(6, true), identity, threads(2));
  std::vector<Batch> implicit;
  for (Batch x; a->next(x);) implicit.push_back(x);
  CHECK(same(implicit, epoch_of(*b, 0)));
}

TEST_CASE("prefetch: workers stop at the prefetch depth while nothing is consumed") {
  auto source = std::make_shared<CountingSource>(100, false);
  auto loader = make_prefetch_loader(source, spec_of(4, false), identity, threads(2, 3));
  CHECK(source->reads.load() == 0);  // nothing before the first epoch starts
  loader->start_epoch(0);
  CHECK(settled_reads(*source, 12) == 12);  // 3 batches of 4
  Batch b;
  REQUIRE(loader->next(b));
  CHECK(settled_reads(*source, 16) == 16);  // one batch taken, one more decoded
}

TEST_CASE("prefetch: a worker's exception surfaces in the next() that reaches its batch, naming the sample") {
  auto source = std::make_shared<CountingSource>(12, false, /*bad=*/5);
  auto loader = make_prefetch_loader(source, spec_of(4, false), identity, threads(3));
  loader->start_epoch(0);
  Batch b;
  REQUIRE(loader->next(b));  // samples 0..3
  std::string message;
  try {
    loader->next(b);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  CHECK(message == "img5.jpg: bad Huffman code");
}

TEST_CASE("prefetch: skip_bad leaves the sample out of its batch and reports it") {
  auto source = std::make_shared<CountingSource>(12, false, /*bad=*/5);
  PrefetchOptions o = threads(2);
  o.skip_bad = true;
  std::vector<std::string> skipped;
  o.on_skip = [&](const std::string& m) { skipped.push_back(m); };
  auto batches = epoch_of(*make_prefetch_loader(source, spec_of(4, false), identity, o), 0);
  CHECK(labels(batches) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11});
  REQUIRE(batches.size() == 3);
  CHECK(batches[1].x.size(0) == 3);
  CHECK(skipped == std::vector<std::string>{"img5.jpg: bad Huffman code"});
}

TEST_CASE("prefetch: destroying a loader mid-epoch stops its workers promptly") {
  auto source = std::make_shared<CountingSource>(1000, false, -1, /*delay=*/5ms);
  {  // workers busy inside long batches: they stop between samples, not at the end of 100-sample batches
    auto loader = make_prefetch_loader(source, spec_of(100, false), identity, threads(3));
    loader->start_epoch(0);
    std::this_thread::sleep_for(20ms);
    auto t0 = std::chrono::steady_clock::now();
    loader.reset();
    CHECK(std::chrono::steady_clock::now() - t0 < 300ms);
  }
  const std::int64_t after = source->reads.load();
  std::this_thread::sleep_for(30ms);
  CHECK(source->reads.load() == after);  // every worker joined
  auto fast = std::make_shared<CountingSource>(100, false);
  {  // workers asleep on a full queue
    auto loader = make_prefetch_loader(fast, spec_of(2, false), identity, threads(2, 2));
    loader->start_epoch(0);
    settled_reads(*fast, 4);
  }
  CHECK(fast->reads.load() == 4);
}

/// Reads whether its thread blocks SIGINT, then gives sample 0's pixels.
class SignalMaskSource final : public SampleSource {
 public:
  std::int64_t size() const override { return 8; }
  std::vector<std::int64_t> shape() const override { return {1, 1, 1}; }
  std::int64_t label(std::int64_t) const override { return 0; }
  std::string name(std::int64_t index) const override { return std::to_string(index); }
  void read(std::int64_t, SplitMix&, std::uint8_t* out) const override {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    for (int sig : {SIGINT, SIGTERM}) (sigismember(&mask, sig) ? blocked : open) += 1;
    out[0] = 0;
  }
  mutable std::atomic<int> blocked{0}, open{0};
};

TEST_CASE("prefetch: workers block SIGINT and SIGTERM, leaving them to the training thread's handler") {
  auto source = std::make_shared<SignalMaskSource>();
  epoch_of(*make_prefetch_loader(source, spec_of(2, false), identity, threads(3)), 0);
  CHECK(source->blocked.load() == 16);  // 8 reads, 2 signals each
  CHECK(source->open.load() == 0);
}

TEST_CASE("prefetch: the default worker count is every hardware thread, within [1, 32]") {
  const auto hw = static_cast<std::int64_t>(std::thread::hardware_concurrency());
  CHECK(default_workers() == std::clamp<std::int64_t>(hw, 1, 32));
}

}  // namespace saq

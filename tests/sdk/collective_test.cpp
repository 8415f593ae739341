// The SDK's gradient average over ranks, on two threads joined by an in-memory collective: defined gradients
// averaged as DDP does (sum / world size), a gradient one rank lacks counted as zero there, one no rank has
// left undefined; every dtype averaged; broadcast copies the root's values. Expected values by hand.
#include "unit.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <ATen/ATen.h>

#include <saq/collective.hpp>

namespace saq {

namespace {

/// W threads as W ranks: each operation waits for every rank's tensor, then gives each the combined result.
class ThreadCollective final : public Collective {
 public:
  struct Shared {
    int world;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<at::Tensor> slots;
    int arrived = 0;
    std::uint64_t generation = 0;
    explicit Shared(int w) : world(w), slots(static_cast<size_t>(w)) {}
    /// Waits for all ranks; the last to arrive runs `combine` on the slots.
    template <class F>
    void gather(int rank, const at::Tensor& t, F&& combine) {
      std::unique_lock<std::mutex> lk(mu);
      slots[static_cast<size_t>(rank)] = t.clone();
      const std::uint64_t gen = generation;
      if (++arrived == world) {
        combine(slots);
        arrived = 0;
        ++generation;
        cv.notify_all();
      } else {
        cv.wait(lk, [&] { return generation != gen; });
      }
    }
  };
  ThreadCollective(Shared& s, int rank) : s_(s), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return s_.world; }
  void all_reduce_sum(at::Tensor& flat) override {
    at::Tensor result;
    s_.gather(rank_, flat, [&](std::vector<at::Tensor>& slots) {
      at::Tensor sum = at::zeros_like(slots[0]);
      for (auto& t : slots) sum += t;
      for (auto& t : slots) t = sum;
    });
    std::lock_guard<std::mutex> lk(s_.mu);
    flat.copy_(s_.slots[static_cast<size_t>(rank_)]);
  }
  void broadcast(at::Tensor& flat, int root) override {
    s_.gather(rank_, flat, [&](std::vector<at::Tensor>& slots) {
      for (auto& t : slots) t = slots[static_cast<size_t>(root)];
    });
    std::lock_guard<std::mutex> lk(s_.mu);
    flat.copy_(s_.slots[static_cast<size_t>(rank_)]);
  }
  void barrier() override { s_.gather(rank_, at::zeros({1}), [](std::vector<at::Tensor>&) {}); }

 private:
  Shared& s_;
  int rank_;
};

at::Tensor param(const std::vector<double>& v, at::ScalarType dtype = at::kFloat) {
  return at::tensor(v, at::TensorOptions().dtype(dtype)).requires_grad_(true);
}

void set_grad(at::Tensor& p, const std::vector<double>& v) {
  p.mutable_grad() = at::tensor(v, at::TensorOptions().dtype(p.scalar_type()));
}

bool equals(const at::Tensor& t, const std::vector<double>& v) {
  return at::allclose(t.to(at::kDouble), at::tensor(v, at::kDouble), 0, 1e-12);
}

}  // namespace

TEST_CASE("average_gradients: the mean over ranks; a gradient missing on one rank counts as zero there") {
  ThreadCollective::Shared shared(2);
  std::vector<std::vector<at::Tensor>> params(2);
  auto rank_main = [&](int r) {
    ThreadCollective c(shared, r);
    at::Tensor a = param({0, 0}), b = param({0}), none = param({0, 0, 0}), d = param({0, 0}, at::kDouble);
    set_grad(a, r == 0 ? std::vector<double>{1, 2} : std::vector<double>{3, 6});
    if (r == 0) set_grad(b, {4});  // rank 1 never reached b
    set_grad(d, r == 0 ? std::vector<double>{0.5, -1} : std::vector<double>{1.5, 3});
    average_gradients(c, {a, b, none, d});
    params[static_cast<size_t>(r)] = {a, b, none, d};
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  for (int r = 0; r < 2; ++r) {
    const auto& p = params[static_cast<size_t>(r)];
    CHECK(equals(p[0].grad(), {2, 4}));
    CHECK(equals(p[1].grad(), {2}));
    CHECK_FALSE(p[2].grad().defined());
    CHECK(equals(p[3].grad(), {1, 1}));
    CHECK((p[3].grad().scalar_type() == at::kDouble));
  }
}

TEST_CASE("broadcast_tensors: every rank ends with the root's values, of every dtype") {
  ThreadCollective::Shared shared(3);
  std::vector<std::vector<at::Tensor>> out(3);
  auto rank_main = [&](int r) {
    ThreadCollective c(shared, r);
    at::Tensor f = at::full({2}, static_cast<double>(r + 1)), i = at::full({1}, r + 10, at::kLong);
    broadcast_tensors(c, {f, i}, 1);
    out[static_cast<size_t>(r)] = {f, i};
  };
  std::vector<std::thread> ts;
  for (int r = 0; r < 3; ++r) ts.emplace_back(rank_main, r);
  for (auto& t : ts) t.join();
  for (const auto& o : out) {
    CHECK(equals(o[0], {2, 2}));
    CHECK(o[1].item<std::int64_t>() == 11);
  }
}

TEST_CASE("average_tensors: the mean of floating tensors in place") {
  ThreadCollective::Shared shared(2);
  std::vector<at::Tensor> out(2);
  auto rank_main = [&](int r) {
    ThreadCollective c(shared, r);
    at::Tensor t = at::tensor({r == 0 ? 1.0 : 5.0, 2.0 * r});
    average_tensors(c, {t});
    out[static_cast<size_t>(r)] = t;
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  CHECK(equals(out[0], {3, 1}));
  CHECK(equals(out[1], {3, 1}));
}

}  // namespace saq

#include "c10d_collective.hpp"

#include <cstdlib>
#include <mutex>
#include <vector>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "comm_stats.hpp"
#include "errors.hpp"
#include "process_group.hpp"

namespace saq::host {

namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

c10::intrusive_ptr<c10d::Store> connect_store(const WorldSpec& w, bool server, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(w.master_port);
  o.isServer = server;
  o.numWorkers = static_cast<std::size_t>(w.world_size);
  o.waitWorkers = false;
  o.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store;
  const std::string where = fmt::format("{}:{}", w.master_addr, w.master_port);
  try {
    store = c10::make_intrusive<c10d::TCPStore>(w.master_addr, o);
  } catch (const std::exception& e) {
    const std::string what = first_line(e.what());
    if (server)
      throw InputError(fmt::format("rank 0 cannot host the rendezvous store on {} (MASTER_ADDR:MASTER_PORT): {}; "
                                   "is the port in use?", where, what));
    throw InputError(fmt::format("rank {} cannot reach the rendezvous store at {} (MASTER_ADDR:MASTER_PORT) within "
                                 "{} s: {}", w.rank, where, timeout.count() / 1000, what));
  }
  if (!w.store_prefix.empty()) store = c10::make_intrusive<c10d::PrefixStore>(w.store_prefix, store);
  return c10::make_intrusive<c10d::PrefixStore>("saq", store);
}

std::string as_string(const std::vector<std::uint8_t>& v) { return std::string(v.begin(), v.end()); }

std::mutex g_stats_mutex;
CommStats g_stats;

}  // namespace

CommStats comm_stats() {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  return g_stats;
}

void count_collective(double seconds, std::uint64_t bytes) {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  g_stats.seconds += seconds;
  g_stats.bytes += bytes;
  ++g_stats.calls;
}

C10dCollective::C10dCollective(const WorldSpec& world, std::chrono::milliseconds timeout, c10::Device device)
    : world_(world), timeout_(timeout), device_(device) {
  const bool host_store = !world.agent_store && world.rank == 0;
  store_ = connect_store(world, host_store, timeout);
  // Ranks that disagree on the world would wait for each other until the timeout: compare first. A rank that
  // finds rank 0's world another leaves its reason in the store, and rank 0, waiting for every rank's size, stops
  // with it at once instead of after the timeout.
  // (A rank sets its own size only once it agrees, so rank 0 never takes a refusing rank for one that joined.)
  const std::string size = std::to_string(world.world_size);
  if (world.rank == 0) {
    set("world_size/0", size);
    wait_for_ranks();
  } else if (const std::string rank0 = get("world_size/0"); rank0 != size) {
    const std::string why = fmt::format("rank {} has a world of {} processes, rank 0 of {} (WORLD_SIZE differs "
                                        "between ranks)", world.rank, world.world_size, rank0);
    set("refused/" + std::to_string(world.rank), why);
    throw InputError(why);
  } else {
    set("world_size/" + std::to_string(world.rank), size);
  }
  beat_store_ = connect_store(world, false, timeout);
  beat_ = std::thread([this] { heartbeat(); });
  try {
    group_ = make_process_group(store_, world, timeout, device, backend_);
  } catch (const std::exception& e) {
    const std::string why = failure("connecting the process group", e.what());
    // the destructor does not run for a constructor that throws: a joinable std::thread left behind would call
    // std::terminate (a rank that never came aborted rank 0 instead of naming it)
    stop_ = true;
    beat_.join();
    throw RunError(why);
  }
}

void C10dCollective::wait_for_ranks() {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  std::vector<bool> joined(static_cast<size_t>(world_.world_size), false);  // rank 0's entry unused
  for (;;) {
    std::string missing;
    for (int r = 1; r < world_.world_size; ++r) {
      if (joined[static_cast<size_t>(r)]) continue;
      if (store_->check({"refused/" + std::to_string(r)})) throw InputError(get("refused/" + std::to_string(r)));
      joined[static_cast<size_t>(r)] = store_->check({"world_size/" + std::to_string(r)});
      if (!joined[static_cast<size_t>(r)]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    }
    if (missing.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw RunError(fmt::format("rank 0: rank {} did not join the world of {} within {} s (run.dist_timeout_s) at "
                                 "{}:{} (MASTER_ADDR:MASTER_PORT)", missing, world_.world_size,
                                 timeout_.count() / 1000, world_.master_addr, world_.master_port));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

C10dCollective::~C10dCollective() {
  stop_ = true;
  if (beat_.joinable()) beat_.join();
}

void C10dCollective::heartbeat() {
  const std::string key = "heartbeat/" + std::to_string(world_.rank);
  try {
    while (!stop_) {
      beat_store_->add(key, 1);
      for (int i = 0; i < 5 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } catch (const std::exception&) {
    // the store is gone (its host died): the next collective fails and says so
  }
}

std::string C10dCollective::failure(const std::string& op, const std::string& what) const {
  std::string who;
  try {
    std::vector<std::int64_t> before(static_cast<size_t>(world_.world_size));
    for (int r = 0; r < world_.world_size; ++r) before[r] = beat_store_->add("heartbeat/" + std::to_string(r), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    for (int r = 0; r < world_.world_size; ++r)
      if (r != world_.rank && beat_store_->add("heartbeat/" + std::to_string(r), 0) == before[r])
        who += (who.empty() ? "" : ", ") + std::to_string(r);
    who = who.empty() ? "every rank still answers the store" : "rank " + who + " stopped answering (dead or stuck)";
  } catch (const std::exception&) {
    who = world_.agent_store ? "the launcher's store is gone"
                             : "the store rank 0 hosts is gone: rank 0 died or stopped";
  }
  return fmt::format("rank {}: {} failed ({}): {}", world_.rank, op, first_line(what), who);
}

template <class F>
void C10dCollective::run(const std::string& op, F&& f) {
  try {
    auto work = f();
    work->wait(timeout_);
  } catch (const RunError&) {
    throw;
  } catch (const std::exception& e) {
    throw RunError(failure(op, e.what()));
  }
}

at::Tensor C10dCollective::staged(const at::Tensor& flat) const {
  if (backend_ == "nccl" && !flat.is_cuda()) return flat.to(device_);
  if (backend_ == "gloo" && !flat.is_cpu()) return flat.cpu();
  return flat;
}

void C10dCollective::all_reduce_sum(at::Tensor& flat) {
  at::Tensor on = staged(flat);
  std::vector<at::Tensor> t{on};
  const auto t0 = std::chrono::steady_clock::now();
  run("all-reduce", [&] { return group_->allreduce(t); });
  count_collective(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                   static_cast<std::uint64_t>(flat.numel()) * flat.element_size());
  if (!on.is_same(flat)) flat.copy_(on);
}

void C10dCollective::broadcast(at::Tensor& flat, int root) {
  at::Tensor on = staged(flat);
  std::vector<at::Tensor> t{on};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  const auto t0 = std::chrono::steady_clock::now();
  run("broadcast", [&] { return group_->broadcast(t, o); });
  count_collective(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                   static_cast<std::uint64_t>(flat.numel()) * flat.element_size());
  if (!on.is_same(flat)) flat.copy_(on);
}

void C10dCollective::barrier() {
  run("barrier", [&] { return group_->barrier(); });
}

void C10dCollective::set(const std::string& key, const std::string& value) {
  store_->set(key, std::vector<std::uint8_t>(value.begin(), value.end()));
}

std::string C10dCollective::get(const std::string& key) {
  try {
    store_->wait({key}, timeout_);
    return as_string(store_->get(key));
  } catch (const std::exception& e) {
    throw RunError(failure("waiting for '" + key + "' in the store", e.what()));
  }
}

}  // namespace saq::host

#pragma once
/// The collectives of a data-parallel run on LibTorch's c10d: a TCPStore for the rendezvous (hosted by rank 0,
/// or torchrun's agent store) and a process group for the tensors (NCCL for a CUDA run when the build has it,
/// Gloo otherwise; a tensor on the other side is staged through a copy). A collective that fails or times out
/// names the ranks that stopped answering, from the heartbeats every rank keeps in the store.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <saq/collective.hpp>

#include "world.hpp"

namespace saq::host {

class C10dCollective final : public Collective {
 public:
  /// Connects to the world (blocks until every rank is there, at most `timeout`). Throws InputError for a port
  /// in use, an unreachable store or ranks that disagree on the world size; RunError for a timeout (rank 0 names
  /// the ranks that did not come).
  C10dCollective(const WorldSpec& world, std::chrono::milliseconds timeout, c10::Device device);
  ~C10dCollective() override;
  int rank() const override { return world_.rank; }
  int world_size() const override { return world_.world_size; }
  void all_reduce_sum(at::Tensor& flat) override;
  void broadcast(at::Tensor& flat, int root) override;
  void barrier() override;

  const WorldSpec& world() const { return world_; }
  const std::string& backend() const { return backend_; }
  /// Small values between ranks, through the store; get() waits for the key at most the timeout.
  void set(const std::string& key, const std::string& value);
  std::string get(const std::string& key);
  /// Why a collective failed: `what` and the ranks whose heartbeat stopped.
  std::string failure(const std::string& op, const std::string& what) const;

 private:
  void heartbeat();
  /// Rank 0: until every rank has set its world size; throws a rank's refusal as soon as it is there, and the
  /// ranks still missing at the timeout.
  void wait_for_ranks();
  template <class F>
  void run(const std::string& op, F&& f);
  /// `flat` itself, or a copy on the device the backend needs (copied back by the caller).
  at::Tensor staged(const at::Tensor& flat) const;

  WorldSpec world_;
  std::chrono::milliseconds timeout_;
  c10::Device device_;
  std::string backend_;
  c10::intrusive_ptr<c10d::Store> store_, beat_store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  std::atomic<bool> stop_{false};
  std::thread beat_;
};

}  // namespace saq::host

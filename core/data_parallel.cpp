#include "data_parallel.hpp"

#include <csignal>
#include <cstdint>
#include <cstring>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "errors.hpp"
#include "interrupt.hpp"

namespace saq::host {

std::unique_ptr<C10dCollective> join_world(std::chrono::milliseconds timeout, c10::Device device) {
  const auto world = world_from_env();
  if (!world) return nullptr;
  return std::make_unique<C10dCollective>(*world, timeout, device);
}

std::string pipeline_fingerprint(const Pipeline& pipeline, const Registry& registry) {
  std::string text = pipeline.resolved_toml();
  for (const Component* c : registry.all())
    text += fmt::format("\n{} {} {} {}", kind_name(c->desc.kind), c->desc.name, c->plugin->name, c->plugin->version);
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a, 64 bits
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

void check_same_pipeline(C10dCollective& world, const std::string& fingerprint) {
  world.set("pipeline/" + std::to_string(world.rank()), fingerprint);
  const std::string reference = world.get("pipeline/0");
  for (int r = 1; r < world.world_size(); ++r) {
    const std::string theirs = r == world.rank() ? fingerprint : world.get("pipeline/" + std::to_string(r));
    if (theirs != reference)
      throw InputError(fmt::format("rank {} runs a different pipeline or plugin set than rank 0 (fingerprint {} vs "
                                   "{}): every rank must load the same pipeline, --set values and plugins",
                                   r, theirs, reference));
  }
}

void broadcast_model(Collective& world, torch::nn::Module& model) {
  std::vector<at::Tensor> tensors;
  for (const auto& p : model.parameters()) tensors.push_back(p);
  for (const auto& b : model.buffers()) tensors.push_back(b);
  broadcast_tensors(world, tensors, 0);
}

void broadcast_buffers(Collective& world, torch::nn::Module& model) {
  std::vector<at::Tensor> buffers = model.buffers();
  if (!buffers.empty()) broadcast_tensors(world, buffers, 0);
}

void sum_over_ranks(Collective& world, std::vector<double>& values) {
  at::Tensor t = at::from_blob(values.data(), {static_cast<std::int64_t>(values.size())}, at::kDouble).clone();
  world.all_reduce_sum(t);
  // one copy back, not one host sync per value (this runs every training step)
  std::memcpy(values.data(), t.contiguous().data_ptr<double>(), values.size() * sizeof(double));
}

int agree_on_interrupt(Collective* world) {
  if (!world) return pending_interrupt();
  std::vector<double> flags{pending_interrupt() == SIGINT ? 1.0 : 0.0, pending_interrupt() == SIGTERM ? 1.0 : 0.0};
  sum_over_ranks(*world, flags);
  const int sig = flags[0] > 0 ? SIGINT : flags[1] > 0 ? SIGTERM : 0;
  if (sig) note_interrupt(sig);
  return sig;
}

}  // namespace saq::host

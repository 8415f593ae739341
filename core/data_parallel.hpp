#pragma once
/// What the host does for a data-parallel run, around the optimizer's own gradient average: joining the world,
/// agreeing on the pipeline, giving every rank rank 0's model, keeping BatchNorm statistics identical, and
/// summing the numbers each rank measured so that every rank logs and decides the same.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "c10d_collective.hpp"
#include "pipeline.hpp"
#include "registry.hpp"

namespace saq::host {

/// Joins the world the environment describes (world_from_env), or returns null for a single process.
std::unique_ptr<C10dCollective> join_world(std::chrono::milliseconds timeout, c10::Device device);

/// A fingerprint of the resolved pipeline and the components (kind, name, plugin and version) of the registry.
std::string pipeline_fingerprint(const Pipeline& pipeline, const Registry& registry);

/// Throws InputError on every rank when a rank's fingerprint differs from rank 0's, naming the first such rank.
void check_same_pipeline(C10dCollective& world, const std::string& fingerprint);

/// Rank 0's parameters and buffers (quantizer state included) to every rank.
void broadcast_model(Collective& world, torch::nn::Module& model);
/// Rank 0's buffers (BatchNorm running statistics) to every rank, as DDP's broadcast_buffers.
void broadcast_buffers(Collective& world, torch::nn::Module& model);

/// Sums `values` over the ranks in place (one all-reduce of doubles).
void sum_over_ranks(Collective& world, std::vector<double>& values);

/// The signal any rank received (SIGINT before SIGTERM), made pending on every rank; 0 when none.
int agree_on_interrupt(Collective* world);

}  // namespace saq::host

#pragma once
/// The c10d process group of a data-parallel run: ProcessGroupNCCL for CUDA tensors when this build has it (a
/// CUDA LibTorch with NCCL headers: SAQ_WITH_NCCL), ProcessGroupGloo otherwise.
#include <chrono>
#include <string>

#include <c10/core/Device.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "world.hpp"

namespace saq::host {

/// Connects rank `world.rank` through `store` (blocks until every rank is there). `backend` is set to "nccl" or
/// "gloo". Throws what c10d throws.
c10::intrusive_ptr<c10d::ProcessGroup> make_process_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                          const WorldSpec& world, std::chrono::milliseconds timeout,
                                                          c10::Device device, std::string& backend);

/// Whether this build can use NCCL.
bool nccl_available();

}  // namespace saq::host

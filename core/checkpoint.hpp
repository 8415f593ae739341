#pragma once
/// Model weights on disk: checkpoints/<stem>.pt, a torch.save file (`torch.load(path, weights_only=True)` opens
/// it) holding {"format", "kind", "state_dict"}; read_state_dict reads it as any state_dict file.
#include <filesystem>

#include <torch/nn/module.h>

#include <saq/state.hpp>

namespace saq::host {

/// The version of the files saqhost writes for itself (checkpoints, resume checkpoint).
constexpr std::int64_t kCheckpointFormat = 2;

/// Writes every parameter and buffer of `model` to `path` (temporary file, fsync, rename).
void save_weights(const torch::nn::Module& model, const std::filesystem::path& path);
/// Writes `state_dict` (names → tensors) as a weights checkpoint to `path`, as save_weights does.
void save_weights(const StateDict& state_dict, const std::filesystem::path& path);

/// `state`'s tensors by name; std::runtime_error naming an entry that is not a tensor.
std::vector<std::pair<std::string, at::Tensor>> tensors_of(const StateDict& state);

}  // namespace saq::host

#pragma once
/// PyTorch's `torch.save` files (the zip container of PyTorch ≥ 1.6), read with the restricted unpickler and
/// written so that `torch.load(path, weights_only=True)` reads them. Every file saqhost keeps (checkpoints, the
/// resume checkpoint, a search's state) is one; LibTorch's TorchScript archive reader is never used.
#include <string>
#include <utility>
#include <vector>

#include <saq/pickle.hpp>
#include <saq/state.hpp>

namespace saq {

/// Tensors by name, in file order.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// The object pickled in `path` (`<archive>/data.pkl`), its tensors rebuilt from the storages beside it (CPU).
/// Accepts OrderedDicts, tensors and parameters, plain data and whatever `extra` allows; refuses every other
/// global. Before anything is allocated the zip directory's declared sizes are checked against the file. The
/// legacy (pre-1.6, non-zip) format and TorchScript archives (saqhost's checkpoints before this format) are
/// refused with a message saying how to convert them. Throws std::runtime_error naming the file.
pickle::ValuePtr read_torch_file(const std::string& path, const pickle::Globals& extra = {});

/// Whether `path` is a zip container holding a TorchScript archive (LibTorch's torch::save, saqhost's
/// checkpoints before they became torch.save files). Only the zip directory is read.
SAQ_VISIBLE bool is_torchscript_archive(const std::string& path);

/// The state_dict in `path`: a dict of tensors at the top, or under "state_dict" or "model" (what training
/// scripts wrap it in). Entries that are not tensors are an error naming them.
NamedTensors read_state_dict(const std::string& path);

/// Writes `tensors` as a dict of tensors that `torch.load` reads (and read_state_dict reads back).
void write_state_dict(const std::string& path, const NamedTensors& tensors);

/// The dict in `path` as a StateDict: str keys; values tensors, ints, floats, bools, strs and dicts (nested at
/// most 16 deep). A 0-d float64 tensor reads as a float too (StateDict::real), which is how floats are written.
/// Anything else (a list, None, a non-str key) is an error naming its key.
SAQ_VISIBLE StateDict read_state(const std::string& path);

/// Writes `state` to `path` (not atomically); a float becomes a 0-d float64 tensor (PyTorch 1.13's
/// weights_only reader has no float opcode). std::runtime_error naming the file when the write fails.
SAQ_VISIBLE void write_state(const std::string& path, const StateDict& state);
/// The same through `path`.tmp, fsync and rename: a reader sees the old file or the new one, never part of one.
SAQ_VISIBLE void write_state_atomically(const std::string& path, const StateDict& state);
/// The bytes write_state writes.
SAQ_VISIBLE std::string torch_file_bytes(const StateDict& state);

}  // namespace saq

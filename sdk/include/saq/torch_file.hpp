#pragma once
/// PyTorch's `torch.save` files (the zip container of PyTorch ≥ 1.6), read with the restricted unpickler and
/// written so that `torch.load` reads them.
#include <string>
#include <utility>
#include <vector>

#include <saq/pickle.hpp>

namespace saq {

/// Tensors by name, in file order.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// The object pickled in `path` (`<archive>/data.pkl`), its tensors rebuilt from the storages beside it (CPU).
/// Accepts OrderedDicts, tensors and parameters, plain data and whatever `extra` allows; refuses every other
/// global. The legacy (pre-1.6, non-zip) format is refused with a message saying how to convert it.
/// Throws std::runtime_error naming the file.
pickle::ValuePtr read_torch_file(const std::string& path, const pickle::Globals& extra = {});

/// The state_dict in `path`: a dict of tensors at the top, or under "state_dict" or "model" (what training
/// scripts wrap it in). Entries that are not tensors are an error naming them.
NamedTensors read_state_dict(const std::string& path);

/// Writes `tensors` as a dict of tensors that `torch.load` reads (and read_state_dict reads back).
void write_state_dict(const std::string& path, const NamedTensors& tensors);

}  // namespace saq

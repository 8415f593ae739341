#pragma once
/// Model weights as PyTorch state_dicts: `.pth` files written by `torch.save` (a model zoo's, or ours) loaded by
/// name, and the model written so that Python's `torch.load` reads it.
#include <filesystem>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include <saq/torch_file.hpp>

namespace saq::host {

/// Every parameter and buffer of `model` under PyTorch's names ("layer1.0.conv1.weight", "bn.running_mean").
NamedTensors model_state(const torch::nn::Module& model);

/// Writes model_state(model) to `path` (temporary file, fsync, rename) as a dict `torch.load` reads.
void save_state_dict(const torch::nn::Module& model, const std::filesystem::path& path);

/// What loading a state_dict did.
struct LoadReport {
  std::vector<std::string> loaded;      ///< matched by name and shape (copied, unless a strict load failed)
  std::vector<std::string> missing;     ///< the model's, absent from the file (not loaded)
  std::vector<std::string> unexpected;  ///< the file's, absent from the model (ignored)
  std::vector<std::string> misshaped;   ///< "name: file [a, b], model [c, d]", or another dtype (not loaded)
  std::vector<std::string> kept;        ///< quantizer state absent from the file: keeps its value
  bool stripped_module_prefix = false;  ///< the file's keys carried DataParallel's "module."
  bool complete() const { return missing.empty() && unexpected.empty() && misshaped.empty(); }
  /// One line: counts, then each list ("missing (2): a, b; ...").
  std::string describe() const;
};

/// Copies `tensors` into `model` by name. A "module." prefix on every key (DataParallel) is dropped.
/// Quantizer state ("*_quantizer.*") absent from the file keeps its value and quantizer state the model lacks is
/// ignored (an FP32 file for a quantized model, and back). Anything else missing, unexpected or of another
/// shape throws std::runtime_error "<source>: ..." with every list, unless `partial`: then what matches is
/// loaded and the rest is left as it was and reported.
LoadReport load_state_dict(torch::nn::Module& model, const NamedTensors& tensors, const std::string& source,
                           bool partial);

}  // namespace saq::host

#pragma once
/// What tools/check_onnx.sh compares ONNX Runtime with: saqhost's own quantized eval (the fake-quant forward the
/// run measured, not the export's stand-ins) of the exported model on test samples, in raw little-endian files:
///   input.f32 [N, C, H, W], labels.i64 [N], logits.f32 [N, K]: the first N test samples (eval order);
///   codes/<layer>.i16 [M, ...]: each quantized input's integer codes for the first M = min(N, 64) samples;
///   model.check.onnx: the exported graph with those codes as extra outputs ("<layer>.input_codes");
///   reference.json: the shapes, files and saqhost's top-1 on the N samples.
#include <filesystem>

#include "export.hpp"
#include "session.hpp"

namespace saq::host {

/// Runs the first test batch (eval_batch_size samples) through the model and checks that every activation
/// quantizer returns what its declared grid gives (the export's Clip → QuantizeLinear → DequantizeLinear
/// computes that grid, not the quantizer): an InputError naming the layer where more than 0.1% differ.
void check_activation_grids(Session& s, const ExportSummary& exported);

/// `samples` = 0: the whole test split (the grids checked as above on all of them). Throws InputError for an
/// unreadable data set.
void write_reference(Session& s, const ExportSummary& exported, const std::filesystem::path& dir,
                     std::int64_t samples);

}  // namespace saq::host

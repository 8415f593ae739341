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

/// `samples` = 0: the whole test split. Throws InputError for an unreadable data set.
void write_reference(Session& s, const ExportSummary& exported, const std::filesystem::path& dir,
                     std::int64_t samples);

}  // namespace saq::host

#pragma once
/// `saqhost export` and the pipeline's export stage: a trained model as an ONNX graph (opset 13, QDQ with integer
/// weights) and its sidecar model.quant.json (per layer: bits, scales, zero points, code ranges, BOPs).
#include <filesystem>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include <saq/dataset.hpp>
#include <saq/model.hpp>

#include "layer_export.hpp"
#include "registry.hpp"

namespace saq::host {

struct Session;

struct ExportOptions {
  std::filesystem::path output;  ///< the .onnx file; the sidecar is <stem>.quant.json beside it
  ExportProfile profile = ExportProfile::OnnxRuntime;
  bool allow_float = false;      ///< export what the profile cannot hold exactly as float (with a warning)
  bool fold_batch_norm = true;
  std::string source;            ///< what is exported, for the graph's metadata ("runs/quickstart final.pt")
  std::string quantizer;         ///< the pipeline's quantizer, or "" without one
};

struct ExportSummary {
  std::filesystem::path onnx, sidecar;
  std::size_t integer_weights = 0, quantized_inputs = 0, float_layers = 0, folded_batch_norms = 0;
  std::vector<LayerExport> layers;  ///< as exported (folded scales included)
  onnx::Model model;                ///< what onnx holds
  std::string sidecar_text;         ///< what sidecar holds
};

/// The export of `model` as it is now (quantizers attached, bits set), written nowhere yet. Whatever the profile
/// cannot hold exactly is an InputError listing every such layer, unless allow_float.
ExportSummary prepare_export(Model& model, const DataInfo& info, const ExportOptions& options, spdlog::logger& log);
/// Writes the graph and its sidecar (each atomically).
void write_export(const ExportSummary& summary, const ExportOptions& options, spdlog::logger& log);

/// `saqhost export RUN_DIR`: rebuilds the run's model from its config.resolved.toml (and a search's result.toml),
/// loads checkpoints/<checkpoint>.pt ("final" or "stageN") at that stage's bits, checks the activation grids on a
/// test batch and exports it; by default to RUN_DIR/export/model.onnx. Bad input (no run, no such checkpoint, a checkpoint that does not fit) is InputError.
/// A pipeline's export stage: the model as the previous stages left it, to <run dir>/<output> (rank 0 only),
/// its activation grids checked on a test batch first (check_activation_grids).
void export_stage(Session& s, const Params& stage);

/// With `reference_samples` ≥ 0 (0: the whole test split) it also writes, for tools/check_onnx.sh, saqhost's own
/// eval of the same model on that many test samples (export_reference.hpp) into <stem>.reference/.
ExportSummary export_run(const std::filesystem::path& run_dir, const std::string& checkpoint, ExportOptions options,
                         const Registry& registry, std::shared_ptr<spdlog::logger> log,
                         std::int64_t reference_samples = -1);

}  // namespace saq::host

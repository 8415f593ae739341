#pragma once
/// `saqhost analyze RUN_DIR...`: how flat each run's trained model is — sharpness at several ρ (one-step and by
/// gradient ascent; per batch and over the subset; on the quantized and on the latent weights), the Hessian's
/// largest eigenvalue and trace (full budget), loss slices along a filter-normalised random direction and the
/// SAM direction with the weights that change quantization level, and a 2-D surface (full budget) — written as
/// analysis.json, an index.html with inline SVG plots, and each plot as an .svg.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "curvature.hpp"
#include "landscape.hpp"
#include "registry.hpp"
#include "sharpness.hpp"

namespace saq::host {

struct AnalyzeOptions {
  std::vector<std::filesystem::path> runs;
  std::string checkpoint = "final";
  std::filesystem::path output;       ///< default: analysis/ in the first run's directory
  std::string budget = "fast";        ///< fast: slices and sharpness; full: more samples, surfaces and curvature
  std::vector<double> rhos = {0.05, 0.1, 0.2};
  std::uint64_t seed = 0;             ///< the subset and the random directions
};

/// What was measured of one run.
struct RunAnalysis {
  std::string name, model, quantizer, checkpoint;
  std::int64_t train_samples = 0, test_samples = 0;
  double train_loss = 0, test_loss = 0;
  std::vector<Sharpness> sharpness;
  bool curvature = false;
  EigenEstimate eigenvalue;
  TraceEstimate trace;
  std::vector<Slice> slices;
  /// The latent weights as a full-precision model (every layer at 32 bits), where the run is quantized: its
  /// sharpness (m = subset) and its slice along the same random direction.
  bool has_fp32 = false;
  Sharpness fp32_sharpness;
  Slice fp32_slice;
  bool has_surface = false;
  Surface surface;
};

struct Analysis {
  AnalyzeOptions options;
  int ascent_steps = 0, eigen_iterations = 0, trace_samples = 0;
  std::vector<RunAnalysis> runs;
};

/// Measures every run; InputError for bad input (no run, no checkpoint, ρ ≤ 0, runs of different models).
Analysis analyze_runs(const AnalyzeOptions& options, const Registry& registry, std::shared_ptr<spdlog::logger> log);

struct Session;
/// A pipeline's analyze stage: the model as the stages before it left it, into <run dir>/<output> (rank 0 only).
void analyze_stage(Session& s, const Params& stage, std::int64_t index);

/// Writes analysis.json, index.html and the .svg files into options.output; returns the page's path.
std::filesystem::path write_analysis(const Analysis& analysis);

}  // namespace saq::host

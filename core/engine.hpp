#pragma once
/// Runs a validated pipeline: builds the components, runs the stages in order, writes the run directory.
#include <filesystem>
#include <memory>

#include <spdlog/logger.h>

#include "pipeline.hpp"
#include "registry.hpp"

namespace saq::host {

/// Returns the run directory. Setup failures (a data file, a factory) are InputError; failures while
/// training are RunError; a signal is Interrupted, after the resume checkpoint is saved. With `resume_dir`,
/// continues that run from its checkpoints/resume.pt instead of starting a new one.
std::filesystem::path run_pipeline(const Pipeline& pipeline, const Registry& registry,
                                   std::shared_ptr<spdlog::logger> log,
                                   const std::filesystem::path& resume_dir = {});

/// Builds the pipeline's dataset, model and quantizer (no data read) as a run would: what only they can check —
/// a quantizer refusing a layer's bits, a model's parameters — fails here as InputError.
void check_components(const Pipeline& pipeline, const Registry& registry, std::shared_ptr<spdlog::logger> log);

/// The BOPs and footprint report (Markdown) of the pipeline's model with its quantized stages' bits, without
/// training and without a run directory.
std::string report_pipeline(const Pipeline& pipeline, const Registry& registry, std::shared_ptr<spdlog::logger> log);

}  // namespace saq::host

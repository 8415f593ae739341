#pragma once
/// A finished (or stopped) run's model as one of its checkpoints holds it, rebuilt from the run directory alone:
/// what `saqhost export` and `saqhost analyze` start from.
#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "pipeline.hpp"
#include "registry.hpp"
#include "session.hpp"

namespace saq::host {

struct LoadedRun {
  std::filesystem::path dir, checkpoint;  ///< RUN_DIR, RUN_DIR/checkpoints/<name>.pt
  std::string checkpoint_name;            ///< "final", "stage1"
  std::unique_ptr<Pipeline> pipeline;     ///< from RUN_DIR/config.resolved.toml
  std::unique_ptr<Session> session;       ///< dataset, model (weights loaded, bits set), quantizer; no run directory
  bool quantized = false;                 ///< the checkpoint's stage ran quantized
};

/// Rebuilds RUN_DIR's model (and a search's result.toml bits, for stages after it), loads
/// checkpoints/<checkpoint>.pt ("final" or "stageN") and sets that stage's bits. Bad input — no run directory, no
/// such checkpoint (the ones there are listed), a checkpoint that does not fit — is an InputError starting with
/// `command` ("export: …").
std::unique_ptr<LoadedRun> load_run(const std::filesystem::path& run_dir, const std::string& checkpoint,
                                    const Registry& registry, std::shared_ptr<spdlog::logger> log,
                                    const std::string& command);

}  // namespace saq::host

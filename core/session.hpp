#pragma once
/// What the stages of one run share.
#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include <saq/registrar.hpp>

#include "pipeline.hpp"
#include "quantize.hpp"
#include "registry.hpp"
#include "run_dir.hpp"

namespace saq::host {

/// Plugin-facing logger over spdlog.
class SpdLog final : public Log {
 public:
  explicit SpdLog(spdlog::logger& l) : log_(l) {}
  void write(LogLevel level, const std::string& m) const override;

 private:
  spdlog::logger& log_;
};

/// Builds nested components (SAM's `base` optimizer) from the registry.
class HostBuilder final : public Builder {
 public:
  explicit HostBuilder(const Registry& r) : registry_(r) {}
  std::shared_ptr<Optimizer> optimizer(const Params& params, const Context& ctx) const override;

 private:
  const Registry& registry_;
};

struct Evaluation {
  std::string split;
  double loss = 0, top1 = 0, top5 = 0;  ///< top-k in percent
  std::int64_t samples = 0;
  double ms_per_batch = 0;
};

struct Session {
  const Pipeline& pipeline;
  const Registry& registry;
  spdlog::logger& log;
  SpdLog plugin_log;
  HostBuilder builder;
  RunDir* dir;  ///< null for a report, which writes nothing
  c10::Device device;
  std::shared_ptr<Dataset> data{};
  DataInfo info{};
  std::shared_ptr<Model> model{};
  std::optional<Evaluation> last_test{};
  std::int64_t epochs_trained = 0;
  std::shared_ptr<Quantizer> quantizer{};  ///< null when the pipeline has no [quantizer]
  std::vector<LayerBits> bits{};           ///< resolved per-layer bits of quantized stages

  Context context() const;
};

/// Loads the stage's `init` checkpoint, if any, and sets the model's bits for the stage (quantized or not).
void prepare_stage(Session& s, const Params& stage, std::int64_t index);

/// Evaluates the model on `split` (at most `limit_batches` batches when > 0) and appends it to metrics.jsonl
/// with the learning rate in force (NaN outside training).
Evaluation evaluate(Session& s, const std::string& split, std::int64_t limit_batches, std::int64_t stage,
                    std::int64_t epoch, double lr);
/// Runs one train stage; returns when its epochs are done.
void train(Session& s, const Params& stage, std::int64_t index);
/// Saves the model's state to checkpoints/<stem>.pt (LibTorch archive) and <stem>.pth (a state_dict that
/// Python's torch.load reads), each atomically.
void save_checkpoint(const Session& s, const std::string& stem);

}  // namespace saq::host

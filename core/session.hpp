#pragma once
/// What the stages of one run share.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include <saq/registrar.hpp>

#include "c10d_collective.hpp"
#include "pipeline.hpp"
#include "quantize.hpp"
#include "registry.hpp"
#include "resume.hpp"
#include "run_dir.hpp"
#include "tfevents.hpp"

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
  const ResumeFile* resume = nullptr;      ///< the checkpoint this run resumes from, if it does
  std::unique_ptr<TfEventsWriter> events{};  ///< TensorBoard (run.tensorboard); null when off or in a report
  std::int64_t steps_here = 0;             ///< training steps taken by this process
  std::int64_t consecutive_skipped = 0;    ///< non-finite steps skipped in a row
  double seconds_before = 0;               ///< wall time of the run before it was resumed
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  C10dCollective* world = nullptr;  ///< the ranks of a data-parallel run; null in a single process
  int agreed_interrupt = 0;         ///< data parallel: the signal the ranks agreed on at the last step

  /// Rank 0 (or the only process): the one that writes the run directory.
  bool writes() const { return !world || world->rank() == 0; }
  int world_size() const { return world ? world->world_size() : 1; }
  /// Training batch of this process: data.batch_size, or data.global_batch_size / world size. Throws
  /// std::invalid_argument naming the key when both are given or the global one does not divide.
  std::int64_t batch_size() const;
  /// The signal to stop at: in a data-parallel run the one every rank agreed on, else the pending one.
  int interrupt() const;
  /// "saqhost resume DIR" (with --nproc N for a run started by saqhost's launcher).
  std::string resume_command() const;

  Context context() const;
  /// Seconds the run has taken, across resumes.
  double seconds() const;
  /// The resume point for `stage` at (`epoch`, `step`), the rest filled from the session.
  ResumePoint point(std::int64_t stage, std::int64_t epoch, std::int64_t step, bool in_stage,
                    const EpochTotals& totals = {}) const;
};

/// Dataset, model and quantizer of the pipeline, with the bits resolved (no data read). Quantizers are attached by
/// the first quantized stage, so that checkpoints of full-precision stages hold no quantizer state.
void build_components(Session& s);

/// Loads the stage's `init` checkpoint, if any (not when `resumed`: the weights came from the resume checkpoint),
/// and sets the model's bits for the stage (quantized or not).
void prepare_stage(Session& s, const Params& stage, std::int64_t index, bool resumed = false);

/// A data set's errors (a missing folder, an unreadable file) are bad input, exit status 2, whether they come
/// from building a loader or from one of its batches.
std::unique_ptr<Loader> open_loader(const Session& s, const LoaderSpec& spec);
bool next_batch(Loader& loader, Batch& batch);

/// Evaluates the model on `split` (at most `limit_batches` batches when > 0) and appends it to metrics.jsonl
/// with the learning rate in force (NaN outside training).
Evaluation evaluate(Session& s, const std::string& split, std::int64_t limit_batches, std::int64_t stage,
                    std::int64_t epoch, double lr);
/// Runs one train stage; returns when its epochs are done. Writes the resume checkpoint every
/// run.checkpoint_every steps and at every epoch end; throws Interrupted after a signal, once that is saved.
void train(Session& s, const Params& stage, std::int64_t index);
/// Writes checkpoints/resume.pt for `point`; `optimizer` is null at a stage boundary.
void save_resume_point(const Session& s, const ResumePoint& point, const Optimizer* optimizer);
/// Saves the model's state to checkpoints/<stem>.pt (a saqhost checkpoint) and <stem>.pth (a plain state_dict),
/// both torch.save files, each atomically.
void save_checkpoint(const Session& s, const std::string& stem);
/// report.md's lead: the run's quantizer and bit keys, and its test top-1 once it has one.
std::string report_lead(const Session& s);

}  // namespace saq::host

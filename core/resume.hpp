#pragma once
/// The resume checkpoint (checkpoints/resume.pt): everything a killed or interrupted run needs to go on and end
/// bit-identical to an uninterrupted one — model, optimizer state, position, the epoch's running totals, the
/// torch RNG, and how much of metrics.jsonl and the event file belonged to the run at that point.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>

#include <saq/optimizer.hpp>
#include <saq/state.hpp>
#include <torch/nn/module.h>

namespace saq::host {

/// Sums over the steps of the epoch so far (the epoch's "train" metrics line is built from them).
struct EpochTotals {
  double loss_sum = 0, ms_sum = 0, sharpness_sum = 0;
  double rho = std::numeric_limits<double>::quiet_NaN();
  std::int64_t sharpness_steps = 0, top1 = 0, top5 = 0, seen = 0, skipped = 0;
};

struct TestResult {
  double loss = 0, top1 = 0, top5 = 0;
  std::int64_t samples = 0;
};

/// Where the run stands: the next step to take is `step` of `epoch` of `stage`. `in_stage` is false at a
/// stage boundary (the stage has not begun: no optimizer state, its `init` still to load).
struct ResumePoint {
  std::int64_t stage = 0, epoch = 0, step = 0;
  bool in_stage = false;
  std::int64_t epochs_trained = 0;
  bool quantizers_attached = false;
  EpochTotals totals;
  std::optional<TestResult> last_test;
  std::uint64_t metrics_bytes = 0, events_bytes = 0;
  std::int64_t consecutive_skipped = 0;
  double seconds = 0;  ///< wall time of the run before this point
  std::int64_t world_size = 1;  ///< processes of the run that wrote it (a resume must use as many)
};

/// Writes the resume checkpoint atomically; `optimizer` is null at a stage boundary.
void save_resume(const std::filesystem::path& path, const ResumePoint& point, const torch::nn::Module& model,
                 const Optimizer* optimizer);

/// A resume checkpoint read back, applied in the order the run rebuilds itself.
class ResumeFile {
 public:
  /// Reads the file (saq's restricted reader: nothing in it can allocate beyond the file's size or run code);
  /// std::runtime_error naming it when it is not a resume checkpoint of this version.
  explicit ResumeFile(const std::filesystem::path& path);
  ~ResumeFile();
  const ResumePoint& point() const { return point_; }
  /// Model tensors (quantizer state included, when the point has quantizers attached) and the torch RNG.
  void restore_model(torch::nn::Module& model) const;
  void restore_optimizer(Optimizer& optimizer) const;

 private:
  std::filesystem::path path_;
  std::unique_ptr<StateDict> state_;
  ResumePoint point_;
};

}  // namespace saq::host

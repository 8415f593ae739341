#pragma once
/// Where a run's numbers go: metrics.jsonl (one JSON object per line), TensorBoard event files
/// (tensorboard/, scalars tagged "stage<N>/<split>/<name>") and, on a terminal, a progress bar per epoch.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "progress.hpp"
#include "session.hpp"

namespace saq::host {

using Scalars = std::vector<std::pair<std::string, double>>;

/// Appends {stage, epoch, step, split, …values} to metrics.jsonl and the same values to TensorBoard at `step`.
void record(Session& s, std::int64_t stage, std::int64_t epoch, std::int64_t step, const std::string& split,
            const Scalars& values);

/// The epoch's "train" line (means over its steps) and its log line.
void record_epoch(Session& s, std::int64_t stage, std::int64_t epoch, std::int64_t epochs, std::int64_t steps,
                  const EpochTotals& totals, double lr);

/// Every clip value / step size of the quantizers (per layer, the mean when per channel), to TensorBoard.
void record_quantizer_state(Session& s, std::int64_t stage, std::int64_t step);

/// The epoch's progress bar when stderr is a terminal and info logging is on; null otherwise (the periodic
/// log lines serve instead).
std::unique_ptr<ProgressDisplay> progress_bar(const Session& s, std::int64_t stage, std::int64_t epoch,
                                              std::int64_t epochs, std::int64_t steps);

/// Opens tensorboard/ for a new run, or reopens its event file cut back to `bytes` when resuming.
void open_events(Session& s, bool resuming, std::uint64_t bytes);

}  // namespace saq::host

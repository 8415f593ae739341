#pragma once
/// The `search` stage: runs a search plugin over the model and makes its bits the session's.
#include <cstdint>

#include <saq/params.hpp>

#include "session.hpp"

namespace saq::host {

/// Runs the stage's search plugin and writes search/result.toml (one [[quantizer.rule]] per searched layer, by
/// exact name) and report.md, then applies the result to the session's bits, so later quantized stages run at
/// them. Throws RunError when the search finds no configuration inside its budget.
void search(Session& s, const Params& stage, std::int64_t index);

/// Re-applies a finished search stage's search/result.toml to the session (a run resumed after it).
void reapply_search(Session& s);

/// The result file of the run's search stage.
std::filesystem::path search_result_file(const Session& s);

}  // namespace saq::host

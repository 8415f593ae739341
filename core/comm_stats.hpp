#pragma once
/// Time and bytes this process spent in collectives (all-reduce and broadcast), for the data-parallel log
/// line and tools/bench_data_parallel.sh.
#include <cstdint>

namespace saq::host {

struct CommStats {
  double seconds = 0;
  std::uint64_t bytes = 0, calls = 0;
};

/// Totals since the process started.
CommStats comm_stats();
/// Adds one collective of `bytes` that took `seconds`.
void count_collective(double seconds, std::uint64_t bytes);

}  // namespace saq::host

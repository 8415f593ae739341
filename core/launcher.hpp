#pragma once
/// `saqhost run P.toml --nproc N`: starts N worker processes of this saqhost on 127.0.0.1, as torchrun would
/// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and watches them as their parent:
/// SIGINT/SIGTERM go to every worker; a worker that fails or dies stops the others at once.
#include <string>
#include <vector>

#include <spdlog/logger.h>

namespace saq::host {

/// Runs `args` (saqhost's arguments without --nproc) as `nproc` workers; returns the exit status of the first
/// worker that failed (128 + signal for one killed by a signal), or 0 when every worker succeeded.
int launch_local(int nproc, const std::vector<std::string>& args, spdlog::logger& log);

/// `argv` without the --nproc option and its value (`--nproc N` or `--nproc=N`).
std::vector<std::string> without_nproc(int argc, char** argv);

}  // namespace saq::host

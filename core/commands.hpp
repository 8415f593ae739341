#pragma once
/// The saqhost commands, behind the command-line parsing.
#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

namespace saq::host {

struct CommandLine {
  std::string command, pipeline, describe;
  std::string output;  ///< convert: the file to write; export: -o
  std::string checkpoint, profile;  ///< export: --checkpoint, --profile ("" = the defaults)
  bool allow_float = false, fold_batch_norm = true;
  std::int64_t reference = -1;  ///< export --reference N (−1: not given)
  std::vector<std::string> more;  ///< positional arguments after the first: convert's NEW, analyze's runs
  std::string budget;             ///< analyze --budget
  std::vector<double> rhos;       ///< analyze --rho
  std::uint64_t seed = 0;         ///< analyze --seed
  std::vector<std::string> overrides, plugin_paths;
  bool resume = false;
  bool nproc_given = false;
  int nproc = 1;                          ///< --nproc N
  std::vector<std::string> worker_args;   ///< the arguments without --nproc, for the workers
};

/// Runs `run`, `resume`, `validate`, `report`, `plugins`, `export` or `convert`; returns the exit status. Throws InputError / RunError.
int run_command(const CommandLine& cl, std::shared_ptr<spdlog::logger> log);
std::string version_text();

}  // namespace saq::host

#pragma once
/// Who this process is in a data-parallel run, read from the environment its launcher set: saqhost's own
/// `--nproc` launcher and torchrun (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
/// TORCHELASTIC_*), or SLURM's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_JOB_NODELIST, SLURM_JOB_ID).
#include <functional>
#include <optional>
#include <string>

namespace saq::host {

struct WorldSpec {
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr;  ///< where the TCPStore is (rank 0 hosts it unless agent_store)
  int master_port = 0;
  /// torchrun's agent already hosts the store: connect as a client under store_prefix.
  bool agent_store = false;
  std::string store_prefix;
  std::string launcher;  ///< "saqhost --nproc", "torchrun" or "slurm": what messages call it
};

/// Reads a variable; the default reads the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> process_env(const std::string& name);

/// The world this process belongs to, or nullopt for a single-process run (no RANK/WORLD_SIZE, no SLURM job of
/// more than one task, or a world of one). Throws InputError naming the variable when they are inconsistent
/// (RANK ≥ WORLD_SIZE, a WORLD_SIZE that is not a number, no MASTER_ADDR for a torchrun world, …).
std::optional<WorldSpec> world_from_env(const EnvLookup& env = process_env);

/// The first host of a SLURM node list: "node[03-05,9],gpu1" → "node03".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace saq::host

#include "world.hpp"

#include <cstdlib>

#include "errors.hpp"

namespace saq::host {

std::optional<std::string> process_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

namespace {

int number(const EnvLookup& env, const std::string& name, const std::string& launcher, int min, int max) {
  const auto v = env(name);
  if (!v) throw InputError(launcher + " world: " + name + " is not set");
  std::size_t used = 0;
  long n = 0;
  try {
    n = std::stol(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v->size() || n < min || n > max)
    throw InputError(launcher + " world: " + name + "=\"" + *v + "\" must be an integer in [" + std::to_string(min) +
                     ", " + std::to_string(max) + "]");
  return static_cast<int>(n);
}

void check_ranks(const WorldSpec& w) {
  if (w.rank >= w.world_size)
    throw InputError(w.launcher + " world: rank " + std::to_string(w.rank) + " is not below the world size " +
                     std::to_string(w.world_size));
  if (w.local_rank >= w.local_world_size || w.local_world_size > w.world_size)
    throw InputError(w.launcher + " world: local rank " + std::to_string(w.local_rank) + " of " +
                     std::to_string(w.local_world_size) + " local processes does not fit a world of " +
                     std::to_string(w.world_size));
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  const std::size_t comma = nodelist.find(','), bracket = nodelist.find('[');
  if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket))
    return nodelist.substr(0, comma);
  const std::string prefix = nodelist.substr(0, bracket);
  const std::size_t end = nodelist.find_first_of("-,]", bracket + 1);
  return prefix + nodelist.substr(bracket + 1, end == std::string::npos ? std::string::npos : end - bracket - 1);
}

std::optional<WorldSpec> world_from_env(const EnvLookup& env) {
  WorldSpec w;
  if (env("WORLD_SIZE") || env("RANK")) {
    w.launcher = env("SAQ_LAUNCHER") ? "saqhost --nproc" : env("TORCHELASTIC_RUN_ID") ? "torchrun" : "RANK/WORLD_SIZE";
    w.world_size = number(env, "WORLD_SIZE", w.launcher, 1, 1 << 20);
    w.rank = number(env, "RANK", w.launcher, 0, 1 << 20);
    w.local_rank = env("LOCAL_RANK") ? number(env, "LOCAL_RANK", w.launcher, 0, 1 << 20) : w.rank;
    w.local_world_size =
        env("LOCAL_WORLD_SIZE") ? number(env, "LOCAL_WORLD_SIZE", w.launcher, 1, 1 << 20) : w.world_size;
    check_ranks(w);
    if (w.world_size == 1) return std::nullopt;
    const auto addr = env("MASTER_ADDR");
    if (!addr || addr->empty()) throw InputError(w.launcher + " world: MASTER_ADDR is not set");
    w.master_addr = *addr;
    w.master_port = number(env, "MASTER_PORT", w.launcher, 1, 65535);
    const auto agent = env("TORCHELASTIC_USE_AGENT_STORE");
    w.agent_store = agent && (*agent == "True" || *agent == "true" || *agent == "1");
    if (w.agent_store) {
      const int attempt = env("TORCHELASTIC_RESTART_COUNT")
                              ? number(env, "TORCHELASTIC_RESTART_COUNT", w.launcher, 0, 1 << 20) : 0;
      w.store_prefix = "/worker/attempt_" + std::to_string(attempt);
    }
    return w;
  }
  if (!env("SLURM_NTASKS") || !env("SLURM_PROCID")) return std::nullopt;
  w.launcher = "slurm";
  w.world_size = number(env, "SLURM_NTASKS", w.launcher, 1, 1 << 20);
  if (w.world_size == 1) return std::nullopt;
  w.rank = number(env, "SLURM_PROCID", w.launcher, 0, 1 << 20);
  w.local_rank = env("SLURM_LOCALID") ? number(env, "SLURM_LOCALID", w.launcher, 0, 1 << 20) : 0;
  // "4" or "4(x2),3": the count of the first node; a world with uneven nodes reports that node's count.
  const auto per_node = env("SLURM_NTASKS_PER_NODE");
  w.local_world_size = per_node ? std::max(1, std::atoi(per_node->c_str())) : w.world_size;
  if (w.local_world_size <= w.local_rank) w.local_world_size = w.local_rank + 1;
  check_ranks(w);
  if (const auto addr = env("MASTER_ADDR")) {
    w.master_addr = *addr;
  } else {
    const auto nodes = env("SLURM_JOB_NODELIST") ? env("SLURM_JOB_NODELIST") : env("SLURM_NODELIST");
    if (!nodes || nodes->empty()) throw InputError("slurm world: SLURM_JOB_NODELIST is not set (nor MASTER_ADDR)");
    w.master_addr = first_slurm_host(*nodes);
  }
  if (env("MASTER_PORT")) {
    w.master_port = number(env, "MASTER_PORT", w.launcher, 1, 65535);
  } else {
    // As PyTorch Lightning: 15000 + the job id's last four digits, the same on every node of the job.
    const auto job = env("SLURM_JOB_ID");
    if (!job || job->empty()) throw InputError("slurm world: SLURM_JOB_ID is not set (nor MASTER_PORT)");
    const std::string tail = job->size() > 4 ? job->substr(job->size() - 4) : *job;
    w.master_port = 15000 + std::atoi(tail.c_str());
  }
  return w;
}

}  // namespace saq::host

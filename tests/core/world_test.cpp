// Who a process is in a data-parallel world, from the variables torchrun, srun and saqhost's launcher set
// (torchrun's contract and Lightning's SLURM mapping, as documented by them), and the errors for bad ones.
#include "unit.hpp"

#include <map>
#include <string>

#include "errors.hpp"
#include "world.hpp"

namespace saq::host {

namespace {

EnvLookup env_of(const std::map<std::string, std::string>& vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    world_from_env(env_of(vars));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("no launcher variables, or a world of one, is a single process") {
  CHECK_FALSE(world_from_env(env_of({})).has_value());
  CHECK_FALSE(world_from_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}})).has_value());
  CHECK_FALSE(world_from_env(env_of({{"SLURM_NTASKS", "1"}, {"SLURM_PROCID", "0"}})).has_value());
}

TEST_CASE("torchrun's static rendezvous: the agent's store under /worker/attempt_<restart count>") {
  auto w = world_from_env(env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                                  {"MASTER_ADDR", "10.0.0.7"}, {"MASTER_PORT", "29500"},
                                  {"TORCHELASTIC_RUN_ID", "none"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                  {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  REQUIRE(w.has_value());
  CHECK(w->rank == 3);
  CHECK(w->world_size == 4);
  CHECK(w->local_rank == 1);
  CHECK(w->local_world_size == 2);
  CHECK(w->master_addr == "10.0.0.7");
  CHECK(w->master_port == 29500);
  CHECK(w->agent_store);
  CHECK(w->store_prefix == "/worker/attempt_2");
  CHECK(w->launcher == "torchrun");
}

TEST_CASE("without the agent store rank 0 hosts the store, and no prefix is used") {
  auto w = world_from_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
                                  {"MASTER_PORT", "1234"}, {"TORCHELASTIC_USE_AGENT_STORE", "False"}}));
  REQUIRE(w.has_value());
  CHECK_FALSE(w->agent_store);
  CHECK(w->store_prefix.empty());
  CHECK(w->local_world_size == 2);  // LOCAL_WORLD_SIZE unset: one machine
}

TEST_CASE("srun: SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, the first node of the list, 15000 + job id digits") {
  auto w = world_from_env(env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                  {"SLURM_NTASKS_PER_NODE", "4(x2)"}, {"SLURM_JOB_NODELIST", "gpu[07-08,11],cpu1"},
                                  {"SLURM_JOB_ID", "4812345"}}));
  REQUIRE(w.has_value());
  CHECK(w->rank == 5);
  CHECK(w->world_size == 8);
  CHECK(w->local_rank == 1);
  CHECK(w->local_world_size == 4);
  CHECK(w->master_addr == "gpu07");
  CHECK(w->master_port == 15000 + 2345);
  CHECK(w->launcher == "slurm");
}

TEST_CASE("SLURM node lists: plain names, ranges, lists") {
  CHECK(first_slurm_host("node1") == "node1");
  CHECK(first_slurm_host("node1,node2") == "node1");
  CHECK(first_slurm_host("n[3-5]") == "n3");
  CHECK(first_slurm_host("n[09,12-14]") == "n09");
  CHECK(first_slurm_host("a1,b[2-3]") == "a1");
}

TEST_CASE("MASTER_ADDR / MASTER_PORT set by hand win over the SLURM derivation") {
  auto w = world_from_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "x[1-2]"},
                                  {"SLURM_JOB_ID", "77"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "40000"}}));
  REQUIRE(w.has_value());
  CHECK(w->master_addr == "127.0.0.1");
  CHECK(w->master_port == 40000);
}

TEST_CASE("inconsistent worlds name the variable and the values") {
  CHECK(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}})
            .find("rank 2 is not below the world size 2") != std::string::npos);
  CHECK(error_of({{"RANK", "0"}, {"WORLD_SIZE", "two"}}).find("WORLD_SIZE=\"two\" must be an integer") != std::string::npos);
  CHECK(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}).find("MASTER_ADDR is not set") !=
        std::string::npos);
  CHECK(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
            .find("MASTER_PORT=\"70000\" must be an integer in [1, 65535]") != std::string::npos);
  CHECK(error_of({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}).find("RANK is not set") !=
        std::string::npos);
  CHECK(error_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}).find("SLURM_JOB_NODELIST is not set") !=
        std::string::npos);
}

}  // namespace saq::host

#pragma once
/// What the data-parallel CLI tests share: a small BatchNorm-free pipeline on synthetic data, runs in a temp
/// folder, the final weights, free ports and ranks started by hand with launcher variables.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <ATen/ATen.h>

#include <saq/torch_file.hpp>

#include "saqhost_cli.hpp"
#include "support.hpp"

namespace saq::dp_test {

namespace fs = std::filesystem;
using saq::test::TempDir;
using Result = saq::test::CliResult;


// 256 training samples (8 global batches of 32), an odd test split (uneven shards), a BatchNorm-free model
inline std::string data_and_model(std::int64_t batch) {
  return R"(
[data]
use = "synthetic"
size = 12
train_samples = 256
test_samples = 101
eval_batch_size = 20
batch_size = )" + std::to_string(batch) + R"(
[model]
use = "small_cnn"
width = 4
batch_norm = false
)";
}

inline std::string pipeline(const std::string& optimizer, std::int64_t batch, const std::string& extra_stage = "") {
  return R"([run]
name = "dp"
threads = 1
seed = 3
tensorboard = false
dist_timeout_s = 30
)" + data_and_model(batch) + R"(
[optimizer]
)" + optimizer + R"(
[[stage]]
use = "train"
epochs = 2
)" + extra_stage;
}

inline const std::string kSgd = "use = \"sgd\"\nlr = 0.05\nmomentum = 0.9";

inline Result run_in(const TempDir& dir, const std::string& text, const std::string& out, const std::string& env = "",
              const std::string& extra = "") {
  saq::test::write_file(dir / "p.toml", text);
  return saq::test::saqhost_cmd(env, "run " + (dir / "p.toml").string() + " --set run.out_dir=" + (dir / out).string() +
                                         " " + extra);
}

inline saq::NamedTensors weights(const fs::path& run_dir) {
  return saq::read_state_dict((run_dir / "checkpoints/final.pth").string());
}

/// ‖a − b‖ / ‖a‖ over every tensor together.
inline double relative_difference(const saq::NamedTensors& a, const saq::NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    diff += (a[i].second.to(at::kDouble) - b[i].second.to(at::kDouble)).pow(2).sum().item<double>();
    norm += a[i].second.to(at::kDouble).pow(2).sum().item<double>();
  }
  return std::sqrt(diff / norm);
}

/// A port nothing listens on, in [lo, hi].
inline int free_port(int lo = 20000, int hi = 29999) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = lo + static_cast<int>((static_cast<unsigned>(getpid()) * 7919u + attempt * 104729u) %
                                           static_cast<unsigned>(hi - lo + 1));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (ok) return port;
  }
  FAIL("no free port");
  return 0;
}

/// Two ranks started by hand, each with `env_r` (r = 0, 1) and `args`; both statuses and outputs.
struct Pair {
  int status0 = -1, status1 = -1;
  std::string out0, out1;
};
inline Pair run_two(const TempDir& dir, const std::string& env0, const std::string& env1, const std::string& args0,
             const std::string& args1) {
  const std::string saqhost = saq::test::env("SAQHOST");
  const std::string cmd = "(" + env0 + " " + saqhost + " " + args0 + " > " + (dir / "out0").string() + " 2>&1; echo $? > " +
                          (dir / "rc0").string() + ") & (" + env1 + " " + saqhost + " " + args1 + " > " +
                          (dir / "out1").string() + " 2>&1; echo $? > " + (dir / "rc1").string() + "); wait";
  std::string ignored;
  saq::test::run_command(cmd, ignored);
  Pair p;
  p.status0 = std::stoi(saq::test::read_file(dir / "rc0"));
  p.status1 = std::stoi(saq::test::read_file(dir / "rc1"));
  p.out0 = saq::test::read_file(dir / "out0");
  p.out1 = saq::test::read_file(dir / "out1");
  return p;
}

inline std::string hand_env(int rank, int world, int port) {
  return "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world) + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
         std::to_string(port);
}

}  // namespace saq::dp_test

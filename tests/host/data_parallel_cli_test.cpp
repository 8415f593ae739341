// Data-parallel runs on 2 processes over 127.0.0.1: equal to one process with the global batch (SGD on a
// BatchNorm-free model; SAM with a synchronised perturbation), SAM's per-rank ε equal to the mean of per-shard
// SAM updates computed here in one process, identical weights on every rank after every step, sharded
// evaluation equal to a single-process one, the same weights from --nproc, torchrun and srun variables, exact
// resume, and a dead rank, a mismatched pipeline or bad launcher input stopping every rank with a clear message.
#include "unit.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <string>

#include <ATen/ATen.h>

#include "loss.hpp"
#include "saqhost_cli.hpp"
#include "session.hpp"
#include "state_dict.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;
using Result = saq::test::CliResult;

namespace {

// 256 training samples (8 global batches of 32), an odd test split (uneven shards), a BatchNorm-free model
std::string data_and_model(std::int64_t batch) {
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

std::string pipeline(const std::string& optimizer, std::int64_t batch, const std::string& extra_stage = "") {
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

const std::string kSgd = "use = \"sgd\"\nlr = 0.05\nmomentum = 0.9";

Result run_in(const TempDir& dir, const std::string& text, const std::string& out, const std::string& env = "",
              const std::string& extra = "") {
  saq::test::write_file(dir / "p.toml", text);
  return saq::test::saqhost_cmd(env, "run " + (dir / "p.toml").string() + " --set run.out_dir=" + (dir / out).string() +
                                         " " + extra);
}

saq::NamedTensors weights(const fs::path& run_dir) {
  return saq::read_state_dict((run_dir / "checkpoints/final.pth").string());
}

/// ‖a − b‖ / ‖a‖ over every tensor together.
double relative_difference(const saq::NamedTensors& a, const saq::NamedTensors& b) {
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
int free_port(int lo = 20000, int hi = 29999) {
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
Pair run_two(const TempDir& dir, const std::string& env0, const std::string& env1, const std::string& args0,
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

std::string hand_env(int rank, int world, int port) {
  return "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world) + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
         std::to_string(port);
}

TempDir& shared_dir() {
  static TempDir d;
  return d;
}

/// The uninterrupted 2-rank SGD run (batch 16 per rank), logging every rank's weight digest; made once.
const std::pair<fs::path, std::string>& two_rank_reference() {
  static const std::pair<fs::path, std::string> ref = [] {
    Result r = run_in(shared_dir(), pipeline(kSgd, 16), "two", "SAQ_TEST_WEIGHT_DIGEST=1", "--nproc 2");
    INFO(r.output);
    REQUIRE(r.status == 0);
    return std::make_pair(shared_dir() / "two/dp", r.output);
  }();
  return ref;
}

std::string json_value(const fs::path& file, const std::string& key) {
  const std::string text = saq::test::read_file(file);
  std::smatch m;
  REQUIRE(std::regex_search(text, m, std::regex("\"" + key + "\": ([^,}\n]+)")));
  return m[1];
}

}  // namespace

TEST_CASE("2 ranks with batch B train as 1 process with batch 2B, and hold identical weights after every step") {
  const auto& [two, output] = two_rank_reference();
  TempDir dir;
  Result one = run_in(dir, pipeline(kSgd, 32), "one");
  REQUIRE(one.status == 0);
  CHECK(relative_difference(weights(dir / "one/dp"), weights(two)) < 1e-6);
  // every rank logs a digest of its parameters and buffers after each of the 16 steps: they agree
  std::map<std::string, std::map<int, std::string>> digests;  // step -> rank -> digest
  static const std::regex line(R"((\[rank 1\] )?\S*warning\S* weight digest after step (\d+): (\S+))");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it)
    digests[(*it)[2]][(*it)[1].matched ? 1 : 0] = (*it)[3];
  CHECK(digests.size() == 16);
  for (const auto& entry : digests) {  // no structured binding: CAPTURE is a lambda (clang)
    const std::string& step = entry.first;
    const auto& by_rank = entry.second;
    CAPTURE(step);
    REQUIRE(by_rank.size() == 2);
    CHECK(by_rank.at(0) == by_rank.at(1));
  }
  CHECK(json_value(two / "summary.json", "world_size") == "2");
  CHECK(json_value(two / "summary.json", "global_batch_size") == "32");
  CHECK(output.find("batch 16 per process x 2 processes = 32 global") != std::string::npos);
  CHECK_FALSE(fs::exists(two / "checkpoints/resume.pt"));
}

TEST_CASE("evaluation sharded over 2 ranks equals one process evaluating the same weights, exactly") {
  const fs::path& two = two_rank_reference().first;
  TempDir dir;
  const std::string eval = "[run]\nname = \"ev\"\nthreads = 1\ntensorboard = false\n" + data_and_model(128) + R"(
[[stage]]
use = "eval"
split = "test"
init = ")" + (two / "checkpoints/final.pth").string() + "\"\n";
  Result one = run_in(dir, eval, "one");
  REQUIRE(one.status == 0);
  for (const char* key : {"test_top1", "test_top5", "test_samples"}) {
    CAPTURE(key);
    CHECK(json_value(dir / "one/ev/summary.json", key) == json_value(two / "summary.json", key));
  }
  CHECK(json_value(two / "summary.json", "test_samples") == "101");
}

TEST_CASE("SAM: per-rank ε gives the mean of the two shards' SAM updates; a synchronised ε gives SAM on 2B") {
  TempDir dir;
  // the starting weights, written here so that the runs and the computation below start from the same point
  saq::host::Pipeline p = saq::test::pipeline_from_text(dir, pipeline(kSgd, 16));
  const saq::host::Registry& reg = saq::test::registry();
  saq::Context dctx;
  auto data = reg.make<saq::Dataset>(reg.require(saq::Kind::Dataset, "synthetic", "test"), *p.data, dctx);
  saq::Context mctx;
  mctx.data = data->info();
  auto make_model = [&] {
    return reg.make<saq::Model>(reg.require(saq::Kind::Model, "small_cnn", "test"), *p.model, mctx);
  };
  auto w0_model = make_model();
  saq::host::save_state_dict(*w0_model, dir / "w0.pth");
  const std::string sam = "use = \"sam\"\nrho = 0.05\nbase = { use = \"sgd\", lr = 0.1 }";
  const std::string one_step = "limit_batches = 1\ninit = \"" + (dir / "w0.pth").string() + "\"\n";
  auto text = [&](const std::string& opt, std::int64_t batch) {
    std::string t = pipeline(opt, batch, one_step);
    return std::regex_replace(t, std::regex("epochs = 2"), "epochs = 1");
  };

  Result local = run_in(dir, text(sam, 16), "local", "", "--nproc 2");
  REQUIRE(local.status == 0);
  // by hand: each shard's SAM step in one process from w0, then the mean of the two updated models
  saq::host::HostBuilder builder(reg);
  saq::Progress progress{0, 1, 0, 1};
  std::vector<saq::NamedTensors> per_rank;
  for (int r = 0; r < 2; ++r) {
    auto model = make_model();
    saq::host::load_state_dict(*model, saq::read_state_dict((dir / "w0.pth").string()), "w0", false);
    model->train();
    saq::host::Pipeline sp = saq::test::pipeline_from_text(dir, text(sam, 16));
    saq::Context ctx;
    ctx.build = &builder;
    ctx.model = model;
    ctx.groups = {saq::ParamGroup{"all", model->parameters(), std::nullopt, std::nullopt}};
    auto opt = reg.make<saq::Optimizer>(reg.require(saq::Kind::Optimizer, "sam", "test"), *sp.optimizer, ctx);
    saq::LoaderSpec spec;
    spec.batch_size = 16, spec.train = true, spec.seed = 3, spec.rank = r, spec.world_size = 2;
    auto loader = data->loader(spec);
    loader->start_epoch(0, 0);
    saq::Batch b;
    REQUIRE(loader->next(b));
    opt->begin_step(progress);
    opt->step([&](const at::Tensor& rows) {
      at::Tensor x = rows.defined() ? b.x.index_select(0, rows) : b.x, y = rows.defined() ? b.y.index_select(0, rows) : b.y;
      return saq::host::cross_entropy_per_sample(model->forward(x), y, 0.0);
    });
    per_rank.push_back(saq::host::model_state(*model));
  }
  saq::NamedTensors mean = per_rank[0];
  for (size_t i = 0; i < mean.size(); ++i) mean[i].second = (per_rank[0][i].second + per_rank[1][i].second) / 2;
  CHECK(relative_difference(weights(dir / "local/dp"), mean) < 1e-6);
  // and it is not what a synchronised ε gives (the two shards' ε differ)
  Result synced = run_in(dir, text(sam + "\nsync_perturbation = true", 16), "synced", "", "--nproc 2");
  REQUIRE(synced.status == 0);
  CHECK(relative_difference(weights(dir / "local/dp"), weights(dir / "synced/dp")) > 1e-6);
  Result single = run_in(dir, text(sam, 32), "single");
  REQUIRE(single.status == 0);
  CHECK(relative_difference(weights(dir / "single/dp"), weights(dir / "synced/dp")) < 1e-6);
}

TEST_CASE("torchrun (agent store) and srun's variables give the same weights as --nproc 2") {
  const fs::path& two = two_rank_reference().first;
  TempDir dir;
  saq::test::write_file(dir / "p.toml", pipeline(kSgd, 16));
  const std::string args = "run " + (dir / "p.toml").string() + " --set run.out_dir=";
  std::string out;
  const int port = free_port();
  // --redirects 1 --tee 1: Debian's torchrun 1.13 on Python 3.11 fails on the default "0" (IntFlag no longer
  // lists its zero member); stdout is teed to a log file in --log_dir, stderr stays on the console
  const int status = saq::test::run_command("torchrun --no_python --nproc_per_node 2 --redirects 1 --tee 1 --log_dir " +
                                                (dir / "torchrun-logs").string() + " --master_addr 127.0.0.1 --master_port " +
                                                std::to_string(port) + " " + saq::test::env("SAQHOST") + " " + args +
                                                (dir / "torchrun").string(),
                                            out);
  INFO(out);
  REQUIRE(status == 0);
  CHECK(out.find("(torchrun, gloo)") != std::string::npos);
  CHECK(saq::test::read_file(dir / "torchrun/dp/checkpoints/final.pth") == saq::test::read_file(two / "checkpoints/final.pth"));

  const int slurm_port = free_port(15000, 24999);
  auto slurm = [&](int r) {
    return "SLURM_PROCID=" + std::to_string(r) + " SLURM_LOCALID=" + std::to_string(r) +
           " SLURM_NTASKS=2 SLURM_NTASKS_PER_NODE=2 SLURM_JOB_NODELIST=127.0.0.1 SLURM_JOB_ID=" +
           std::to_string(slurm_port - 15000);
  };
  Pair s = run_two(dir, slurm(0), slurm(1), args + (dir / "slurm").string(), args + (dir / "slurm").string());
  INFO(s.out0);
  INFO(s.out1);
  REQUIRE(s.status0 == 0);
  REQUIRE(s.status1 == 0);
  CHECK(s.out0.find("(slurm, gloo)") != std::string::npos);
  CHECK(saq::test::read_file(dir / "slurm/dp/checkpoints/final.pth") == saq::test::read_file(two / "checkpoints/final.pth"));
  CHECK_FALSE(fs::exists(dir / "slurm/dp.1"));  // rank 1 wrote no run directory of its own
}

TEST_CASE("a 2-rank run stopped by SIGTERM on one rank saves once and resumes bit-identical with --nproc 2") {
  const fs::path& two = two_rank_reference().first;
  TempDir dir;
  // rank 0 alone gets the signal after step 5: both ranks stop at the same step
  Result stopped = run_in(dir, pipeline(kSgd, 16), "runs", "SAQ_FAULT_AFTER_STEP=5 SAQ_FAULT_SIGNAL=TERM SAQ_FAULT_RANK=0",
                          "--nproc 2");
  INFO(stopped.output);
  CHECK(stopped.status == 143);
  const std::string run_dir = (dir / "runs/dp").string();
  CHECK(stopped.has("continue with: saqhost resume " + run_dir + " --nproc 2"));
  Result wrong = saq::test::saqhost("resume " + run_dir);
  CHECK(wrong.status == 2);
  CHECK(wrong.has("its checkpoint was written by a run of 2 processes, this run has 1; resume it with --nproc 2"));
  Result resumed = saq::test::saqhost("resume " + run_dir + " --nproc 2");
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(saq::test::read_file(dir / "runs/dp/checkpoints/final.pth") == saq::test::read_file(two / "checkpoints/final.pth"));
  CHECK(json_value(dir / "runs/dp/summary.json", "test_top1") == json_value(two / "summary.json", "test_top1"));
}

TEST_CASE("a rank killed mid-run stops every rank, naming it: the launcher at once, hand-started ranks by heartbeat") {
  TempDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  Result killed = run_in(dir, pipeline(kSgd, 16), "runs", "SAQ_FAULT_AFTER_STEP=3 SAQ_FAULT_RANK=1", "--nproc 2");
  CHECK(killed.status != 0);
  CHECK(killed.has("rank 1 (pid "));
  CHECK(killed.has("was killed by signal 9"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));

  saq::test::write_file(dir / "p.toml", pipeline(kSgd, 16));
  const std::string args = "run " + (dir / "p.toml").string() + " --set run.out_dir=" + (dir / "hand").string();
  const int port = free_port();
  Pair p = run_two(dir, hand_env(0, 2, port), hand_env(1, 2, port) + " SAQ_FAULT_AFTER_STEP=3 SAQ_FAULT_RANK=1", args, args);
  INFO(p.out0);
  CHECK(p.status1 == 128 + 9);
  CHECK(p.status0 == 1);
  CHECK(p.out0.find("rank 1 stopped answering") != std::string::npos);
}

TEST_CASE("bad launcher input: --nproc 0 or nested, ranks with different pipelines or world sizes, a port in use") {
  TempDir dir;
  saq::test::write_file(dir / "p.toml", pipeline(kSgd, 16));
  Result zero = saq::test::saqhost("run " + (dir / "p.toml").string() + " --nproc 0");
  CHECK(zero.status == 2);
  CHECK(zero.has("--nproc must be a number of processes in [1, 1024], got 0"));
  Result validate = saq::test::saqhost("validate " + (dir / "p.toml").string() + " --nproc 2");
  CHECK(validate.status == 2);
  CHECK(validate.has("--nproc is for run and resume, not validate"));

  Result nested = saq::test::saqhost_cmd(hand_env(0, 2, 1), "run " + (dir / "p.toml").string() + " --nproc 2");
  CHECK(nested.status == 2);
  CHECK(nested.has("--nproc: this process is already a rank of a launched world"));

  const std::string args = "run " + (dir / "p.toml").string() + " --set run.out_dir=" + (dir / "runs").string();
  int port = free_port();
  Pair differ = run_two(dir, hand_env(0, 2, port), hand_env(1, 2, port), args, args + " --set data.batch_size=8");
  CHECK(differ.status0 == 2);
  CHECK(differ.status1 == 2);
  for (const std::string* out : {&differ.out0, &differ.out1})
    CHECK(out->find("rank 1 runs a different pipeline or plugin set than rank 0") != std::string::npos);

  port = free_port();
  Pair sizes = run_two(dir, hand_env(0, 2, port), hand_env(1, 3, port), args + " --set run.dist_timeout_s=5",
                       args + " --set run.dist_timeout_s=5");
  CHECK(sizes.status1 == 2);
  CHECK(sizes.out1.find("rank 1 has a world of 3 processes, rank 0 of 2") != std::string::npos);
  CHECK(sizes.status0 != 0);

  // a port something else listens on
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(fd, 1) == 0);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  Result busy = saq::test::saqhost_cmd(hand_env(0, 2, ntohs(a.sin_port)), args + " --set run.dist_timeout_s=5");
  close(fd);
  CHECK(busy.status == 2);
  CHECK(busy.has("rank 0 cannot host the rendezvous store on 127.0.0.1:"));
}

// Runs that survive: a run killed (SIGKILL) at any of several points and resumed ends bit-identical to an
// uninterrupted one; SIGTERM/SIGINT save a checkpoint and say how to resume; a NaN step stops or is skipped;
// a full disk is a clear error that leaves the last checkpoint usable.
#include "unit.hpp"

#include <tuple>

#include <filesystem>
#include <regex>
#include <string>

#include "saqhost_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;
using Result = saq::test::CliResult;

namespace {

// Two stages (full precision, then quantized ESAM, whose random draws must resume too), 8 steps per epoch,
// a resume checkpoint every 3 steps: 8 + 16 = 24 steps in all.
const std::string kPipeline = R"([run]
name = "r"
threads = 2
checkpoint_every = 3
[data]
use = "synthetic"
size = 12
train_samples = 256
test_samples = 32
batch_size = 32
[model]
use = "small_cnn"
width = 4
[quantizer]
use = "liq_wn"
[optimizer]
use = "sgd"
lr = 0.05
momentum = 0.9
[[stage]]
use = "train"
epochs = 1
quantized = false
[[stage]]
use = "train"
epochs = 2
init = "stage0"
optimizer = { use = "esam", rho = 0.1, base = { use = "sgd", lr = 0.02, momentum = 0.9 } }
)";

Result run(const TempDir& dir, const std::string& out, const std::string& env = "", const std::string& extra = "") {
  saq::test::write_file(dir / "p.toml", kPipeline);
  return saq::test::saqhost_cmd(env, "run " + (dir / "p.toml").string() + " --set run.out_dir=" + (dir / out).string() +
                                         " " + extra);
}

/// metrics.jsonl without its timings, which differ from run to run.
std::string metrics_without_timings(const fs::path& run_dir) {
  static const std::regex timing("\"(step_ms|images_per_s)\": [-0-9.e+]+,? ?");
  return std::regex_replace(saq::test::read_file(run_dir / "metrics.jsonl"), timing, "");
}

/// The uninterrupted run, made once for every test that compares with it.
const fs::path& reference(const TempDir& keep) {
  static const fs::path dir = [&] {
    Result r = run(keep, "ref");
    REQUIRE(r.status == 0);
    return keep / "ref" / "r";
  }();
  return dir;
}

/// The run's TensorBoard event file (there is one).
std::string events(const fs::path& run_dir) {
  for (const auto& e : fs::directory_iterator(run_dir / "tensorboard"))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) return saq::test::read_file(e.path());
  return "";
}

void same_as_reference(const fs::path& resumed, const fs::path& ref) {
  CHECK(saq::test::read_file(resumed / "checkpoints/final.pt") == saq::test::read_file(ref / "checkpoints/final.pt"));
  CHECK(saq::test::read_file(resumed / "checkpoints/stage0.pt") == saq::test::read_file(ref / "checkpoints/stage0.pt"));
  CHECK(metrics_without_timings(resumed) == metrics_without_timings(ref));
  CHECK_FALSE(fs::exists(resumed / "checkpoints/resume.pt"));  // a finished run leaves none
  // TensorBoard: the event file was cut back to the checkpoint, so each epoch's scalars appear once
  const std::string e = events(resumed);
  CHECK(saq::test::occurrences(e, "stage0/train/loss") == 1);
  CHECK(saq::test::occurrences(e, "stage1/train/loss") == 2);
  CHECK(saq::test::occurrences(e, "stage1/test/top1") == 2);
  CHECK(saq::test::occurrences(e, "stage1/quantizer/") == saq::test::occurrences(events(ref), "stage1/quantizer/"));
  CHECK(saq::test::occurrences(e, "stage1/quantizer/") > 0);
}

TempDir& shared_dir() {
  static TempDir d;
  return d;
}

}  // namespace

TEST_CASE("a run killed at any step and resumed ends bit-identical to an uninterrupted run") {
  const fs::path& ref = reference(shared_dir());
  // 3: right after a checkpoint; 5: two steps past one (mid-epoch); 8: at stage 0's end; 13: mid-epoch of
  // stage 1; 16: at an epoch end; 23: one step before the end.
  for (int kill_at : {3, 5, 8, 13, 16, 23}) {
    CAPTURE(kill_at);
    TempDir dir;
    Result killed = run(dir, "runs", "SAQ_FAULT_AFTER_STEP=" + std::to_string(kill_at));
    CHECK(killed.status == 128 + 9);
    CHECK_FALSE(fs::exists(dir / "runs/r/summary.json"));
    Result resumed = saq::test::saqhost("resume " + (dir / "runs/r").string());
    REQUIRE(resumed.status == 0);
    same_as_reference(dir / "runs/r", ref);
  }
}

TEST_CASE("LookSAM (its g_v), GSAM and MSAM runs killed mid-epoch resume bit-identical") {
  const std::string esam = "optimizer = { use = \"esam\", rho = 0.1,";
  for (const std::string& method : {std::string("optimizer = { use = \"looksam\", k = 4, rho = 0.1,"),
                                    std::string("optimizer = { use = \"gsam\", rho = 0.1, rho_min = 0.05, alpha = 0.3,"),
                                    std::string("optimizer = { use = \"msam\", rho = 0.1,")}) {
    CAPTURE(method);
    std::string text = kPipeline;
    text.replace(text.find(esam), esam.size(), method);
    TempDir dir;
    saq::test::write_file(dir / "p.toml", text);
    const std::string cmd = "run " + (dir / "p.toml").string() + " --set run.out_dir=";
    REQUIRE(saq::test::saqhost(cmd + (dir / "ref").string()).status == 0);
    // 13: mid-epoch of stage 1, past the checkpoint whose next step is stage 1's step 3: for LookSAM (k = 4) a
    // step that reuses the g_v of step 0, which must come back from the checkpoint
    CHECK(saq::test::saqhost_cmd("SAQ_FAULT_AFTER_STEP=13", cmd + (dir / "runs").string()).status == 128 + 9);
    Result resumed = saq::test::saqhost("resume " + (dir / "runs/r").string());
    REQUIRE(resumed.status == 0);
    CHECK(saq::test::read_file(dir / "runs/r/checkpoints/final.pt") ==
          saq::test::read_file(dir / "ref/r/checkpoints/final.pt"));
    CHECK(metrics_without_timings(dir / "runs/r") == metrics_without_timings(dir / "ref/r"));
  }
}

TEST_CASE("SIGTERM and SIGINT finish the step, save a checkpoint, exit 128+signal and say how to resume") {
  const fs::path& ref = reference(shared_dir());
  for (auto item : {std::pair<const char*, int>{"TERM", 143}, {"INT", 130}}) {
    const auto& sig = std::get<0>(item);
    const auto& status = std::get<1>(item);
    CAPTURE(sig);
    TempDir dir;
    Result stopped = run(dir, "runs", std::string("SAQ_FAULT_SIGNAL=") + sig + " SAQ_FAULT_AFTER_STEP=11");
    CHECK(stopped.status == status);
    CHECK(stopped.has("at stage 1, epoch 1, step 3: checkpoint saved; continue with: saqhost resume " +
                      (dir / "runs/r").string()));
    // `run --resume` finds the run by the pipeline's name and continues it
    Result resumed = run(dir, "runs", "", "--resume");
    REQUIRE(resumed.status == 0);
    same_as_reference(dir / "runs/r", ref);
    CHECK_FALSE(fs::exists(dir / "runs/r.1"));
    Result again = run(dir, "runs", "", "--resume");
    CHECK(again.status == 0);
    CHECK(again.has("is finished"));
  }
}

TEST_CASE("--resume refuses a pipeline that changed since the run started, naming the line") {
  TempDir dir;
  REQUIRE(run(dir, "runs", "SAQ_FAULT_AFTER_STEP=4").status == 128 + 9);
  Result r = run(dir, "runs", "", "--resume --set optimizer.lr=0.1");
  CHECK(r.status == 2);
  CHECK(r.has("differs from the pipeline " + (dir / "runs/r").string() + " was started with (line "));
  Result set = saq::test::saqhost("resume " + (dir / "runs/r").string() + " --set run.seed=3");
  CHECK(set.status == 2);
  CHECK(set.has("--set is not allowed"));
}

TEST_CASE("a corrupt resume checkpoint is bad input naming the file") {
  TempDir dir;
  REQUIRE(run(dir, "runs", "SAQ_FAULT_AFTER_STEP=4").status == 128 + 9);
  const fs::path file = dir / "runs/r/checkpoints/resume.pt";
  saq::test::write_file(file, "not a checkpoint");
  Result r = saq::test::saqhost("resume " + (dir / "runs/r").string());
  CHECK(r.status == 2);
  CHECK(r.has(file.string() + ": not a readable resume checkpoint"));
  Result none = saq::test::saqhost("resume " + (dir / "nothing").string());
  CHECK(none.status == 2);
  CHECK(none.has("no such run directory"));
}

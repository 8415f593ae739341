// A step whose loss or gradients are not finite: the run stops naming stage, epoch and step with the last
// checkpoint intact, or (run.on_nonfinite = "skip") the step is skipped with nothing updated. And a full disk:
// a clear error, the previous checkpoint still resumable.
#include "unit.hpp"

#include <sys/mount.h>

#include <filesystem>
#include <string>

#include "saqhost_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;
using Result = saq::test::CliResult;

namespace {

// 256 samples in batches of 32: 8 steps per epoch, batch 5 of every epoch NaN (the `poisoned` fixture).
const std::string kPoisoned = R"([run]
name = "nan"
checkpoint_every = 2
[data]
use = "poisoned"
bad_batch = 5
batch_size = 32
[model]
use = "small_cnn"
width = 4
[optimizer]
use = "sam"
rho = 0.05
base = { use = "sgd", lr = 0.05 }
[[stage]]
use = "train"
epochs = 2
)";

Result run_poisoned(const TempDir& dir, const std::string& extra) {
  saq::test::write_file(dir / "p.toml", kPoisoned);
  const std::string fixtures = saq::test::env("SAQ_FIXTURE_DIR");
  return saq::test::saqhost("run " + (dir / "p.toml").string() + " -P " + fixtures + "/libfixture_poisoned.so" +
                            " --set run.out_dir=" + (dir / "runs").string() + " " + extra);
}

}  // namespace

TEST_CASE("a NaN step stops the run by default, naming stage, epoch and step; the last checkpoint stays") {
  TempDir dir;
  Result r = run_poisoned(dir, "");
  CHECK(r.status == 1);
  CHECK(r.has("non-finite loss or gradients at stage 0, epoch 1, step 6"));
  CHECK(r.has("run.on_nonfinite = \"skip\""));
  // the checkpoint after step 4 is whole and resumes (and stops at the same step again)
  Result resumed = saq::test::saqhost("resume " + (dir / "runs/nan").string() + " -P " +
                                      saq::test::env("SAQ_FIXTURE_DIR") + "/libfixture_poisoned.so");
  CHECK(resumed.status == 1);
  CHECK(resumed.has("resuming at epoch 1, step 4"));
  CHECK(resumed.has("at stage 0, epoch 1, step 6"));
}

TEST_CASE("on_nonfinite = skip skips each NaN step, updates nothing on it, and finishes") {
  TempDir dir;
  Result r = run_poisoned(dir, "--set run.on_nonfinite=skip");
  REQUIRE(r.status == 0);
  const std::string metrics = saq::test::read_file(dir / "runs/nan/metrics.jsonl");
  CHECK(saq::test::occurrences(metrics, "\"split\": \"skipped_step\"") == 2);  // one per epoch
  CHECK(saq::test::occurrences(metrics, "\"skipped_steps\": 1") == 2);
  CHECK(metrics.find("\"loss\": nan") == std::string::npos);
  const std::string summary = saq::test::read_file(dir / "runs/nan/summary.json");
  CHECK(summary.find("\"test_top1\": null") == std::string::npos);  // the weights stayed finite
  CHECK(summary.find("\"test_top1\": ") != std::string::npos);
}

TEST_CASE("skipping stops after max_skipped_steps non-finite steps in a row") {
  TempDir dir;
  // Every step is NaN when the batch is the whole split: epochs 1 and 2 skip theirs, epoch 3's is one too many.
  Result r = run_poisoned(dir, "--set run.on_nonfinite=skip --set run.max_skipped_steps=2 --set data.samples=32 "
                               "--set data.bad_batch=0 --set stage.0.epochs=3");
  CHECK(r.status == 1);
  CHECK(r.has("at stage 0, epoch 3, step 1"));
  CHECK(r.has("3 steps in a row"));
}

TEST_CASE("a full disk is a clear error naming the file, and the previous checkpoint still resumes") {
  TempDir dir;
  const fs::path mnt = dir / "small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=8m") != 0) {
    MESSAGE("skipped: cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
    return;
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount(p.c_str()); }
  } unmount{mnt};
  // Measure one resume checkpoint, then leave room for one and a half of them next to the run's small files.
  saq::test::write_file(dir / "p.toml", kPoisoned);
  Result killed = saq::test::saqhost_cmd("SAQ_FAULT_AFTER_STEP=3", "run " + (dir / "p.toml").string() + " -P " +
                                         saq::test::env("SAQ_FIXTURE_DIR") + "/libfixture_poisoned.so --set "
                                         "data.bad_batch=-1 --set model.width=48 --set run.name=size --set run.out_dir=" +
                                         (dir / "runs").string());
  REQUIRE(killed.status == 137);
  const auto checkpoint = fs::file_size(dir / "runs/size/checkpoints/resume.pt");
  const auto capacity = fs::space(mnt).available;
  REQUIRE(capacity > 2 * checkpoint);
  saq::test::write_file(mnt / "filler", std::string(capacity - checkpoint * 3 / 2 - 64 * 1024, 'x'));
  Result full = run_poisoned(dir, "--set data.bad_batch=-1 --set model.width=48 --set run.out_dir=" + mnt.string());
  CHECK(full.status == 1);
  CHECK(full.has("cannot write " + (mnt / "nan/checkpoints/resume.pt").string() + " (the previous version, if any, "
                 "is intact)"));
  CHECK(full.has("No space left on device"));
  fs::remove(mnt / "filler");
  Result resumed = saq::test::saqhost("resume " + (mnt / "nan").string() + " -P " +
                                      saq::test::env("SAQ_FIXTURE_DIR") + "/libfixture_poisoned.so");
  CHECK(resumed.status == 0);
  CHECK(resumed.has("resuming at epoch 1, step 2"));
}

// End to end through the host engine: a short training on the synthetic set writes a complete run directory
// whose checkpoint reproduces the reported accuracy; a short training on real Fashion-MNIST learns.
#include "plugin_test.hpp"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <saq/torch_file.hpp>

#include "engine.hpp"

using namespace saq;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<spdlog::logger> quiet_logger() {
  return std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
}

/// The number after "key": in a one-level JSON object; fails the test when the key is absent.
double json_number(const std::string& json, const std::string& key) {
  const std::string tag = "\"" + key + "\": ";
  auto at = json.find(tag);
  REQUIRE_MESSAGE(at != std::string::npos, "no " << key << " in " << json);
  return std::strtod(json.c_str() + at + tag.size(), nullptr);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

/// Top-1 accuracy in percent of `m` on the whole test split.
double test_top1(Model& m, const Dataset& ds) {
  Batch all = test::whole_split(ds, "test");
  at::NoGradGuard no_grad;
  m.eval();
  return 100.0 * m.forward(all.x).argmax(1).eq(all.y).sum().item<double>() / static_cast<double>(all.y.size(0));
}

/// 1024 synthetic images, 2 epochs of small_cnn width 8. Noise 0.1 rather than the default 0.35, batch 16 and a
/// per-step cosine: global average pooling makes i.i.d.-pixel prototypes hard for this net, and with the defaults
/// it scores 18% after 2 epochs (55% after 10). With these settings run seeds 0..12 all reached 100%.
std::string smoke_pipeline(const fs::path& out_dir) {
  return "[run]\nname = \"smoke\"\nout_dir = \"" + out_dir.string() +
         "\"\nseed = 1\ndevice = \"cpu\"\nthreads = 2\n\n"
         "[data]\nuse = \"synthetic\"\ntrain_samples = 1024\ntest_samples = 512\nnoise = 0.1\nbatch_size = 16\n\n"
         "[model]\nuse = \"small_cnn\"\nwidth = 8\n\n"
         "[optimizer]\nuse = \"sgd\"\nlr = 0.05\nmomentum = 0.9\n\n"
         "[[stage]]\nuse = \"train\"\nepochs = 2\nlr_update = \"step\"\n";
}

}  // namespace

TEST_CASE("train smoke: synthetic, 2 epochs, writes the run directory and learns") {
  test::TempDir dir;
  host::Pipeline p = test::pipeline_from_text(dir, smoke_pipeline(dir / "runs"));
  fs::path run = host::run_pipeline(p, test::registry(), quiet_logger());
  CHECK(run == dir / "runs" / "smoke");

  std::string resolved = test::read_file(run / "config.resolved.toml");
  CHECK(test::contains(resolved, "use = \"small_cnn\""));
  CHECK(test::contains(resolved, "width = 8"));
  CHECK(test::contains(resolved, "noise = 0.1"));
  CHECK(test::contains(resolved, "classes = 10"));  // defaults, written out
  CHECK(test::contains(resolved, "eval_batch_size = 500"));
  CHECK(fs::file_size(run / "saqhost.log") > 0);
  CHECK(fs::file_size(run / "checkpoints" / "stage0.pt") > 0);
  CHECK(fs::file_size(run / "checkpoints" / "final.pt") > 0);

  // One line per epoch for training and one per test evaluation (eval_every = 1): train, test, train, test.
  std::vector<std::string> metrics = lines(test::read_file(run / "metrics.jsonl"));
  REQUIRE(metrics.size() == 4);
  std::vector<std::string> tests;
  for (const auto& m : metrics) {
    CHECK(m.front() == '{');
    CHECK(m.back() == '}');
    if (test::contains(m, "\"split\": \"test\"")) tests.push_back(m);
  }
  REQUIRE(tests.size() == 2);
  CHECK(json_number(tests[0], "epoch") == 1);
  CHECK(json_number(tests[1], "epoch") == 2);
  CHECK(json_number(tests[1], "samples") == 512);

  std::string summary = test::read_file(run / "summary.json");
  const double top1 = json_number(summary, "test_top1");
  CHECK(top1 >= 90.0);  // class prototypes are far apart: the set is easy
  CHECK(top1 == doctest::Approx(json_number(tests[1], "top1")));
  CHECK(json_number(summary, "epochs") == 2);
  CHECK(json_number(summary, "test_samples") == 512);
  // small_cnn width 8, 1 channel, 10 classes: conv 72 + 576 + 1152 + 2304, BN 96, fc 16*10 + 10: 4370.
  CHECK(json_number(summary, "parameters") == 4370);

  // The final checkpoint holds the trained weights: a fresh model loaded from it scores the reported top-1.
  auto ds = test::make_dataset(p);
  auto fresh = test::make_model(p, ds->info());
  CHECK(test_top1(*fresh, *ds) < 50.0);  // untrained: about chance, 10%
  const StateDict final_pt = read_state((run / "checkpoints" / "final.pt").string());
  load_module_state(*fresh, final_pt.child("state_dict"));
  CHECK(test_top1(*fresh, *ds) == doctest::Approx(top1).epsilon(1e-6));

  // The same name again: a new directory beside the first, which is left alone.
  auto before = fs::last_write_time(run / "summary.json");
  host::Pipeline one_epoch = test::pipeline_from_text(dir, smoke_pipeline(dir / "runs"), {"stage.0.epochs=1"});
  fs::path second = host::run_pipeline(one_epoch, test::registry(), quiet_logger());
  CHECK(second == dir / "runs" / "smoke.1");
  CHECK(fs::exists(second / "summary.json"));
  CHECK(json_number(test::read_file(second / "summary.json"), "epochs") == 1);
  CHECK(fs::last_write_time(run / "summary.json") == before);
}

// 6000 training images, 2 epochs of small_cnn width 16, SGD lr 0.05 momentum 0.9 on batches of 32, cosine per
// step; run seeds 0..12 scored 74.8-77.6% on the first 2000 test images. (One epoch at lr 0.1 on batches of 128,
// 47 constant-rate steps, scores 11-61% over seeds 0..12; a stock torch::nn copy of the net does the same.)
TEST_CASE("train smoke: real Fashion-MNIST, 6000 images, 2 epochs of small_cnn reach 70% top-1") {
  test::TempDir dir;
  host::Pipeline p = test::pipeline_from_text(
      dir, "[run]\nname = \"fmnist\"\nout_dir = \"" + (dir / "runs").string() +
               "\"\nseed = 0\ndevice = \"cpu\"\nthreads = 2\n\n"
               "[data]\nuse = \"fashion_mnist\"\ntrain_samples = 6000\ntest_samples = 2000\nbatch_size = 32\n\n"
               "[model]\nuse = \"small_cnn\"\nwidth = 16\n\n"
               "[optimizer]\nuse = \"sgd\"\nlr = 0.05\nmomentum = 0.9\n\n"
               "[[stage]]\nuse = \"train\"\nepochs = 2\nlr_update = \"step\"\neval_every = 0\n");
  fs::path run = host::run_pipeline(p, test::registry(), quiet_logger());
  std::string summary = test::read_file(run / "summary.json");
  MESSAGE("Fashion-MNIST smoke: " << summary);
  CHECK(json_number(summary, "test_samples") == 2000);
  CHECK(json_number(summary, "epochs") == 2);
  CHECK(json_number(summary, "test_top1") >= 70.0);  // chance is 10%
}

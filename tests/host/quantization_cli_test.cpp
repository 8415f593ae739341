// saqhost with a [quantizer]: bad quantizer input exits 2 naming the key, `report` prints the paper's BOPs, and a
// two-stage run (FP32, then quantized from the FP32 weights) writes its report, summary and checkpoint chain.
#include "unit.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <string>

#include "saqhost_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;

namespace {

using Result = saq::test::CliResult;
using saq::test::saqhost;
using saq::test::saqhost_on;

using saq::test::contains;

// PreResNet-20 on synthetic CIFAR-100-shaped data; the [quantizer] body follows.
const std::string kReport = R"([data]
use = "synthetic"
channels = 3
size = 32
classes = 100
train_samples = 8
test_samples = 8
[model]
use = "preresnet20"
[[stage]]
use = "eval"
[quantizer]
)";

// Stage 0 trains in full precision, stage 1 quantized from stage 0's weights, stage 2 evaluates.
const std::string kTwoStage = R"([run]
name = "two"
[data]
use = "synthetic"
size = 12
train_samples = 32
test_samples = 16
batch_size = 16
eval_batch_size = 16
[model]
use = "small_cnn"
width = 4
[quantizer]
use = "liq_wn"
[optimizer]
use = "sgd"
lr = 0.05
[[stage]]
use = "train"
epochs = 1
quantized = false
[[stage]]
use = "train"
epochs = 1
init = "stage0"
[[stage]]
use = "eval"
)";

}  // namespace

TEST_CASE("quantizer input errors exit 2 and name the key") {
  TempDir dir;
  // `use = "liq_wn"` goes on line 13 of the file, `weight_bits = 9` on line 14
  Result bits = saqhost_on(dir, kReport + "use = \"liq_wn\"\nweight_bits = 9\n", "report");
  CHECK(bits.status == 2);
  CHECK(contains(bits.output, "p.toml:14:15: quantizer.weight_bits: must be 2..8, or 32 for full precision, got 9"));
  Result rule = saqhost_on(
      dir, kReport + "use = \"liq_wn\"\n[[quantizer.rule]]\nmatch = \"fc\"\nactivation_bits = 16\n", "report");
  CHECK(rule.status == 2);
  CHECK(contains(rule.output, "quantizer.rule[0].activation_bits: must be 2..8, or 32 for full precision, got 16"));

  Result unknown = saqhost_on(dir, kReport + "use = \"liq_wm\"\n", "validate");
  CHECK(unknown.status == 2);
  CHECK(contains(unknown.output, "p.toml:13:7: quantizer.use: unknown quantizer 'liq_wm'; did you mean 'liq_wn'?"));
  CHECK(contains(unknown.output, "dorefa, liq, liq_wn, lsq, pact"));

  Result choice = saqhost_on(dir, kReport + "use = \"liq_wn\"\nclip_init = \"bogus\"\n", "validate");
  CHECK(choice.status == 2);
  CHECK(contains(choice.output, "p.toml:14:13: quantizer.clip_init: must be one of \"code\", \"max\", got \"bogus\""));

  Result key = saqhost_on(dir, kReport + "use = \"lsq\"\nclip_init = \"max\"\n", "validate");
  CHECK(key.status == 2);
  CHECK(contains(key.output, "quantizer.clip_init: unknown key for quantizer 'lsq'"));
}

TEST_CASE("saqhost report prints the SAQ paper's 674.6 MBOPs for W4A4 PreResNet-20 on CIFAR-100 shapes") {
  TempDir dir;
  Result r = saqhost_on(dir, kReport + "use = \"liq_wn\"\n", "report");
  CHECK(r.status == 0);
  CHECK(contains(r.output, "**Total: 674.6 MBOPs (0.675 GBOPs)**"));
  CHECK(contains(r.output, "| layer3.0.downsample | conv | 64x32x1x1 | 4 | 4 | 131072 | 2.097 |"));  // 131,072·16
}

TEST_CASE("a two-stage run: FP32, then quantized from stage0.pt; report.md and summary.json carry the BOPs") {
  TempDir dir;
  Result r = saqhost_on(dir, kTwoStage, "run", "--set run.out_dir=" + (dir / "runs").string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  const fs::path run = dir / "runs" / "two";
  const std::string log = saq::test::read_file(run / "saqhost.log");
  CHECK(contains(log, "stage 0: full precision"));
  CHECK(contains(log, "stage 1: weights from " + (run / "checkpoints" / "stage0.pt").string()));
  CHECK(contains(log, "stage 1: quantized with 'liq_wn'"));
  CHECK(contains(log, "stage 2: quantized with 'liq_wn'"));
  CHECK(fs::exists(run / "checkpoints" / "stage1.pt"));

  // small_cnn width 4 on 1×12×12: conv1 1→4 @12² 9·4·144 = 5,184 MACs (w8, a32 counted 8: ·64 = 331,776);
  // conv2 4→4 @12² 9·16·144 = 20,736 and, after a 2×2 pool, conv3 4→8 @6² 9·32·36 = 10,368 and conv4 8→8 @6²
  // 9·64·36 = 20,736, at W4A4: 51,840·16 = 829,440; fc 8→10 = 80 at w8a8: 5,120.  Total 1,166,336 = 1.166 M.
  const std::string report = saq::test::read_file(run / "report.md");
  CHECK(contains(report, "**Total: 1.2 MBOPs (0.001 GBOPs)**"));
  CHECK(contains(report, "| conv1 | conv | 4x1x3x3 | 8 | 32 (counted 8) | 5184 | 0.332 |"));
  CHECK(contains(report, "| fc |"));
  const std::string summary = saq::test::read_file(run / "summary.json");
  CHECK(contains(summary, "\"quantizer\": \"liq_wn\""));
  CHECK(contains(summary, "\"bops\": {\"mbops\": 1.166336, "));
  CHECK(contains(summary, "\"layer_bits\": {\"conv1\": [8, 32], \"conv2\": [4, 4], \"conv3\": [4, 4], \"conv4\": [4, 4], "
                     "\"fc\": [8, 8]}"));
  // report.md names the quantizer, and the run's test top-1 as summary.json has it (to the hundredth)
  CHECK(contains(report, "Quantizer: `liq_wn` (weight_bits 4, activation_bits 4; per-layer bits below)."));
  const std::size_t at = summary.find("\"test_top1\": ");
  REQUIRE(at != std::string::npos);
  const double top1 = std::stod(summary.substr(at + 13));
  CHECK(contains(report, fmt::format("Test top-1: {:.2f}% (top-5 ", top1)));
}

TEST_CASE("init naming a missing checkpoint exits 2 naming the file and stage[N].init") {
  TempDir dir;
  const std::string missing = (dir / "nowhere" / "fp32.pt").string();
  std::string text = kTwoStage;
  text.replace(text.find("init = \"stage0\""), std::string("init = \"stage0\"").size(), "init = \"" + missing + "\"");
  Result r = saqhost_on(dir, text, "run",
                           "--set run.out_dir=" + (dir / "runs").string() + " --set stage.0.limit_batches=1");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "p.toml:25:8: stage[1].init: " + missing + ": no such checkpoint"));
  Result own = saqhost_on(dir, kTwoStage, "run", "--set run.out_dir=" + (dir / "runs2").string() +
                                                        " --set stage.1.init=stage7 --set stage.0.limit_batches=1");
  CHECK(own.status == 2);  // found before the run starts: stage 7 would run after stage 1, if there were one
  CHECK(contains(own.output, "--set stage.1.init=stage7: stage[1].init: \"stage7\" is not an earlier stage (this is stage 1)"));
  CHECK_FALSE(fs::exists(dir / "runs2"));
}

// saqhost with the sharpness-aware optimizers: one small quantized pipeline trains with sam, asam and esam and logs
// ρ and a finite sharpness; bad optimizer input exits 2 and names the key.
#include "unit.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "saqhost_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;

namespace {

using Result = saq::test::CliResult;
using saq::test::saqhost_on;

// small_cnn width 4 on 64 synthetic 12×12 images, 1 epoch of 4 steps, quantized with liq_wn (W4A4 inside).
const std::string kPipeline = R"([run]
name = "sa"
[data]
use = "synthetic"
size = 12
train_samples = 64
test_samples = 16
batch_size = 16
eval_batch_size = 16
[model]
use = "small_cnn"
width = 4
[quantizer]
use = "liq_wn"
[optimizer]
use = "sam"
rho = 0.1
base = { use = "sgd", lr = 0.05 }
[[stage]]
use = "train"
epochs = 1
)";

/// The number after "key": in the metrics line whose split is "train"; NaN when absent or null.
double train_metric(const std::string& metrics, const std::string& key) {
  const auto line_at = metrics.find("\"split\": \"train\"");
  if (line_at == std::string::npos) return std::nan("");
  const auto begin = metrics.rfind('\n', line_at), end = metrics.find('\n', line_at);
  const std::string line = metrics.substr(begin == std::string::npos ? 0 : begin + 1, end - begin);
  const std::string tag = "\"" + key + "\": ";
  const auto at = line.find(tag);
  if (at == std::string::npos || line.compare(at + tag.size(), 4, "null") == 0) return std::nan("");
  return std::strtod(line.c_str() + at + tag.size(), nullptr);
}

}  // namespace

TEST_CASE("saqhost trains a quantized model with sam, asam, esam, looksam, gsam and msam; metrics carry rho and a finite sharpness") {
  TempDir dir;
  for (const std::string use : {"sam", "asam", "esam", "looksam", "gsam", "msam"}) {
    CAPTURE(use);
    const fs::path out = dir / ("runs-" + use);
    // GSAM's ρ follows the learning rate down to rho_min: equal, it stays at ρ
    const std::string extra = use == "gsam" ? " --set optimizer.rho_min=0.1" : "";
    Result r = saqhost_on(dir, kPipeline, "run",
                          "--set run.out_dir=" + out.string() + " --set optimizer.use=" + use + extra);
    INFO(r.output);
    REQUIRE(r.status == 0);
    const std::string metrics = saq::test::read_file(out / "sa" / "metrics.jsonl");
    CHECK(train_metric(metrics, "rho") == doctest::Approx(0.1));
    if (use == "msam") continue;  // one pass at w̃: no clean loss to measure a sharpness against
    const double sharpness = train_metric(metrics, "sharpness");
    CHECK(std::isfinite(sharpness));
  }
}

TEST_CASE("bad sharpness-aware optimizer input exits 2 and names the key") {
  TempDir dir;
  Result rho = saqhost_on(dir, kPipeline, "validate", "--set optimizer.rho=-1");
  CHECK(rho.status == 2);
  CHECK(rho.has("optimizer.rho: must be in [0, inf), got -1"));

  Result beta = saqhost_on(dir, kPipeline, "validate", "--set optimizer.use=esam --set optimizer.beta=0");
  CHECK(beta.status == 2);
  CHECK(beta.has("optimizer.beta: must be in (0, 1], got 0"));
  Result gamma = saqhost_on(dir, kPipeline, "validate", "--set optimizer.use=esam --set optimizer.gamma=1.5");
  CHECK(gamma.status == 2);
  CHECK(gamma.has("optimizer.gamma: must be in (0, 1], got 1.5"));

  Result k = saqhost_on(dir, kPipeline, "validate", "--set optimizer.use=looksam --set optimizer.k=0");
  CHECK(k.status == 2);
  CHECK(k.has("optimizer.k: must be in [1, inf), got 0"));
  Result alpha = saqhost_on(dir, kPipeline, "validate", "--set optimizer.use=looksam --set optimizer.alpha=2");
  CHECK(alpha.status == 2);
  CHECK(alpha.has("optimizer.alpha: must be in [0, 1], got 2"));
  Result rho_min = saqhost_on(dir, kPipeline, "run",
                              "--set run.out_dir=" + (dir / "g").string() + " --set optimizer.use=gsam --set "
                              "optimizer.rho_min=0.5");
  CHECK(rho_min.status == 2);
  CHECK(rho_min.has("optimizer.rho_min: must be at most rho"));

  Result unknown = saqhost_on(dir, kPipeline, "validate", "--set optimizer.base.use=sgdd");
  CHECK(unknown.status == 2);
  CHECK(unknown.has("optimizer.base.use: unknown optimizer 'sgdd'"));

  // base = sam validates (its keys are sam's) and is refused when the optimizer is built, before any step
  const std::string sgd = "base = { use = \"sgd\", lr = 0.05 }";
  std::string nested = kPipeline;
  nested.replace(nested.find(sgd), sgd.size(), "base = { use = \"sam\" }");
  Result self = saqhost_on(dir, nested, "run", "--set run.out_dir=" + (dir / "runs").string());
  CHECK(self.status == 2);
  CHECK(self.has("optimizer.base: must be a first-order optimizer (sgd, adam, ...), got \"sam\""));
}

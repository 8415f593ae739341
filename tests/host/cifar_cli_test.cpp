// saqhost on a CIFAR-100 python release written here: a two-stage run ends with exit 0 and state_dicts beside
// its checkpoints, a stage starts from a .pth by name (strictly, or partially for another class count), and data
// is read only by `run` — missing data fails there with exit 2, never in validate or report.
#include "unit.hpp"

#include <filesystem>
#include <string>

#include <saq/torch_file.hpp>

#include "cifar_writer.hpp"
#include "saqhost_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;

namespace {

using Result = saq::test::CliResult;
using saq::test::saqhost_on;

std::string pipeline(const fs::path& root, const std::string& extra_data, const std::string& stages) {
  return "[run]\nname = \"c\"\n[data]\nuse = \"cifar100\"\nroot = \"" + root.string() + "\"\n" + extra_data +
         "batch_size = 50\neval_batch_size = 100\n[model]\nuse = \"small_cnn\"\nwidth = 4\n"
         "[quantizer]\nuse = \"liq_wn\"\n[optimizer]\nuse = \"sgd\"\nlr = 0.05\n" + stages;
}

const std::string kTwoStages =
    "[[stage]]\nuse = \"train\"\nepochs = 1\nquantized = false\n"
    "[[stage]]\nuse = \"train\"\nepochs = 1\ninit = \"stage0\"\n";

bool has_key(const saq::NamedTensors& t, const std::string& part) {
  for (const auto& [name, v] : t)
    if (name.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("cifar100 end to end: FP32 then quantized, each stage's state_dict written, then init from a .pth") {
  TempDir dir;
  saq::test::write_cifar100_python(dir / "data", 300, 100);
  const std::string out = "--set run.out_dir=" + (dir / "runs").string();
  Result r = saqhost_on(dir, pipeline(dir / "data", "", kTwoStages), "run", out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const fs::path ck = dir / "runs/c/checkpoints";
  CHECK(fs::exists(dir / "runs/c/summary.json"));
  CHECK(saq::test::read_file(dir / "runs/c/summary.json").find("\"test_samples\": 100") != std::string::npos);
  for (const char* f : {"stage0.pt", "stage0.pth", "stage1.pth", "final.pth"}) CHECK(fs::exists(ck / f));
  saq::NamedTensors fp = saq::read_state_dict((ck / "stage0.pth").string());
  saq::NamedTensors q = saq::read_state_dict((ck / "final.pth").string());
  CHECK(has_key(fp, "running_var"));
  CHECK(!has_key(fp, "_quantizer."));  // the FP32 stage has no quantizers yet
  CHECK(has_key(q, "_quantizer."));    // the quantized model's clip values are saved with it

  // A fresh run starts its quantized stage from the FP32 .pth, by name.
  const std::string from_file = "[[stage]]\nuse = \"train\"\nepochs = 1\ninit = \"" + (ck / "stage0.pth").string() + "\"\n";
  Result again = saqhost_on(dir, pipeline(dir / "data", "", from_file), "run", out);
  CHECK(again.status == 0);
  CHECK(again.has("weights from " + (ck / "stage0.pth").string() + ": "));

  // The 20 superclasses need another classifier: strict init fails listing it, partial init loads the rest.
  Result strict = saqhost_on(dir, pipeline(dir / "data", "labels = \"coarse\"\n", from_file), "run", out);
  CHECK(strict.status == 2);
  CHECK(strict.has((ck / "stage0.pth").string() + ": does not match the model"));
  CHECK(strict.has("of another shape (2): "));
  CHECK(strict.has("model [20"));
  Result partial = saqhost_on(dir, pipeline(dir / "data", "labels = \"coarse\"\n", from_file + "init_partial = true\n"),
                              "run", out);
  CHECK(partial.status == 0);
  CHECK(partial.has("partially"));
}

TEST_CASE("cifar100 without its files: validate and report succeed, run and an eval stage exit 2 naming them") {
  TempDir dir;
  const fs::path none = dir / "none";
  const std::string eval = "[[stage]]\nuse = \"eval\"\n";
  CHECK(saqhost_on(dir, pipeline(none, "", kTwoStages), "validate").status == 0);
  Result report = saqhost_on(dir, pipeline(none, "", eval), "report");
  CHECK(report.status == 0);
  CHECK(report.has("BOPs"));
  for (const std::string& stages : {kTwoStages, eval}) {
    Result run = saqhost_on(dir, pipeline(none, "", stages), "run", "--set run.out_dir=" + (dir / "runs").string());
    CHECK(run.status == 2);
    CHECK(run.has("data.root: " + none.string() + ": no CIFAR-100 files (looked for " +
                  (none / "cifar-100-python/train").string()));
  }
}

// saqhost as a user meets it: every bad input exits 2 with a message naming the file, line and key.
#include "unit.hpp"

#include <filesystem>

#include "saqhost_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;

namespace {

const char* kGood = R"([run]
name = "cli"
[data]
use = "synthetic"
train_samples = 256
test_samples = 64
batch_size = 64
[model]
use = "small_cnn"
width = 4
[optimizer]
use = "sgd"
lr = 0.05
[[stage]]
use = "train"
epochs = 1
)";

using Result = saq::test::CliResult;
using saq::test::saqhost;
using saq::test::saqhost_on;

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

bool has(const Result& r, const std::string& s) { return r.output.find(s) != std::string::npos; }

}  // namespace

TEST_CASE("a valid pipeline validates and prints its resolved form") {
  TempDir dir;
  Result r = saqhost_on(dir, kGood);
  CHECK(r.status == 0);
  CHECK(has(r, "momentum = 0.9"));  // a default written out
}

TEST_CASE("validate and report of several files take each: an error for each bad one in order, the good ones done") {
  TempDir dir;
  saq::test::write_file(dir / "a.toml", kGood);
  saq::test::write_file(dir / "b.toml", replaced(kGood, "width = 4", "widht = 4"));
  saq::test::write_file(dir / "c.toml", kGood);
  saq::test::write_file(dir / "d.toml", replaced(kGood, "lr = 0.05", "lr = = 0.05"));
  const std::string d = dir.path().string();
  Result r = saqhost("validate " + d + "/a.toml " + d + "/b.toml " + d + "/c.toml " + d + "/d.toml --set stage.0.epochs=2");
  CHECK(r.status == 2);
  CHECK(saq::test::occurrences(r.output, "saqhost: error: ") == 2);
  const auto b = r.output.find("b.toml:10:1: model.widht: unknown key"), dd = r.output.find("d.toml:13:");
  CHECK(b != std::string::npos);
  CHECK(dd != std::string::npos);
  CHECK(b < dd);
  CHECK(has(r, d + "/a.toml is valid"));
  CHECK(has(r, d + "/c.toml is valid"));
  CHECK_FALSE(has(r, "momentum = 0.9"));  // no resolved pipeline printed for several
  // --set applies to each file: a bad override makes every file bad
  Result s = saqhost("validate " + d + "/a.toml " + d + "/c.toml --set stage.0.epochs=-1");
  CHECK(s.status == 2);
  CHECK(saq::test::occurrences(s.output, "stage.0.epochs") >= 2);
  CHECK(saqhost("validate -q " + d + "/a.toml " + d + "/c.toml").status == 0);
  // report likewise: a's report, b's error, c's report
  Result p = saqhost("report -q " + d + "/a.toml " + d + "/b.toml " + d + "/c.toml");
  CHECK(p.status == 2);
  CHECK(saq::test::occurrences(p.output, "saqhost: error: ") == 1);
  CHECK(has(p, "# " + d + "/a.toml\n"));
  CHECK(has(p, "# " + d + "/c.toml\n"));
  CHECK(saq::test::occurrences(p.output, "**Total: ") == 2);
}

TEST_CASE("malformed TOML names the line and column") {
  TempDir dir;
  Result r = saqhost_on(dir, replaced(kGood, "lr = 0.05", "lr = = 0.05"));
  CHECK(r.status == 2);
  CHECK(has(r, "p.toml:13:"));
  CHECK(has(r, "TOML syntax error"));
}

TEST_CASE("an unknown plugin lists what exists and suggests the closest") {
  TempDir dir;
  Result r = saqhost_on(dir, replaced(kGood, "use = \"sgd\"", "use = \"sgdd\""));
  CHECK(r.status == 2);
  CHECK(has(r, "p.toml:12:7: optimizer.use: unknown optimizer 'sgdd'; did you mean 'sgd'?"));
  CHECK(has(r, "available: adam, adamw, asam, esam, gsam, looksam, msam, sam, sgd"));
}

TEST_CASE("an unknown key suggests the closest and names file:line and section.key") {
  TempDir dir;
  Result r = saqhost_on(dir, replaced(kGood, "width = 4", "widht = 4"));
  CHECK(r.status == 2);
  CHECK(has(r, "p.toml:10:1: model.widht: unknown key for model 'small_cnn'; did you mean 'width'?"));
}

TEST_CASE("a wrong type or an out-of-range value names the key") {
  TempDir dir;
  Result t = saqhost_on(dir, replaced(kGood, "lr = 0.05", "lr = \"fast\""));
  CHECK(t.status == 2);
  CHECK(has(t, "p.toml:13:6: optimizer.lr: expected a number, got string"));
  Result r = saqhost_on(dir, replaced(kGood, "lr = 0.05", "lr = -1"));
  CHECK(r.status == 2);
  CHECK(has(r, "optimizer.lr: must be in (0, inf), got -1"));
  Result s = saqhost_on(dir, kGood, "validate", "--set stage.0.epochs=0");
  CHECK(s.status == 2);
  CHECK(has(s, "--set stage.0.epochs=0: stage[0].epochs: must be in [1, inf), got 0"));
}

TEST_CASE("a missing or truncated data file is named, with the key that points at it") {
  TempDir dir;
  Result missing = saqhost_on(dir, replaced(replaced(kGood, "use = \"synthetic\"", "use = \"fashion_mnist\""),
                                               "train_samples = 256\ntest_samples = 64\n",
                                               "root = \"" + (dir / "nothing").string() + "\"\n"),
                                 "run", "--set run.out_dir=" + (dir / "runs").string());
  CHECK(missing.status == 2);
  CHECK(has(missing, "data.root: " + (dir / "nothing/train-images-idx3-ubyte.gz").string() + ": no such file"));

  fs::create_directories(dir / "fm");
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"})
    fs::copy_file(fs::path("/usr/share/datasets/fashion-mnist") / f, dir / "fm" / f);
  fs::resize_file(dir / "fm/t10k-images-idx3-ubyte.gz", 100000);  // cut the gzip stream
  Result cut = saqhost_on(dir, replaced(replaced(kGood, "use = \"synthetic\"", "use = \"fashion_mnist\""),
                                           "train_samples = 256\ntest_samples = 64\n",
                                           "root = \"" + (dir / "fm").string() + "\"\n"),
                             "run", "--set run.out_dir=" + (dir / "runs").string());
  CHECK(cut.status == 2);
  CHECK(has(cut, (dir / "fm/t10k-images-idx3-ubyte.gz").string()));
}

TEST_CASE("a plugin built for another ABI, named on the command line, is refused with both versions") {
  TempDir dir;
  std::string lib = (fs::path(saq::test::env("SAQ_FIXTURE_DIR")) / "libfixture_wrong_abi.so").string();
  Result r = saqhost_on(dir, kGood, "validate", "--plugin-path " + lib);
  CHECK(r.status == 2);
  CHECK(has(r, lib));
  CHECK(has(r, "built for SAQ ABI " + std::to_string(SAQ_ABI_VERSION + 1)));
  CHECK(has(r, "this host is SAQ ABI " + std::to_string(SAQ_ABI_VERSION)));
}

TEST_CASE("a component whose factory throws is reported and the host exits cleanly") {
  TempDir dir;
  std::string lib = (fs::path(saq::test::env("SAQ_FIXTURE_DIR")) / "libfixture_throws_in_factory.so").string();
  Result r = saqhost_on(dir, replaced(replaced(kGood, "use = \"small_cnn\"", "use = \"exploding\""), "width = 4", ""),
                           "run", "--plugin-path " + lib + " --set run.out_dir=" + (dir / "runs").string());
  CHECK(r.status == 2);
  CHECK(has(r, "model 'exploding'"));
  CHECK(has(r, "constructor failed on purpose"));
}

TEST_CASE("plugins lists every component; --describe prints each parameter") {
  Result list = saqhost("plugins");
  CHECK(list.status == 0);
  for (const char* line : {"dataset\tfashion_mnist\t", "dataset\tsynthetic\t", "model\tsmall_cnn\t",
                           "model\tsmall_resnet\t", "optimizer\tsgd\t", "optimizer\tadam\t", "optimizer\tadamw\t"})
    CHECK(has(list, line));
  Result sgd = saqhost("plugins --describe sgd");
  CHECK(sgd.status == 0);
  CHECK(has(sgd, "lr : float = 0.1  range (0, inf)"));
  CHECK(has(sgd, "nesterov : bool = false"));
  CHECK(has(sgd, "Nesterov momentum"));
  Result train = saqhost("plugins --describe train");
  CHECK(has(train, "schedule : string = \"cosine\"  one of constant | cosine | multistep | step"));
  CHECK(has(train, "optimizer : component (optimizer) = (optional, no default)"));
  Result quantizer = saqhost("plugins --describe liq_wn");
  CHECK(has(quantizer, "host keys of [quantizer] (read by saqhost for every quantizer):"));
  CHECK(has(quantizer, "first_weight_bits : int = 8"));
  CHECK(has(quantizer, "rules_file : string"));
  Result unknown = saqhost("plugins --describe sgf");
  CHECK(unknown.status == 2);
  CHECK(has(unknown, "did you mean 'sgd'?"));
}

TEST_CASE("--help, --version and an unknown command") {
  CHECK(saqhost("--help").status == 0);
  Result v = saqhost("--version");
  CHECK(v.status == 0);
  CHECK(has(v, "SDK ABI " + std::to_string(SAQ_ABI_VERSION)));
  Result u = saqhost("rnu x.toml");
  CHECK(u.status == 2);
  CHECK(has(u, "did you mean 'run'?"));
}

TEST_CASE("a run writes the resolved pipeline, metrics and summary; --set swaps a component") {
  TempDir dir;
  Result r = saqhost_on(dir, kGood, "run", "--set optimizer.use=adam --set optimizer.lr=0.01 --set run.out_dir=" +
                                                  (dir / "runs").string());
  REQUIRE(r.status == 0);
  std::string resolved = saq::test::read_file(dir / "runs/cli/config.resolved.toml");
  CHECK(resolved.find("use = \"adam\"") != std::string::npos);
  CHECK(resolved.find("beta2 = 0.999") != std::string::npos);
  std::string summary = saq::test::read_file(dir / "runs/cli/summary.json");
  CHECK(summary.find("\"optimizer\": \"adam\"") != std::string::npos);
  CHECK(summary.find("\"test_top1\": ") != std::string::npos);
  CHECK(fs::file_size(dir / "runs/cli/checkpoints/final.pt") > 0);
}

TEST_CASE("a non-finite loss stops the run with exit 1, naming stage, epoch and step; earlier checkpoints stay") {
  TempDir dir;
  // Stage 1's learning rate of 1e38 overflows the weights to inf in its first step; the next loss is not finite.
  std::string text = std::string(kGood) + "[[stage]]\nuse = \"train\"\nepochs = 1\n"
                                          "optimizer = { use = \"sgd\", lr = 1e38, momentum = 0.9 }\n";
  Result r = saqhost_on(dir, text, "run", "--set run.out_dir=" + (dir / "runs").string());
  CHECK(r.status == 1);
  CHECK(has(r, "non-finite loss or gradients"));
  CHECK(has(r, "at stage 1, epoch 1, step "));
  CHECK(fs::file_size(dir / "runs/cli/checkpoints/stage0.pt") > 0);
  CHECK_FALSE(fs::exists(dir / "runs/cli/checkpoints/stage1.pt"));
  CHECK_FALSE(fs::exists(dir / "runs/cli/summary.json"));
}

TEST_CASE("a run directory's config.resolved.toml loads as the pipeline did, global_batch_size included") {
  // written out, a defaulted batch_size would read back as given beside global_batch_size (two exclusive keys)
  TempDir dir;
  const std::string text = replaced(kGood, "batch_size = 64", "global_batch_size = 64") + "limit_batches = 1\n";
  Result r = saqhost_on(dir, replaced(text, "name = \"cli\"", "name = \"g\"\nout_dir = \"" + (dir / "runs").string() + "\""),
                        "run", "-q");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const fs::path resolved = dir / "runs" / "g" / "config.resolved.toml";
  CHECK(saq::test::read_file(resolved).find("# batch_size: unused, global_batch_size decides") != std::string::npos);
  r = saqhost("validate " + resolved.string() + " -q");
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK(has(r, "global_batch_size = 64"));
}

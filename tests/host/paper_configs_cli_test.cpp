// The shipped pipelines: every file under configs/ validates and reports its BOPs without data, the paper's
// CIFAR-100 configurations give the paper's BOPs, and the PreResNet-20 W4A4 recipe runs end to end on a
// CIFAR-100 python release written here, shrunk with --set for a smoke run.
#include "unit.hpp"

#include <filesystem>
#include <regex>
#include <string>

#include "cifar_writer.hpp"
#include "saqhost_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;
using Result = saq::test::CliResult;

namespace {

fs::path configs() { return fs::path(saq::test::env("SAQ_SOURCE_ROOT")) / "configs"; }

/// "Total: 674.6 MBOPs" from a report; -1 when absent.
double total_mbops(const std::string& report) {
  std::smatch m;
  if (!std::regex_search(report, m, std::regex("Total: ([0-9.]+) MBOPs"))) return -1;
  return std::stod(m[1]);
}

}  // namespace

TEST_CASE("every shipped pipeline validates and reports its BOPs without any data on disk") {
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(configs()))
    if (entry.path().extension() == ".toml") files.push_back(entry.path().string());
  CHECK(files.size() >= 10);
  std::string all;
  for (const auto& f : files) all += " " + f;
  Result v = saq::test::saqhost("validate" + all);  // one start for all of them
  INFO(v.output);
  CHECK(v.status == 0);
  Result r = saq::test::saqhost("report -q" + all);  // one report after another, each headed "# FILE"
  CHECK(r.status == 0);
  for (size_t i = 0; i < files.size(); ++i) {
    CAPTURE(files[i]);
    CHECK(v.has(files[i] + " is valid"));
    const std::string own = saq::test::between(r.output, "# " + files[i] + "\n",
                                               i + 1 < files.size() ? "# " + files[i + 1] + "\n" : "");
    REQUIRE_FALSE(own.empty());
    CHECK(total_mbops(own) > 0);
  }
}

TEST_CASE("the paper's CIFAR-100 PreResNet-20 configurations report the paper's BOPs") {
  // §4 of the paper's accounting: 674.6 MBOPs at W4A4, 392.1 at W3A3 (stem w8a32, classifier w8a8)
  CHECK(total_mbops(saq::test::saqhost("report -q " + (configs() / "paper/cifar100_preresnet20_w4a4.toml").string()).output) ==
        doctest::Approx(674.6).epsilon(1e-4));
  CHECK(total_mbops(saq::test::saqhost("report -q " + (configs() / "paper/cifar100_preresnet20_w3a3.toml").string()).output) ==
        doctest::Approx(392.1).epsilon(1e-4));
}

TEST_CASE("the CIFAR-100 PreResNet-20 W4A4 recipe runs end to end on CIFAR-100-format data, shrunk by --set") {
  TempDir dir;
  saq::test::write_cifar100_python(dir / "data", 256, 100);
  Result r = saq::test::saqhost(
      "run -q " + (configs() / "paper/cifar100_preresnet20_w4a4.toml").string() + " --set run.out_dir=" +
      (dir / "runs").string() + " --set data.root=" + (dir / "data").string() +
      " --set stage.0.init= --set stage.0.epochs=1 --set stage.0.limit_batches=2 --set stage.0.milestones=[]");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const fs::path run = dir / "runs/cifar100_preresnet20_w4a4";
  CHECK(saq::test::read_file(run / "summary.json").find("\"test_samples\": 100") != std::string::npos);
  CHECK(total_mbops(saq::test::read_file(run / "report.md")) == doctest::Approx(674.6).epsilon(1e-4));
  CHECK(saq::test::read_file(run / "metrics.jsonl").find("\"rho\": 0.4") != std::string::npos);
}

// saqhost's search stage on a small synthetic model: SAMQ's BOPs penalty pulls the generator toward the target and
// the derived bits lie in the window; search/result.toml drives a fine-tune stage here and another pipeline via
// quantizer.rules_file; the baselines pick what a hand computation says; an impossible budget is a clear error.
#include "unit.hpp"

#include <cmath>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "saqhost_cli.hpp"
#include "search_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;

namespace {

using Result = saq::test::CliResult;

using namespace saq::search_test;

void write_file_for(const TempDir& dir, const std::string& text) { saq::test::write_file(dir / "p.toml", text); }

double json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  REQUIRE(std::regex_search(json, m, std::regex("\"" + key + "\": ([-0-9.e]+)")));
  return std::stod(m[1]);
}

}  // namespace

TEST_CASE("samq: the BOPs penalty pulls the generator to the target, the result lies in the window and is fine-tuned") {
  TempDir dir;
  const std::string search = "epochs = 10\nsearch = { use = \"samq\", bit_warmup_epochs = 1, derive_samples = 3, "
                             "loss_lambda = 20.0, c_lr = 0.01, entropy_coeff = 0.0, score_batches = 2 }\n";
  Result r = saq::test::saqhost_on(dir, pipeline((dir / "runs").string(), search, 0.6, 0.1), "run");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const fs::path run = dir / "runs" / "s";
  const auto bits = result_bits(saq::test::read_file(run / "search" / "result.toml"));
  REQUIRE(bits.size() == 3);
  std::vector<int> w;
  for (const auto& [wb, ab] : bits) {
    CHECK(wb == ab);  // one shared decision per layer
    w.push_back(wb);
  }
  const double mbops = hand_mbops(w);
  CHECK(mbops >= 0.5 - 1e-9);
  CHECK(mbops <= 0.6 + 1e-9);
  // the fine-tune stage's BOPs (summary.json) are the searched ones
  CHECK(json_number(saq::test::read_file(run / "summary.json"), "mbops") == doctest::Approx(mbops));
  CHECK(saq::test::read_file(run / "report.md").find("| conv3 | conv | 8x4x3x3 | " + std::to_string(w[1]) + " | " +
                                                     std::to_string(w[1]) + " |") != std::string::npos);
  // Random bits average 3.5 per layer (≈ 1.04 MBOPs); the generator epochs move the mean toward 0.6.
  std::vector<double> means;
  std::istringstream metrics(saq::test::read_file(run / "metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);)
    if (line.find("\"search_epoch\"") != std::string::npos && line.find("\"mbops\"") != std::string::npos)
      means.push_back(json_number(line, "mbops"));
  REQUIRE(means.size() == 9);
  const double last = (means[7] + means[8]) / 2;
  CHECK(std::abs(last - 0.6) < std::abs(means[0] - 0.6));
  CHECK(fs::exists(run / "search" / "state.pt"));

  // Another pipeline reads the result as rules: its layers run at those bits.
  TempDir other;
  std::string again = "[run]\nname = \"t\"\nout_dir = \"" + (other / "runs").string() + R"("
[data]
use = "synthetic"
size = 12
train_samples = 32
test_samples = 16
batch_size = 16
[model]
use = "small_cnn"
width = 4
[quantizer]
use = "liq_wn"
rules_file = ")" + (run / "search" / "result.toml").string() + R"("
[optimizer]
use = "sgd"
[[stage]]
use = "train"
epochs = 1
)";
  Result t = saq::test::saqhost_on(other, again, "run");
  REQUIRE_MESSAGE(t.status == 0, t.output);
  const std::string summary = saq::test::read_file(other / "runs" / "t" / "summary.json");
  CHECK(json_number(summary, "mbops") == doctest::Approx(mbops));
  CHECK(summary.find("\"conv2\": [" + std::to_string(w[0]) + ", " + std::to_string(w[0]) + "]") != std::string::npos);
  CHECK(summary.find("\"conv4\": [" + std::to_string(w[2]) + ", " + std::to_string(w[2]) + "]") != std::string::npos);
}

TEST_CASE("samq: a search killed between epochs resumes from search/state.pt and ends as an uninterrupted one") {
  TempDir dir;
  const std::string search = "epochs = 4\nlimit_batches = 3\nsearch = { use = \"samq\", bit_warmup_epochs = 1, "
                             "derive_samples = 2, score_batches = 2 }\n";
  write_file_for(dir, pipeline((dir / "runs").string(), search, 0.9, 0.3));
  Result whole = saq::test::saqhost("run " + (dir / "p.toml").string());
  REQUIRE_MESSAGE(whole.status == 0, whole.output);
  const fs::path run = dir / "runs" / "s";
  // stage 0 takes 2 steps and each search epoch counts as one: killed after search epoch 2
  Result killed = saq::test::saqhost_cmd("SAQ_FAULT_AFTER_STEP=4", "run " + (dir / "p.toml").string());
  CHECK(killed.status == 128 + 9);
  Result resumed = saq::test::saqhost("resume " + (dir / "runs" / "s.1").string());
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  CHECK(resumed.has("samq: resuming from"));
  CHECK(saq::test::read_file(dir / "runs" / "s.1" / "search" / "result.toml") ==
        saq::test::read_file(run / "search" / "result.toml"));
  auto last_epoch = [](const fs::path& metrics) {
    std::istringstream in(saq::test::read_file(metrics));
    std::string found;
    for (std::string line; std::getline(in, line);)
      if (line.find("\"search_epoch\", \"epoch\": 4,") != std::string::npos) found = line;
    return found;
  };
  CHECK(!last_epoch(run / "metrics.jsonl").empty());
  CHECK(last_epoch(dir / "runs" / "s.1" / "metrics.jsonl") == last_epoch(run / "metrics.jsonl"));
}

TEST_CASE("uniform: the largest uniform bit-width under the target; none fits is a clear error") {
  TempDir dir;
  // uniform 3 bits: 0.803456 MBOPs ≤ 0.9 < 1.167296 (4 bits)
  Result r = saq::test::saqhost_on(dir, pipeline((dir / "runs").string(), "search = { use = \"uniform\" }\n", 0.9, 10),
                                   "run");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const auto bits = result_bits(saq::test::read_file(dir / "runs" / "s" / "search" / "result.toml"));
  CHECK(bits == std::vector<std::pair<int, int>>{{3, 3}, {3, 3}, {3, 3}});
  CHECK(json_number(saq::test::read_file(dir / "runs" / "s" / "summary.json"), "mbops") ==
        doctest::Approx(hand_mbops({3, 3, 3})));

  Result none = saq::test::saqhost_on(dir, pipeline((dir / "runs").string(), "search = { use = \"uniform\" }\n", 0.5, 10),
                                      "run");
  CHECK(none.status == 1);
  CHECK(none.has("search 'uniform': no uniform bit-width fits the target 0.500 MBOPs: the smallest choice gives "
                 "0.544 MBOPs"));
}

TEST_CASE("random and samq: a window no configuration reaches is a clear error after the capped draws") {
  TempDir dir;
  // every layer at 2 bits gives 0.544256 MBOPs, the least there is; the window [0.49, 0.5] is out of reach
  for (const std::string use : {"random", "samq"}) {
    CAPTURE(use);
    Result r = saq::test::saqhost_on(
        dir, pipeline((dir / "runs").string(), "epochs = 0\nsearch = { use = \"" + use + "\", max_attempts = 500 }\n", 0.5, 0.01),
        "run");
    CHECK(r.status == 1);
    CHECK(r.has("no configuration inside the BOPs window after 500 draws: best BOPs seen 0.544256 MBOPs vs window "
                "[0.490000, 0.500000]"));
  }
  // random, feasible: the least sharp of its candidates, inside the window
  Result ok = saq::test::saqhost_on(
      dir, pipeline((dir / "runs").string(), "epochs = 1\nlimit_batches = 2\nsearch = { use = \"random\", candidates = 3, score_batches = 2 }\n", 0.9, 0.2),
      "run");
  REQUIRE_MESSAGE(ok.status == 0, ok.output);
  const std::string last = (dir / "runs" / "s.2").string();  // the third run of this folder
  std::vector<int> w;
  for (const auto& [wb, ab] : result_bits(saq::test::read_file(fs::path(last) / "search" / "result.toml"))) w.push_back(wb);
  REQUIRE(w.size() == 3);
  CHECK(hand_mbops(w) <= 0.9 + 1e-9);
  CHECK(hand_mbops(w) >= 0.7 - 1e-9);
}

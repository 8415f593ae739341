// The search stage on 2 processes: samq and random on a small synthetic model run data-parallel, every rank
// drawing the same bits and deriving the same configuration (the fine-tuning stage after the search logs, on
// each rank, a digest of weights and per-layer bits after every step: they agree), and the result lies in the
// BOPs window by a hand count of the model's MACs.
#include "unit.hpp"

#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "saqhost_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;

namespace {

// small_cnn width 4 on 12x12 images: the fixed layers (conv1 at w8 with 8-bit input, fc at w8a8) give 336896 BOPs;
// the searched conv2, conv3, conv4 have 20736, 10368, 20736 MACs.
double hand_mbops(const std::string& result_toml) {
  const std::map<std::string, double> macs = {{"conv2", 20736}, {"conv3", 10368}, {"conv4", 20736}};
  std::regex rule("match = \"(conv[234])\"\nweight_bits = ([0-9])\nactivation_bits = ([0-9])");
  double bops = 336896;
  int rules = 0;
  for (std::sregex_iterator it(result_toml.begin(), result_toml.end(), rule), end; it != end; ++it, ++rules)
    bops += macs.at((*it)[1]) * std::stoi((*it)[2]) * std::stoi((*it)[3]);
  REQUIRE(rules == 3);
  return bops / 1e6;
}

std::string pipeline(const std::string& search) {
  return R"([run]
name = "s"
threads = 1
tensorboard = false
[data]
use = "synthetic"
size = 12
train_samples = 512
test_samples = 16
batch_size = 8
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
quantized = false
limit_batches = 2
optimizer = { use = "sgd", lr = 0.05 }
[[stage]]
use = "search"
init = "stage0"
target_mbops = 0.6
window_mbops = 0.1
)" + search + R"(
[[stage]]
use = "train"
epochs = 1
init = "stage0"
limit_batches = 4
)";
}

/// step -> rank -> the digest that rank logged after it
std::map<int, std::map<int, std::string>> digests(const std::string& output) {
  std::map<int, std::map<int, std::string>> d;
  static const std::regex line(R"((\[rank 1\] )?\S*warning\S* weight digest after step (\d+): (\S+))");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it)
    d[std::stoi((*it)[2])][(*it)[1].matched ? 1 : 0] = (*it)[3];
  return d;
}

}  // namespace

TEST_CASE("samq and random search on 2 ranks: the same bits on every rank, inside the BOPs window") {
  const std::vector<std::string> searches = {
      "epochs = 4\nlimit_batches = 6\nsearch = { use = \"samq\", bit_warmup_epochs = 1, derive_samples = 3, "
      "loss_lambda = 20.0, c_lr = 0.01, entropy_coeff = 0.0, score_batches = 2 }",
      "epochs = 2\nlimit_batches = 6\nsearch = { use = \"random\", candidates = 3, score_batches = 2 }"};
  for (const auto& search : searches) {
    CAPTURE(search);
    TempDir dir;
    saq::test::write_file(dir / "p.toml", pipeline(search));
    auto r = saq::test::saqhost_cmd("SAQ_TEST_WEIGHT_DIGEST=1", "run " + (dir / "p.toml").string() +
                                                                    " --nproc 2 --set run.out_dir=" + (dir / "runs").string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    const fs::path run = dir / "runs" / "s";
    const double mbops = hand_mbops(saq::test::read_file(run / "search" / "result.toml"));
    CHECK(mbops >= 0.5 - 1e-9);
    CHECK(mbops <= 0.6 + 1e-9);
    const auto d = digests(r.output);
    REQUIRE(d.size() >= 4);
    for (const auto& entry : d) {  // no structured binding: CAPTURE is a lambda (clang)
      const int step = entry.first;
      const auto& by_rank = entry.second;
      CAPTURE(step);
      REQUIRE(by_rank.size() == 2);
      CHECK(by_rank.at(0) == by_rank.at(1));
    }
    CHECK_FALSE(fs::exists(dir / "runs" / "s.1"));
  }
}

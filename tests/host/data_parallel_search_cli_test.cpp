// The search stage on 2 processes: samq and random on the search tests' small synthetic model run data-parallel,
// every rank drawing the same bits and deriving the same configuration (each rank logs, after every training
// step of the stages around the search, a digest of its weights and per-layer bits: they agree), and the result
// lies in the BOPs window by a hand count of the model's MACs.
#include "unit.hpp"

#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "saqhost_cli.hpp"
#include "search_cli.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::test::TempDir;

namespace {

/// Per rank, in order, "step: digest" for every step it logged (steps count from 1 again in each stage).
std::map<int, std::vector<std::string>> digests(const std::string& output) {
  std::map<int, std::vector<std::string>> d;
  static const std::regex line(R"((\[rank 1\] )?\S*warning\S* weight digest after step (\d+: \S+))");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it)
    d[(*it)[1].matched ? 1 : 0].push_back((*it)[2]);
  return d;
}

}  // namespace

TEST_CASE("samq and random search on 2 ranks: the same bits on every rank, inside the BOPs window") {
  const std::vector<std::string> searches = {
      "epochs = 4\nlimit_batches = 6\nsearch = { use = \"samq\", bit_warmup_epochs = 1, derive_samples = 3, "
      "loss_lambda = 20.0, c_lr = 0.01, entropy_coeff = 0.0, score_batches = 2 }\n",
      "epochs = 2\nlimit_batches = 6\nsearch = { use = \"random\", candidates = 3, score_batches = 2 }\n"};
  for (const auto& search : searches) {
    CAPTURE(search);
    TempDir dir;
    // 8 samples per rank: the global batch of the single-process search tests
    saq::test::write_file(dir / "p.toml", saq::search_test::pipeline((dir / "runs").string(), search, 0.6, 0.1));
    auto r = saq::test::saqhost_cmd("SAQ_TEST_WEIGHT_DIGEST=1",
                               "run " + (dir / "p.toml").string() + " --nproc 2 --set run.threads=1 --set "
                               "data.batch_size=8 --set stage.2.limit_batches=3");
    INFO(r.output);
    REQUIRE(r.status == 0);
    const fs::path run = dir / "runs" / "s";
    std::vector<int> bits;
    for (const auto& wa : saq::search_test::result_bits(saq::test::read_file(run / "search" / "result.toml")))
      bits.push_back(wa.first);
    REQUIRE(bits.size() == 3);
    const double mbops = saq::search_test::hand_mbops(bits);
    CHECK(mbops >= 0.5 - 1e-9);
    CHECK(mbops <= 0.6 + 1e-9);
    auto d = digests(r.output);
    CHECK(d[0].size() == 5);  // stage 0: 2 steps, the fine-tuning stage: 3
    CHECK(d[0] == d[1]);
    CHECK_FALSE(fs::exists(dir / "runs" / "s.1"));
  }
}

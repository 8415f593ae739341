// Baseline bit searches: the largest uniform bit-width under the budget, and the best of K random
// configurations inside the window by the SAQ sharpness criterion.
#include <cstdio>
#include <limits>
#include <stdexcept>

#include <saq/sdk.hpp>

#include "../common/search_common.hpp"

namespace saq::plugins {

namespace {
std::string mb(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}
}  // namespace

/// b* = max{ b ∈ choices : BOPs(every searchable layer at w_b a_b) ≤ target }
class UniformSearch final : public Search {
 public:
  UniformSearch(const Params&, const Context&) {}
  static Schema schema() { return Schema(); }

  SearchResult run(SearchContext& ctx) override {
    int best = 0;
    double best_mbops = 0, smallest = std::numeric_limits<double>::infinity();
    for (int b : ctx.bit_choices) {
      const double m = ctx.mbops(BitConfig(ctx.layers.size(), {b, b}));
      smallest = std::min(smallest, m);
      if (m <= ctx.target_mbops && b > best) best = b, best_mbops = m;
    }
    if (best == 0)
      throw std::runtime_error("no uniform bit-width fits the target " + mb(ctx.target_mbops) +
                               " MBOPs: the smallest choice gives " + mb(smallest) + " MBOPs");
    ctx.log->info("uniform: w" + std::to_string(best) + "a" + std::to_string(best) + " on every searchable layer, " +
                  mb(best_mbops) + " MBOPs");
    return to_result(ctx, BitConfig(ctx.layers.size(), {best, best}));
  }
};

/// Trains the supernet (as samq's: per-bit clips and norms by default) `epochs` epochs at uniformly random bits per batch, then draws configurations uniformly
/// until `candidates` lie inside [target − window, target] and keeps the one of least sharpness
/// L(Q(w)+ε) − L(Q(w)) on the generator split.
class RandomSearch final : public Search {
 public:
  RandomSearch(const Params& p, const Context&)
      : candidates_(p.get<std::int64_t>("candidates")),
        rho_(p.get<double>("rho")),
        score_batches_(p.get<std::int64_t>("score_batches")),
        max_attempts_(p.get<std::int64_t>("max_attempts")),
        supernet_(supernet_options(p, true)) {}
  static Schema schema() {
    Schema s;
    s.integer("candidates", 20, "configurations inside the window to score").min(1);
    add_score_keys(s);
    add_supernet_keys(s);
    return s;
  }

  SearchResult run(SearchContext& ctx) override {
    if (ctx.epochs > 0) {
      // the same supernet as samq's, so that the two differ in how configurations are drawn only
      if (ctx.make_supernet) ctx.make_supernet(supernet_);
      auto opt = ctx.make_optimizer();
      for (std::int64_t e = 0; e < ctx.epochs; ++e) {
        const double loss = supernet_epoch(ctx, *opt, e, [&](std::int64_t step) {
          SplitMix rng(SplitMix::mix(ctx.seed, static_cast<std::uint64_t>(e * 1000003 + step)));
          return random_config(ctx, rng);
        });
        ctx.log->info("random: supernet epoch " + std::to_string(e + 1) + "/" + std::to_string(ctx.epochs) +
                      " loss " + std::to_string(loss));
        ctx.record("search_supernet", {{"epoch", static_cast<double>(e + 1)}, {"loss", loss}});
        if (ctx.epoch_end) ctx.epoch_end();
      }
    }
    SplitMix rng(SplitMix::mix(ctx.seed, 0x7a9d));
    auto found = sample_in_window(ctx, [&] { return random_config(ctx, rng); }, candidates_, max_attempts_);
    size_t best = 0;
    double best_score = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < found.size(); ++i) {
      double clean = 0;
      const double score = sharpness_score(ctx, found[i], rho_, score_batches_, &clean);
      ctx.record("search_candidate", {{"candidate", static_cast<double>(i)}, {"mbops", ctx.mbops(found[i])},
                                      {"loss", clean}, {"sharpness", score}});
      if (score < best_score) best_score = score, best = i;
    }
    ctx.log->info("random: " + std::to_string(found.size()) + " candidates in the window; least sharp (" +
                  std::to_string(best_score) + ", " + mb(ctx.mbops(found[best])) + " MBOPs): " +
                  config_text(found[best]));
    return to_result(ctx, found[best]);
  }

 private:
  std::int64_t candidates_;
  double rho_;
  std::int64_t score_batches_, max_attempts_;
  SupernetOptions supernet_;
};

}  // namespace saq::plugins

SAQ_PLUGIN("search_baselines", "1.0.0", "baseline bit searches: uniform, random", reg) {
  reg.add<saq::plugins::UniformSearch>("uniform", "the largest uniform bit-width whose BOPs fit the target");
  reg.add<saq::plugins::RandomSearch>(
      "random", "random configurations inside the BOPs window, the least sharp kept (supernet trained at random bits)");
}

#pragma once
// SAMQ: a configuration generator trained by REINFORCE against a weight-shared quantized supernet, rewarded by
// the sharpness-aware loss and a BOPs penalty.
#include <cstdint>
#include <string>
#include <vector>

#include <saq/sdk.hpp>

#include <torch/optim/optimizer.h>

#include "generator.hpp"

namespace saq::plugins {

/// Each search epoch e:
///   supernet: one pass over its split, one sharpness-aware optimizer step per batch at bits drawn uniformly
///             (e < bit_warmup_epochs) or from the generator;
///   generator (e ≥ bit_warmup_epochs): one pass over its split in eval mode, per batch
///             a ~ π_θ;  R = L(Q(w)+ε; a) + λ·(BOPs(a) − target)²  (a cost, detached)
///             loss = log π_θ(a)·R − c_H·H(π_θ),  one Adam(c_lr, β = (0.5, 0.999), wd) step.
/// The supernet (SearchContext::make_supernet) shares the latent weights across bit-widths and, by default, keeps
/// per-bit clip values and per-bit-pair BatchNorm copies.
/// Derivation: draw from π_θ until `derive_samples` configurations lie in [target − Δ, target]; keep the one of
/// least sharpness L(Q(w)+ε) − L(Q(w)) on the generator split, ε from gradients accumulated over the split.
/// The state (generator, its Adam, supernet weights and optimizer, epoch, sampled configurations) is saved to
/// ctx.state_file after every epoch and reloaded when the search starts again.
class Samq final : public Search {
 public:
  Samq(const Params& p, const Context& ctx);
  static Schema schema();
  SearchResult run(SearchContext& ctx) override;

  /// One REINFORCE update for the rollout `r` whose cost is `reward`; returns the generator loss.
  static double reinforce(torch::optim::Optimizer& adam, const Generator::Rollout& r, double reward,
                          double entropy_coeff);

 private:
  struct State;
  void save_state(const SearchContext& ctx, const State& st) const;
  bool load_state(const SearchContext& ctx, State& st) const;

  std::int64_t hidden_, warmup_, derive_samples_, score_batches_, max_attempts_;
  bool separate_;
  double lambda_, entropy_coeff_, c_lr_, c_wd_, rho_;
  SupernetOptions supernet_;
};

}  // namespace saq::plugins

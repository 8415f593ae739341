#include "search_common.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include <ATen/ATen.h>

namespace saq::plugins {

BitConfig random_config(const SearchContext& ctx, SplitMix& rng) {
  BitConfig c;
  for (size_t k = 0; k < ctx.layers.size(); ++k) {
    const int b = ctx.bit_choices[rng.below(ctx.bit_choices.size())];
    c.emplace_back(b, b);
  }
  return c;
}

SearchResult to_result(const SearchContext& ctx, const BitConfig& config) {
  SearchResult r;
  for (size_t k = 0; k < ctx.layers.size(); ++k) r[ctx.layers[k]] = config[k];
  return r;
}

std::string config_text(const BitConfig& config) {
  std::string out;
  for (const auto& [w, a] : config) out += (out.empty() ? "" : " ") + ("w" + std::to_string(w) + "a" + std::to_string(a));
  return out;
}

double supernet_epoch(SearchContext& ctx, Optimizer& opt, std::int64_t epoch,
                      const std::function<BitConfig(std::int64_t)>& pick) {
  auto loader = ctx.supernet_loader();
  std::int64_t steps = loader->num_batches();
  if (ctx.limit_batches > 0) steps = std::min(steps, ctx.limit_batches);
  loader->start_epoch(epoch);
  ctx.model->train();
  double loss_sum = 0;
  std::int64_t seen = 0;
  Batch b;
  for (std::int64_t step = 0; step < steps && loader->next(b); ++step) {
    ctx.apply(pick(step));
    opt.set_lr_factor(ctx.lr_factor(epoch, step));
    opt.begin_step(Progress{epoch, ctx.epochs, step, steps});
    at::Tensor x = b.x.to(ctx.device), y = b.y.to(ctx.device);
    LossFn loss_fn = [&](const at::Tensor& rows) {
      at::Tensor xs = rows.defined() ? x.index_select(0, rows) : x;
      at::Tensor ys = rows.defined() ? y.index_select(0, rows) : y;
      return ctx.loss(ctx.model->forward(xs), ys);
    };
    StepResult r = opt.step(loss_fn);
    // Data parallel: rank 0's model to every rank after each step. The gradients were averaged, but each per-bit
    // quantizer initialises from the first batch that draws it (each rank's own) and BatchNorm copies keep
    // local statistics; a broadcast keeps the derivation's sharpness identical on every rank.
    if (ctx.collective && ctx.collective->world_size() > 1) {
      std::vector<at::Tensor> state = ctx.model->parameters();
      for (const auto& t : ctx.model->buffers()) state.push_back(t);
      broadcast_tensors(*ctx.collective, state, 0);
    }
    if (!std::isfinite(r.loss))
      throw std::runtime_error("supernet epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(step + 1) +
                               ": the loss is " + std::to_string(r.loss));
    loss_sum += r.loss * static_cast<double>(y.size(0));
    seen += y.size(0);
  }
  if (ctx.collective && ctx.collective->world_size() > 1) {  // the epoch's loss over every rank's samples
    at::Tensor totals = at::tensor({loss_sum, static_cast<double>(seen)}, at::kDouble);
    ctx.collective->all_reduce_sum(totals);
    loss_sum = totals[0].item<double>(), seen = static_cast<std::int64_t>(totals[1].item<double>());
  }
  return seen ? loss_sum / static_cast<double>(seen) : std::numeric_limits<double>::quiet_NaN();
}

double sharpness_score(SearchContext& ctx, const BitConfig& config, double rho, std::int64_t batches,
                       double* clean) {
  ctx.apply(config);
  auto loader = ctx.generator_loader();
  const bool was_training = ctx.model->is_training();
  ctx.model->eval();
  SharpnessMeasure m;
  try {
    m = measure_sharpness(
        *ctx.model, [&] { loader->start_epoch(0); }, [&](Batch& b) { return loader->next(b); }, ctx.loss, rho,
        ctx.device, batches, ctx.collective);
  } catch (...) {
    ctx.model->train(was_training);
    throw;
  }
  ctx.model->train(was_training);
  if (clean) *clean = m.clean;
  // At ρ = 0 the criterion is the clean loss itself (as the paper's derivation).
  return rho == 0 ? m.clean : m.sharpness();
}

std::vector<BitConfig> sample_in_window(const SearchContext& ctx, const std::function<BitConfig()>& sample,
                                        std::int64_t n, std::int64_t max_attempts) {
  const double hi = ctx.target_mbops, lo = ctx.target_mbops - ctx.window_mbops;
  std::vector<BitConfig> out;
  double best = std::numeric_limits<double>::quiet_NaN(), best_gap = std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < max_attempts && static_cast<std::int64_t>(out.size()) < n; ++i) {
    BitConfig c = sample();
    const double m = ctx.mbops(c);
    const double gap = m > hi ? m - hi : m < lo ? lo - m : 0.0;
    if (gap < best_gap) best_gap = gap, best = m;
    if (gap == 0.0) out.push_back(std::move(c));
  }
  if (out.empty())
    throw std::runtime_error("no configuration inside the BOPs window after " + std::to_string(max_attempts) +
                             " draws: best BOPs seen " + std::to_string(best) + " MBOPs vs window [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return out;
}

void add_score_keys(Schema& s) {
  s.real("rho", 0.4, "radius ρ of the sharpness criterion (ε = ρ·g/‖g‖ on the quantized weights)").min(0);
  s.integer("score_batches", 0, "batches of the generator split each candidate is scored on; 0 = all").min(0);
  s.integer("max_attempts", 10000, "draws before giving up on landing in the BOPs window").min(1);
}

void add_supernet_keys(Schema& s) {
  s.choice("clips", "per_bit", {"per_bit", "shared"},
           "the supernet's clip values: one set per bit-width (the paper's default) or one shared set");
  s.choice("norms", "switchable", {"switchable", "shared"},
           "BatchNorms after a searched layer: one copy per bit pair of that layer (the paper's) or one shared");
  s.boolean("perturb_searched", true,
            "the supernet's SAQ step perturbs the searched layers; false reproduces the paper's released code, "
            "which skipped them");
}

SupernetOptions supernet_options(const Params& p, bool same_bits) {
  SupernetOptions o;
  o.per_bit_clips = p.get<std::string>("clips") == "per_bit";
  o.switchable_norms = p.get<std::string>("norms") == "switchable";
  o.same_bits = same_bits;
  o.perturb_searched = p.get<bool>("perturb_searched");
  return o;
}

}  // namespace saq::plugins

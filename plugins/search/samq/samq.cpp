#include "samq.hpp"

#include <cmath>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/optim/adam.h>
#include <saq/torch_file.hpp>
#include <saq/torch_optimizer.hpp>

#include "../common/search_common.hpp"

namespace saq::plugins {

struct Samq::State {
  std::shared_ptr<Generator> gen;
  std::unique_ptr<torch::optim::Adam> adam;
  std::shared_ptr<Optimizer> supernet;
  std::int64_t next_epoch = 0;
  std::vector<std::vector<std::int64_t>> sampled;  ///< every generator-epoch rollout, in order
};

Samq::Samq(const Params& p, const Context&)
    : hidden_(p.get<std::int64_t>("hidden")),
      warmup_(p.get<std::int64_t>("bit_warmup_epochs")),
      derive_samples_(p.get<std::int64_t>("derive_samples")),
      score_batches_(p.get<std::int64_t>("score_batches")),
      max_attempts_(p.get<std::int64_t>("max_attempts")),
      separate_(p.get<bool>("separate_bits")),
      lambda_(p.get<double>("loss_lambda")),
      entropy_coeff_(p.get<double>("entropy_coeff")),
      c_lr_(p.get<double>("c_lr")),
      c_wd_(p.get<double>("c_weight_decay")),
      rho_(p.get<double>("rho")),
      supernet_(supernet_options(p, !separate_)) {}

Schema Samq::schema() {
  Schema s;
  s.integer("hidden", 64, "LSTM hidden size H").min(1);
  s.boolean("separate_bits", false, "separate weight and activation decisions (2 per layer, two heads)");
  s.integer("bit_warmup_epochs", 10, "first epochs: supernet only, bits uniformly random per batch").min(0);
  s.real("loss_lambda", 1e-4, "λ of the BOPs penalty λ·(MBOPs − target)²").min(0);
  s.real("entropy_coeff", 5e-3, "c_H, the entropy bonus").min(0);
  s.real("c_lr", 5e-4, "generator Adam learning rate").above(0);
  s.real("c_weight_decay", 5e-4, "generator Adam weight decay").min(0);
  add_supernet_keys(s);
  s.integer("derive_samples", 20, "configurations inside the window scored at derivation").min(1);
  add_score_keys(s);
  return s;
}

double Samq::reinforce(torch::optim::Optimizer& adam, const Generator::Rollout& r, double reward,
                       double entropy_coeff) {
  at::Tensor loss = r.log_prob * reward - entropy_coeff * r.entropy;
  adam.zero_grad();
  loss.backward();
  adam.step();
  return loss.item<double>();
}

// search/state.pt: {generator, generator_adam, model, supernet_optimizer, next_epoch, sampled}, a torch.save file.
void Samq::save_state(const SearchContext& ctx, const State& st) const {
  if (ctx.state_file.empty() || (ctx.collective && !ctx.collective->logging_rank())) return;
  StateDict a;
  a.put_text("kind", "samq search state");
  a.child("generator") = module_state(*st.gen);
  save_torch_optimizer(*st.adam, a.child("generator_adam"));
  a.child("model") = module_state(*ctx.model);
  st.supernet->save(a.child("supernet_optimizer"));
  a.put_int("next_epoch", st.next_epoch);
  const auto d = st.gen->decisions();
  at::Tensor sampled = at::empty({static_cast<std::int64_t>(st.sampled.size()), d}, at::kLong);
  for (size_t i = 0; i < st.sampled.size(); ++i)
    for (std::int64_t t = 0; t < d; ++t) sampled[static_cast<std::int64_t>(i)][t] = st.sampled[i][static_cast<size_t>(t)];
  a.put_tensor("sampled", sampled);
  write_state_atomically(ctx.state_file, a);
}

bool Samq::load_state(const SearchContext& ctx, State& st) const {
  if (ctx.state_file.empty() || !std::filesystem::exists(ctx.state_file)) return false;
  try {
    const StateDict a = read_state(ctx.state_file);
    if (!a.has("kind") || a.text("kind") != "samq search state") throw std::runtime_error("not a samq state");
    load_module_state(*st.gen, a.child("generator"));
    load_torch_optimizer(*st.adam, a.child("generator_adam"));
    load_module_state(*ctx.model, a.child("model"));
    st.supernet->load(a.child("supernet_optimizer"));
    st.next_epoch = a.integer("next_epoch");
    const at::Tensor sampled = a.tensor("sampled").to(at::kLong);
    if (sampled.dim() != 2 || sampled.size(1) != st.gen->decisions())
      throw std::runtime_error("'sampled' is not [n, " + std::to_string(st.gen->decisions()) + "]");
    st.sampled.clear();
    auto rows = sampled.accessor<std::int64_t, 2>();
    for (std::int64_t i = 0; i < sampled.size(0); ++i) {
      std::vector<std::int64_t> row;
      for (std::int64_t t = 0; t < sampled.size(1); ++t) row.push_back(rows[i][t]);
      st.sampled.push_back(row);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(ctx.state_file + ": not a samq state of this search (" + std::string(e.what()) +
                             "); delete it to start the search over");
  }
  return true;
}

SearchResult Samq::run(SearchContext& ctx) {
  const auto layers = static_cast<std::int64_t>(ctx.layers.size());
  const auto choices = static_cast<std::int64_t>(ctx.bit_choices.size());
  if (ctx.make_supernet) ctx.make_supernet(supernet_);
  State st;
  st.gen = std::make_shared<Generator>(layers, choices, hidden_, separate_);
  st.adam = std::make_unique<torch::optim::Adam>(
      st.gen->parameters(), torch::optim::AdamOptions(c_lr_).betas({0.5, 0.999}).weight_decay(c_wd_));
  st.supernet = ctx.make_optimizer();
  if (load_state(ctx, st))
    ctx.log->info("samq: resuming from " + ctx.state_file + " at epoch " + std::to_string(st.next_epoch + 1));

  for (std::int64_t e = st.next_epoch; e < ctx.epochs; ++e) {
    const bool warm = e < warmup_;
    const double supernet_loss = supernet_epoch(ctx, *st.supernet, e, [&](std::int64_t step) {
      SplitMix rng(SplitMix::mix(ctx.seed, static_cast<std::uint64_t>(e * 1000003 + step)));
      if (warm) return random_config(ctx, rng);
      at::NoGradGuard no_grad;
      return st.gen->to_config(st.gen->sample(rng).actions, ctx.bit_choices);
    });
    std::vector<std::pair<std::string, double>> values{{"epoch", static_cast<double>(e + 1)},
                                                       {"supernet_loss", supernet_loss}};
    if (!warm) {
      auto loader = ctx.generator_loader();
      std::int64_t steps = loader->num_batches();
      if (ctx.limit_batches > 0) steps = std::min(steps, ctx.limit_batches);
      loader->start_epoch(e);
      ctx.model->eval();
      double reward_sum = 0, sa_sum = 0, mbops_sum = 0, entropy_sum = 0;
      std::int64_t n = 0;
      Batch b;
      for (std::int64_t step = 0; step < steps && loader->next(b); ++step) {
        SplitMix rng(SplitMix::mix(ctx.seed ^ 0x9e3779b9ULL, static_cast<std::uint64_t>(e * 1000003 + step)));
        Generator::Rollout r = st.gen->sample(rng);
        const BitConfig config = st.gen->to_config(r.actions, ctx.bit_choices);
        ctx.apply(config);
        bool given = false;
        const SharpnessMeasure m = measure_sharpness(
            *ctx.model, [&] { given = false; },
            [&](Batch& out) {
              if (given) return false;
              out = b, given = true;
              return true;
            },
            ctx.loss, rho_, ctx.device, 0, ctx.collective);  // every rank: the loss of the whole global batch
        const double mbops = ctx.mbops(config);
        const double reward = m.perturbed + lambda_ * (mbops - ctx.target_mbops) * (mbops - ctx.target_mbops);
        reinforce(*st.adam, r, reward, entropy_coeff_);
        reward_sum += reward, sa_sum += m.perturbed, mbops_sum += mbops, entropy_sum += r.entropy.item<double>();
        st.sampled.push_back(r.actions);
        ++n;
      }
      ctx.model->train();
      const double k = std::max<double>(1, static_cast<double>(n));
      values.insert(values.end(), {{"reward", reward_sum / k}, {"sa_loss", sa_sum / k}, {"mbops", mbops_sum / k},
                                   {"entropy", entropy_sum / k}});
      ctx.log->info("samq epoch " + std::to_string(e + 1) + "/" + std::to_string(ctx.epochs) + ": supernet loss " +
                    std::to_string(supernet_loss) + ", generator reward " + std::to_string(reward_sum / k) +
                    ", L_SA " + std::to_string(sa_sum / k) + ", mean " + std::to_string(mbops_sum / k) +
                    " MBOPs, entropy " + std::to_string(entropy_sum / k));
    } else {
      ctx.log->info("samq epoch " + std::to_string(e + 1) + "/" + std::to_string(ctx.epochs) +
                    " (bit warm-up): supernet loss " + std::to_string(supernet_loss));
    }
    ctx.record("search_epoch", values);
    st.next_epoch = e + 1;
    save_state(ctx, st);
    if (ctx.epoch_end) ctx.epoch_end();
  }

  st.gen->eval();
  at::NoGradGuard no_grad;
  SplitMix rng(SplitMix::mix(ctx.seed, 0xde71));
  auto found = sample_in_window(
      ctx, [&] { return st.gen->to_config(st.gen->sample(rng).actions, ctx.bit_choices); }, derive_samples_,
      max_attempts_);
  size_t best = 0;
  double best_score = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < found.size(); ++i) {
    at::AutoGradMode grad(true);
    double clean = 0;
    const double score = sharpness_score(ctx, found[i], rho_, score_batches_, &clean);
    ctx.record("search_candidate", {{"candidate", static_cast<double>(i)}, {"mbops", ctx.mbops(found[i])},
                                    {"loss", clean}, {"sharpness", score}});
    if (score < best_score) best_score = score, best = i;
  }
  ctx.log->info("samq: derived from " + std::to_string(found.size()) + " configurations in the window; least sharp (" +
                std::to_string(best_score) + ", " + std::to_string(ctx.mbops(found[best])) + " MBOPs): " +
                config_text(found[best]));
  return to_result(ctx, found[best]);
}

}  // namespace saq::plugins

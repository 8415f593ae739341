#include "search.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <set>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bops.hpp"
#include "data_parallel.hpp"
#include "errors.hpp"
#include "interrupt.hpp"
#include "json.hpp"
#include "loss.hpp"
#include "param_groups.hpp"
#include "schedule.hpp"
#include "supernet.hpp"

namespace saq::host {

namespace fs = std::filesystem;

fs::path search_result_file(const Session& s) { return s.dir->path() / "search" / "result.toml"; }

namespace {

/// The session's bits with `config` on the searchable layers `at` and the ties followed.
std::vector<LayerBits> with_config(const std::vector<LayerBits>& base, const std::vector<size_t>& at,
                                   const std::vector<size_t>& tie, const BitConfig& config, const std::string& source) {
  std::vector<LayerBits> b = base;
  for (size_t k = 0; k < at.size(); ++k) {
    b[at[k]].weight_bits = config[k].first;
    b[at[k]].activation_bits = config[k].second;
    b[at[k]].source = source;
  }
  for (size_t i = 0; i < b.size(); ++i)
    if (tie[i] != i) b[i].weight_bits = b[tie[i]].weight_bits, b[i].activation_bits = b[tie[i]].activation_bits;
  return b;
}

std::string result_toml(const std::string& plugin, std::int64_t index, const std::vector<std::string>& names,
                        const BitConfig& config, double mbops, double target, double window) {
  std::string out = fmt::format(
      "# bits chosen by search '{}' (stage {}): {:.3f} MBOPs, target {:.6g} MBOPs, window [{:.6g}, {:.6g}]\n"
      "# read by another pipeline with [quantizer] rules_file = \"<this file>\"\n",
      plugin, index, mbops, target, target - window, target);
  for (size_t k = 0; k < names.size(); ++k)
    out += fmt::format("\n[[quantizer.rule]]\nmatch = \"{}\"\nweight_bits = {}\nactivation_bits = {}\n", names[k],
                       config[k].first, config[k].second);
  return out;
}

}  // namespace

void search(Session& s, const Params& stage, std::int64_t index) {
  if (!s.quantizer) stage.fail("use", "a search stage needs a [quantizer] section");
  const Params& sp = stage.child("search");
  auto layers = quant_layers(*s.model);
  const std::vector<size_t> at = searchable_layers(*s.model), tie = tie_sources(*s.model);
  if (at.empty()) stage.fail("use", "the model has no searchable layer (all but the first, the last and tied ones)");
  std::vector<int> choices;
  for (auto b : stage.get<std::vector<std::int64_t>>("bits")) {
    if (b < 2 || b > 8) stage.fail("bits", fmt::format("each choice must be 2..8, got {}", b));
    if (std::find(choices.begin(), choices.end(), b) != choices.end())
      stage.fail("bits", fmt::format("{} is listed twice", b));
    choices.push_back(static_cast<int>(b));
  }
  if (choices.empty()) stage.fail("bits", "needs at least one bit choice");

  // MACs per layer at the data's input shape; BOPs of a configuration are computed from them alone.
  const CostReport base = measure_costs(*s.model, s.info, &s.bits);
  const std::vector<LayerBits> resolved = s.bits;

  SearchContext ctx;
  ctx.model = s.model;
  for (size_t i : at) ctx.layers.push_back(layers[i].first);
  ctx.bit_choices = choices;
  ctx.target_mbops = stage.get<double>("target_mbops");
  ctx.window_mbops = stage.get<double>("window_mbops");
  ctx.mbops = [&](const BitConfig& c) {
    if (c.size() != at.size())
      throw std::invalid_argument(fmt::format("a configuration of {} layers for {} searchable", c.size(), at.size()));
    const auto b = with_config(resolved, at, tie, c, "");
    double bops = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      const int a = i == 0 && b[i].weight_bits != 32 && b[i].activation_bits == 32 ? 8 : b[i].activation_bits;
      bops += static_cast<double>(base.layers[i].macs) * b[i].weight_bits * a;
    }
    return bops / 1e6;
  };
  ctx.apply = [&](const BitConfig& c) { apply_bits(*s.model, with_config(resolved, at, tie, c, ""), false); };

  LoaderSpec spec;
  spec.split = "train";
  spec.batch_size = s.batch_size();
  spec.train = true;
  spec.seed = static_cast<std::uint64_t>(s.pipeline.run->get<std::int64_t>("seed"));
  spec.rank = s.world ? s.world->rank() : 0;
  spec.world_size = s.world_size();
  std::int64_t total = 0;
  try {
    total = s.data->loader(spec)->num_samples();
  } catch (const std::exception& e) {
    throw InputError(e.what());
  }
  const auto cut = static_cast<std::int64_t>(std::llround(static_cast<double>(total) * stage.get<double>("split_ratio")));
  if (cut < 1 || cut >= total)
    stage.fail("split_ratio", fmt::format("leaves an empty half of the {} training samples", total));
  LoaderSpec supernet = spec, generator = spec;
  supernet.end = cut;
  generator.begin = cut, generator.end = total, generator.seed = spec.seed + 1;
  ctx.supernet_loader = [&s, supernet] { return s.data->loader(supernet); };
  ctx.generator_loader = [&s, generator] { return s.data->loader(generator); };
  ctx.limit_batches = stage.get<std::int64_t>("limit_batches");

  std::int64_t steps = s.data->loader(supernet)->num_batches();
  if (ctx.limit_batches > 0) steps = std::min(steps, ctx.limit_batches);
  auto schedule = std::make_shared<LrSchedule>(stage, std::max<std::int64_t>(1, steps));
  ctx.lr_factor = [schedule](std::int64_t epoch, std::int64_t step) { return schedule->factor(epoch, step); };
  const Params& op = stage.has("optimizer") ? stage.child("optimizer") : *s.pipeline.optimizer;
  ctx.make_optimizer = [&s, &stage, &op] {
    Context c = s.context();
    std::vector<std::string> warnings;
    c.groups = make_param_groups(*s.model, stage, warnings);
    c.model = s.model;
    for (const auto& w : warnings) s.log.warn("{}", w);
    return s.registry.make<Optimizer>(s.registry.require(Kind::Optimizer, op.use(), op.origin()), op, c);
  };
  const double smoothing = stage.get<double>("label_smoothing");
  ctx.loss = [smoothing](const at::Tensor& logits, const at::Tensor& y) {
    return cross_entropy_per_sample(logits, y, smoothing);
  };
  ctx.record = [&s, index](const std::string& split, const std::vector<std::pair<std::string, double>>& values) {
    JsonObject o;
    o.add("stage", index).add("split", split);
    for (const auto& [k, v] : values) o.add(k, v);
    s.dir->metrics(o.str());
  };
  ctx.log = &s.plugin_log;
  ctx.device = s.device;
  ctx.seed = spec.seed;
  ctx.epochs = stage.get<std::int64_t>("epochs");
  ctx.collective = s.world;
  if (s.writes()) fs::create_directories(s.dir->path() / "search");
  ctx.state_file = (s.dir->path() / "search" / "state.pt").string();
  ctx.epoch_end = [&s, index] {
    maybe_kill_after_step(++s.steps_here);  // a search epoch counts as one step for the fault hook
    if (s.world) s.agreed_interrupt = agree_on_interrupt(s.world);
    if (s.interrupt())
      throw Interrupted(fmt::format("{} in search stage {}: its state is in search/state.pt; continue with: {}",
                                    s.interrupt() == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)",
                                    index, s.resume_command()),
                        s.interrupt());
  };

  std::shared_ptr<Search> plugin;
  try {
    plugin = s.registry.make<Search>(s.registry.require(Kind::Search, sp.use(), sp.origin()), sp, s.context());
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(e.what());
  }
  s.log.info("stage {} (search '{}'): {} searchable layers, bits {}, target {} MBOPs (window {}), {} epochs", index,
             sp.use(), at.size(), fmt::join(choices, "/"), ctx.target_mbops, ctx.window_mbops, ctx.epochs);
  SupernetScope scope(*s.model, *s.quantizer, s.info, at, choices);
  ctx.make_supernet = [&scope](const SupernetOptions& o) { scope.build(o); };
  SearchResult result;
  try {
    result = plugin->run(ctx);
    scope.restore();
  } catch (const Interrupted&) {
    throw;
  } catch (const std::exception& e) {
    throw RunError(fmt::format("stage {}: search '{}': {}", index, sp.use(), e.what()));
  }
  BitConfig config;
  for (const auto& name : ctx.layers) {
    auto found = result.find(name);
    if (found == result.end())
      throw RunError(fmt::format("stage {}: search '{}' returned no bits for layer {}", index, sp.use(), name));
    if (!valid_bits(found->second.first) || !valid_bits(found->second.second))
      throw RunError(fmt::format("stage {}: search '{}' returned bits {}/{} for {}", index, sp.use(),
                                 found->second.first, found->second.second, name));
    config.push_back(found->second);
  }
  const double mbops = ctx.mbops(config);
  if (s.writes())
    write_text_atomically(search_result_file(s), result_toml(sp.use(), index, ctx.layers, config, mbops,
                                                             ctx.target_mbops, ctx.window_mbops));
  if (s.world) s.world->barrier();  // the other ranks read rank 0's result (a shared run directory)
  reapply_search(s);
  apply_bits(*s.model, s.bits, false);
  s.log.info("stage {}: search '{}' chose {:.3f} MBOPs ({})\n{}", index, sp.use(), mbops,
             search_result_file(s).string(), bits_table(s.bits));
  ctx.record("search_result", {{"mbops", mbops}, {"target_mbops", ctx.target_mbops}});
  save_checkpoint(s, "stage" + std::to_string(index));
}

void reapply_search(Session& s) {
  std::vector<std::string> warnings;
  apply_rules_file(*s.model, search_result_file(s).string(), s.bits, warnings);
  for (const auto& w : warnings) s.log.warn("{}", w);
  if (!s.writes()) return;
  write_text_atomically(s.dir->path() / "report.md", cost_markdown(measure_costs(*s.model, s.info, &s.bits),
                                                                   s.pipeline.run->get<std::string>("name"),
                                                                   report_lead(s)));
}

}  // namespace saq::host

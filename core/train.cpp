#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <limits>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "checkpoint.hpp"
#include "comm_stats.hpp"
#include "data_parallel.hpp"
#include "errors.hpp"
#include "interrupt.hpp"
#include "json.hpp"
#include "loss.hpp"
#include "param_groups.hpp"
#include "schedule.hpp"
#include "session.hpp"
#include "train_log.hpp"
#include "state_dict.hpp"

namespace saq::host {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// The stage's loader and optimizer; a factory's failure is bad input (exit 2).
struct StageSetup {
  LoaderSpec spec;
  std::unique_ptr<Loader> loader;
  std::shared_ptr<Optimizer> opt;
  std::string opt_name;
};

StageSetup set_up(Session& s, const Params& stage) {
  StageSetup st;
  st.spec.split = "train";
  st.spec.batch_size = s.batch_size();
  st.spec.train = true;
  st.spec.seed = static_cast<std::uint64_t>(s.pipeline.run->get<std::int64_t>("seed"));
  st.spec.rank = s.world ? s.world->rank() : 0;
  st.spec.world_size = s.world_size();
  const Params& op = stage.has("optimizer") ? stage.child("optimizer") : *s.pipeline.optimizer;
  st.opt_name = op.use();
  try {
    st.loader = s.data->loader(st.spec);
    Context ctx = s.context();
    std::vector<std::string> warnings;
    ctx.groups = make_param_groups(*s.model, stage, warnings);
    ctx.model = s.model;
    for (const auto& w : warnings) s.log.warn("{}", w);
    for (const auto& g : ctx.groups)
      s.log.info("parameter group {}: {} tensors{}{}", g.name, g.params.size(),
                 g.lr ? fmt::format(", lr {}", *g.lr) : "", g.weight_decay ? fmt::format(", weight decay {}", *g.weight_decay) : "");
    st.opt = s.registry.make<Optimizer>(s.registry.require(Kind::Optimizer, op.use(), op.origin()), op, ctx);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(e.what());
  }
  return st;
}

[[noreturn]] void stop_interrupted(const Session& s, std::int64_t index, std::int64_t epoch, std::int64_t step) {
  const int sig = s.interrupt();
  throw Interrupted(fmt::format("{} at stage {}, epoch {}, step {}: checkpoint saved; continue with: {}",
                                sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)", index, epoch + 1,
                                step, s.resume_command()),
                    sig);
}

/// Test hook (SAQ_TEST_WEIGHT_DIGEST): every rank logs a digest of its parameters, buffers and layer bits after
/// each step, at warning level so that ranks other than 0 print it too.
void log_weight_digest(const Session& s, std::int64_t step) {
  at::NoGradGuard no_grad;
  double d = 0;
  std::int64_t k = 0;
  for (const auto& t : s.model->parameters()) d += t.to(at::kDouble).sum().item<double>() * static_cast<double>(++k);
  for (const auto& t : s.model->buffers()) d += t.to(at::kDouble).sum().item<double>() * static_cast<double>(++k);
  for (const auto& [name, layer] : quant_layers(*s.model))
    d += static_cast<double>(layer->weight_bits() * 100 + layer->activation_bits()) * static_cast<double>(++k);
  s.log.warn("weight digest after step {}: {:.17g}", step, d);
}

/// Data parallel: this epoch's time and bytes in collectives per step, as a "comm" metrics line and a log line.
void record_communication(Session& s, std::int64_t index, std::int64_t epoch, CommStats& since,
                          const EpochTotals& totals) {
  const CommStats now = comm_stats();
  const double steps = std::max<double>(1.0, static_cast<double>(totals.seen > 0 ? totals.seen : 1) /
                                                 static_cast<double>(s.batch_size() *
                                                                     s.world_size()));
  const double ms = 1000.0 * (now.seconds - since.seconds) / steps;
  const double bytes = static_cast<double>(now.bytes - since.bytes) / steps;
  const double step_ms = totals.ms_sum / steps;
  record(s, index, epoch + 1, -1, "comm",
         {{"comm_ms_per_step", ms}, {"comm_bytes_per_step", bytes}, {"step_ms", step_ms},
          {"comm_fraction", step_ms > 0 ? ms / step_ms : 0.0},
          {"comm_bytes_per_s", ms > 0 ? bytes / (ms / 1000.0) : 0.0}});
  s.log.info("stage {} epoch {}: collectives {:.2f} ms per step ({:.1f}% of the step), {:.2f} MB per step at {:.0f} MB/s",
             index, epoch + 1, ms, step_ms > 0 ? 100.0 * ms / step_ms : 0.0, bytes / 1e6,
             ms > 0 ? bytes / 1e6 / (ms / 1000.0) : 0.0);
  since = now;
}

/// What one step measured on this rank; in a data-parallel run summed over the ranks (one small all-reduce),
/// so that every rank logs, skips and stops alike.
struct StepNumbers {
  double loss_sum = 0, samples = 0, top1 = 0, top5 = 0, sharpness_sum = 0, sharpness_ranks = 0, eps_sum = 0;
  double sigint = 0, sigterm = 0;
  void sum(Session& s) {
    if (!s.world) return;
    sigint = pending_interrupt() == SIGINT, sigterm = pending_interrupt() == SIGTERM;
    std::vector<double> v{loss_sum, samples, top1, top5, sharpness_sum, sharpness_ranks, eps_sum, sigint, sigterm};
    sum_over_ranks(*s.world, v);
    loss_sum = v[0], samples = v[1], top1 = v[2], top5 = v[3], sharpness_sum = v[4], sharpness_ranks = v[5];
    eps_sum = v[6], sigint = v[7], sigterm = v[8];
    s.agreed_interrupt = sigint > 0 ? SIGINT : sigterm > 0 ? SIGTERM : 0;
    if (s.agreed_interrupt) note_interrupt(s.agreed_interrupt);
  }
};

}  // namespace

void train(Session& s, const Params& stage, std::int64_t index) {
  const auto epochs = stage.get<std::int64_t>("epochs");
  const auto limit = stage.get<std::int64_t>("limit_batches");
  const auto log_every = stage.get<std::int64_t>("log_every");
  const auto eval_every = stage.get<std::int64_t>("eval_every");
  const double smoothing = stage.get<double>("label_smoothing");
  const Params& run = *s.pipeline.run;
  const auto checkpoint_every = run.get<std::int64_t>("checkpoint_every");
  const bool skip_nonfinite = run.get<std::string>("on_nonfinite") == "skip";
  const auto max_skipped = run.get<std::int64_t>("max_skipped_steps");

  StageSetup st = set_up(s, stage);
  Optimizer& opt = *st.opt;
  std::int64_t steps = st.loader->num_batches();
  if (limit > 0) steps = std::min(steps, limit);
  LrSchedule schedule(stage, steps);

  std::int64_t first_epoch = 0, first_step = 0;
  EpochTotals totals;
  if (s.resume && s.resume->point().in_stage && s.resume->point().stage == index) {
    const ResumePoint& p = s.resume->point();
    try {
      s.resume->restore_optimizer(opt);
    } catch (const std::exception& e) {
      throw InputError(e.what());
    }
    first_epoch = p.epoch, first_step = p.step, totals = p.totals;
    s.log.info("stage {}: resuming at epoch {}, step {}", index, p.epoch + 1, p.step);
  }
  if (s.world)
    s.log.info("stage {} (train): {} epochs x {} steps, batch {} per process x {} processes = {} global, optimizer '{}'",
               index, epochs, steps, st.spec.batch_size, s.world_size(), st.spec.batch_size * s.world_size(), st.opt_name);
  else
    s.log.info("stage {} (train): {} epochs x {} steps, batch {}, optimizer '{}'", index, epochs, steps,
               st.spec.batch_size, st.opt_name);
  bool first_step_of_stage = true;

  s.model->train();
  CommStats comm_at_epoch_start = comm_stats();
  for (std::int64_t epoch = first_epoch; epoch < epochs; ++epoch) {
    const std::int64_t step0 = epoch == first_epoch ? first_step : 0;
    if (epoch != first_epoch) totals = EpochTotals{};
    st.loader->start_epoch(epoch, step0);
    auto bar = progress_bar(s, index, epoch, epochs, steps);
    Batch batch;
    for (std::int64_t step = step0; step < steps && next_batch(*st.loader, batch); ++step) {
      opt.set_lr_factor(schedule.factor(epoch, step));
      opt.begin_step(Progress{epoch, epochs, step, steps});
      at::Tensor x = batch.x.to(s.device), y = batch.y.to(s.device);
      at::Tensor clean_logits;  // the first full-batch pass gives the reported accuracy
      LossFn loss_fn = [&](const at::Tensor& rows) {
        at::Tensor xs = rows.defined() ? x.index_select(0, rows) : x;
        at::Tensor ys = rows.defined() ? y.index_select(0, rows) : y;
        at::Tensor logits = s.model->forward(xs);
        if (!clean_logits.defined() && !rows.defined()) clean_logits = logits.detach();
        return cross_entropy_per_sample(logits, ys, smoothing);
      };
      auto t0 = Clock::now();
      StepResult r{};
      std::string bad;
      bool applied = false;  // a NonFiniteError comes before the update; a non-finite loss returned may not
      try {
        r = opt.step(loss_fn);
        if (!std::isfinite(r.loss)) bad = fmt::format("the loss is {}", r.loss), applied = true;
      } catch (const NonFiniteError& e) {
        bad = e.what();
        opt.zero_grad();
      }
      double ms = ms_since(t0);
      const std::int64_t global_step = epoch * steps + step + 1;
      StepNumbers num;
      if (bad.empty()) {
        num.samples = static_cast<double>(y.size(0));
        num.loss_sum = r.loss * num.samples;
        if (std::isfinite(r.sharpness)) num.sharpness_sum = r.sharpness, num.sharpness_ranks = 1;
        num.eps_sum = r.perturbation_norm;
        if (clean_logits.defined()) {
          Correct c = count_correct(clean_logits, y);
          num.top1 = static_cast<double>(c.top1), num.top5 = static_cast<double>(c.top5);
        }
      } else {
        num.loss_sum = std::numeric_limits<double>::quiet_NaN();
      }
      num.sum(s);
      if (s.world && bad.empty() && !std::isfinite(num.loss_sum)) bad = "the loss is not finite on a rank", applied = true;
      if (s.world && bad.empty()) {
        // the numbers of the global batch; BatchNorm statistics (and, after the first step, the state data-driven
        // quantizer initialisation set from each rank's own batch) follow rank 0's
        r.loss = num.loss_sum / num.samples;
        r.sharpness = num.sharpness_ranks > 0 ? num.sharpness_sum / num.sharpness_ranks : r.sharpness;
        r.perturbation_norm = num.eps_sum / s.world_size();
        if (first_step_of_stage) broadcast_model(*s.world, *s.model);
        else broadcast_buffers(*s.world, *s.model);
      }
      first_step_of_stage = false;
      if (s.world) ms = ms_since(t0);  // the step's time includes the ranks' agreement and buffer broadcast
      if (!bad.empty()) {
        if (!skip_nonfinite || applied || ++s.consecutive_skipped > max_skipped)
          throw RunError(fmt::format("non-finite loss or gradients at stage {}, epoch {}, step {} ({}){}; the last "
                                     "checkpoint in {} is intact{}",
                                     index, epoch + 1, step + 1, bad,
                                     s.consecutive_skipped > max_skipped ? fmt::format(", {} steps in a row", s.consecutive_skipped) : "",
                                     (s.dir->path() / "checkpoints").string(),
                                     skip_nonfinite ? "" : " (run.on_nonfinite = \"skip\" skips such steps)"));
        ++totals.skipped;
        if (bar) bar->clear();
        s.log.warn("stage {} epoch {} step {}: skipped, {}", index, epoch + 1, step + 1, bad);
        s.dir->metrics(JsonObject().add("stage", index).add("epoch", epoch + 1).add("step", global_step)
                           .add("split", "skipped_step").add("reason", bad).str());
      } else {
        s.consecutive_skipped = 0;
        const auto n = static_cast<std::int64_t>(num.samples);
        totals.loss_sum += r.loss * static_cast<double>(n);
        totals.rho = r.rho;
        if (std::isfinite(r.sharpness)) totals.sharpness_sum += r.sharpness, ++totals.sharpness_steps;
        totals.ms_sum += ms;
        totals.seen += n;
        totals.top1 += static_cast<std::int64_t>(num.top1);
        totals.top5 += static_cast<std::int64_t>(num.top5);
        if (log_every > 0 && (step + 1) % log_every == 0) {
          if (bar) bar->clear();
          else
            s.log.info("stage {} epoch {}/{} step {}/{}: loss {:.4f} lr {:.4g} {:.0f} img/s", index, epoch + 1,
                       epochs, step + 1, steps, r.loss, opt.lr(), 1000.0 * static_cast<double>(n) / ms);
          record(s, index, epoch + 1, global_step, "train_step",
                 {{"loss", r.loss}, {"lr", opt.lr()}, {"rho", r.rho}, {"sharpness", r.sharpness},
                  {"eps_norm", r.perturbation_norm}, {"step_ms", ms}});
        }
        if (bar) bar->update(step + 1, totals.seen, r.loss);
      }
      const bool epoch_end = step + 1 == steps;
      if (!epoch_end && (s.interrupt() || (checkpoint_every > 0 && global_step % checkpoint_every == 0)))
        save_resume_point(s, s.point(index, epoch, step + 1, true, totals), &opt);
      if (s.world && std::getenv("SAQ_TEST_WEIGHT_DIGEST")) log_weight_digest(s, global_step);
      maybe_kill_after_step(++s.steps_here);
      if (!epoch_end && s.interrupt()) stop_interrupted(s, index, epoch, step + 1);
    }
    if (bar) bar->finish();
    if (totals.seen == 0 && totals.skipped == 0) throw RunError("the training split gave no batches");
    record_epoch(s, index, epoch, epochs, steps, totals, opt.lr());
    if (s.world) record_communication(s, index, epoch, comm_at_epoch_start, totals);
    record_quantizer_state(s, index, (epoch + 1) * steps);
    ++s.epochs_trained;
    const bool last = epoch + 1 == epochs;
    if (last || (eval_every > 0 && (epoch + 1) % eval_every == 0)) evaluate(s, "test", 0, index, epoch + 1, opt.lr());
    if (!last) {
      save_resume_point(s, s.point(index, epoch + 1, 0, true), &opt);
      if (s.interrupt()) stop_interrupted(s, index, epoch + 1, 0);
    }
  }
  save_checkpoint(s, "stage" + std::to_string(index));
}

void save_checkpoint(const Session& s, const std::string& stem) {
  if (!s.writes()) return;
  save_weights(*s.model, s.dir->checkpoint(stem + ".pt"));
  save_state_dict(*s.model, s.dir->checkpoint(stem + ".pth"));
}

void save_resume_point(const Session& s, const ResumePoint& point, const Optimizer* optimizer) {
  if (!s.writes()) return;
  save_resume(s.dir->checkpoint("resume.pt"), point, *s.model, optimizer);
}

void prepare_stage(Session& s, const Params& stage, std::int64_t index, bool resumed) {
  const bool quantized = s.quantizer && (!stage.has("quantized") || stage.get<bool>("quantized"));
  if (quantized) attach_quantizers(*s.model, *s.quantizer);  // a no-op for layers that have them
  const std::string init = stage.get<std::string>("init");
  if (!init.empty() && !resumed && s.writes()) {  // the other ranks get rank 0's weights by broadcast
    bool own = init.rfind("stage", 0) == 0 && init.find('/') == std::string::npos;
    std::filesystem::path file = own ? s.dir->checkpoint(init + ".pt") : std::filesystem::path(init);
    if (!std::filesystem::exists(file)) stage.fail("init", file.string() + ": no such checkpoint");
    LoadReport r =
        load_state_dict(*s.model, read_state_dict(file.string()), file.string(), stage.get<bool>("init_partial"));
    if (r.complete()) s.log.info("stage {}: weights from {}: {}", index, file.string(), r.describe());
    else s.log.warn("stage {}: weights from {}, partially: {}", index, file.string(), r.describe());
  }
  apply_bits(*s.model, s.bits, !quantized);
  if (quantized) s.log.info("stage {}: quantized with '{}'\n{}", index, s.pipeline.quantizer->use(), bits_table(s.bits));
  else s.log.info("stage {}: full precision", index);
}

}  // namespace saq::host

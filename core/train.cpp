#include <chrono>
#include <cmath>
#include <csignal>
#include <limits>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "checkpoint.hpp"
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
  st.spec.batch_size = s.pipeline.data->get<std::int64_t>("batch_size");
  st.spec.train = true;
  st.spec.seed = static_cast<std::uint64_t>(s.pipeline.run->get<std::int64_t>("seed"));
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
  const int sig = pending_interrupt();
  throw Interrupted(fmt::format("{} at stage {}, epoch {}, step {}: checkpoint saved; continue with: saqhost resume {}",
                                sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)", index, epoch + 1,
                                step, s.dir->path().string()),
                    sig);
}

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
  s.log.info("stage {} (train): {} epochs x {} steps, batch {}, optimizer '{}'", index, epochs, steps,
             st.spec.batch_size, st.opt_name);

  s.model->train();
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
      const double ms = ms_since(t0);
      const std::int64_t global_step = epoch * steps + step + 1;
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
        const std::int64_t n = y.size(0);
        totals.loss_sum += r.loss * static_cast<double>(n);
        totals.rho = r.rho;
        if (std::isfinite(r.sharpness)) totals.sharpness_sum += r.sharpness, ++totals.sharpness_steps;
        totals.ms_sum += ms;
        totals.seen += n;
        if (clean_logits.defined()) {
          Correct c = count_correct(clean_logits, y);
          totals.top1 += c.top1;
          totals.top5 += c.top5;
        }
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
      if (!epoch_end && (pending_interrupt() || (checkpoint_every > 0 && global_step % checkpoint_every == 0)))
        save_resume_point(s, s.point(index, epoch, step + 1, true, totals), &opt);
      maybe_kill_after_step(++s.steps_here);
      if (!epoch_end && pending_interrupt()) stop_interrupted(s, index, epoch, step + 1);
    }
    if (bar) bar->finish();
    if (totals.seen == 0 && totals.skipped == 0) throw RunError("the training split gave no batches");
    record_epoch(s, index, epoch, epochs, steps, totals, opt.lr());
    record_quantizer_state(s, index, (epoch + 1) * steps);
    ++s.epochs_trained;
    const bool last = epoch + 1 == epochs;
    if (last || (eval_every > 0 && (epoch + 1) % eval_every == 0)) evaluate(s, "test", 0, index, epoch + 1, opt.lr());
    if (!last) {
      save_resume_point(s, s.point(index, epoch + 1, 0, true), &opt);
      if (pending_interrupt()) stop_interrupted(s, index, epoch + 1, 0);
    }
  }
  save_checkpoint(s, "stage" + std::to_string(index));
}

void save_checkpoint(const Session& s, const std::string& stem) {
  save_weights(*s.model, s.dir->checkpoint(stem + ".pt"));
  save_state_dict(*s.model, s.dir->checkpoint(stem + ".pth"));
}

void save_resume_point(const Session& s, const ResumePoint& point, const Optimizer* optimizer) {
  save_resume(s.dir->checkpoint("resume.pt"), point, *s.model, optimizer);
}

void prepare_stage(Session& s, const Params& stage, std::int64_t index, bool resumed) {
  const bool quantized = s.quantizer && (!stage.has("quantized") || stage.get<bool>("quantized"));
  if (quantized) attach_quantizers(*s.model, *s.quantizer);  // a no-op for layers that have them
  const std::string init = stage.get<std::string>("init");
  if (!init.empty() && !resumed) {
    bool own = init.rfind("stage", 0) == 0 && init.find('/') == std::string::npos;
    std::filesystem::path file = own ? s.dir->checkpoint(init + ".pt") : std::filesystem::path(init);
    if (!std::filesystem::exists(file)) stage.fail("init", file.string() + ": no such checkpoint");
    if (is_libtorch_archive(file)) {
      auto skipped = load_weights(*s.model, file);
      s.log.info("stage {}: weights from {}{}", index, file.string(),
                 skipped.empty() ? "" : fmt::format(" ({} quantizer tensors keep their state)", skipped.size()));
    } else {
      LoadReport r =
          load_state_dict(*s.model, read_state_dict(file.string()), file.string(), stage.get<bool>("init_partial"));
      if (r.complete()) s.log.info("stage {}: weights from {}: {}", index, file.string(), r.describe());
      else s.log.warn("stage {}: weights from {}, partially: {}", index, file.string(), r.describe());
    }
  }
  apply_bits(*s.model, s.bits, !quantized);
  if (quantized) s.log.info("stage {}: quantized with '{}'\n{}", index, s.pipeline.quantizer->use(), bits_table(s.bits));
  else s.log.info("stage {}: full precision", index);
}

}  // namespace saq::host

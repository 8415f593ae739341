#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "errors.hpp"
#include "json.hpp"
#include "checkpoint.hpp"
#include "loss.hpp"
#include "param_groups.hpp"
#include "schedule.hpp"
#include "session.hpp"
#include "state_dict.hpp"

namespace saq::host {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

Evaluation evaluate(Session& s, const std::string& split, std::int64_t limit_batches, std::int64_t stage,
                    std::int64_t epoch, double lr) {
  LoaderSpec spec;
  spec.split = split;
  spec.batch_size = s.pipeline.data->get<std::int64_t>("eval_batch_size");
  spec.train = false;
  spec.seed = static_cast<std::uint64_t>(s.pipeline.run->get<std::int64_t>("seed"));
  std::unique_ptr<Loader> loader;
  try {
    loader = s.data->loader(spec);  // the first loader() reads the data files: their errors are bad input
  } catch (const std::exception& e) {
    throw InputError(e.what());
  }
  s.model->eval();
  at::NoGradGuard no_grad;
  Evaluation ev;
  ev.split = split;
  double loss_sum = 0;
  Correct correct_sum;
  std::int64_t batches = 0;
  auto t0 = Clock::now();
  Batch b;
  while ((limit_batches == 0 || batches < limit_batches) && loader->next(b)) {
    at::Tensor x = b.x.to(s.device), y = b.y.to(s.device);
    at::Tensor logits = s.model->forward(x);
    loss_sum += cross_entropy_per_sample(logits, y, 0.0).sum().item<double>();
    Correct c = count_correct(logits, y);
    correct_sum.top1 += c.top1;
    correct_sum.top5 += c.top5;
    ev.samples += y.size(0);
    ++batches;
  }
  s.model->train();
  if (ev.samples == 0) throw RunError("split '" + split + "' gave no samples to evaluate");
  ev.loss = loss_sum / static_cast<double>(ev.samples);
  ev.top1 = 100.0 * static_cast<double>(correct_sum.top1) / static_cast<double>(ev.samples);
  ev.top5 = 100.0 * static_cast<double>(correct_sum.top5) / static_cast<double>(ev.samples);
  ev.ms_per_batch = ms_since(t0) / static_cast<double>(batches);
  s.dir->metrics(JsonObject()
                    .add("stage", stage).add("epoch", epoch).add("split", split)
                    .add("loss", ev.loss).add("top1", ev.top1).add("top5", ev.top5)
                    .add("samples", ev.samples).add("lr", lr).add("step_ms", ev.ms_per_batch).str());
  s.log.info("stage {} epoch {} {}: loss {:.4f} top1 {:.2f}% top5 {:.2f}% ({} samples)", stage, epoch, split,
             ev.loss, ev.top1, ev.top5, ev.samples);
  if (split == "test") s.last_test = ev;
  return ev;
}

void train(Session& s, const Params& stage, std::int64_t index) {
  const auto epochs = stage.get<std::int64_t>("epochs");
  const auto limit = stage.get<std::int64_t>("limit_batches");
  const auto log_every = stage.get<std::int64_t>("log_every");
  const auto eval_every = stage.get<std::int64_t>("eval_every");
  const double smoothing = stage.get<double>("label_smoothing");

  LoaderSpec spec;
  spec.split = "train";
  spec.batch_size = s.pipeline.data->get<std::int64_t>("batch_size");
  spec.train = true;
  spec.seed = static_cast<std::uint64_t>(s.pipeline.run->get<std::int64_t>("seed"));
  const std::string opt_name = stage.has("optimizer") ? stage.child("optimizer").use() : s.pipeline.optimizer->use();
  std::unique_ptr<Loader> loader;
  std::shared_ptr<Optimizer> opt;
  try {
    loader = s.data->loader(spec);
    Context ctx = s.context();
    std::vector<std::string> warnings;
    ctx.groups = make_param_groups(*s.model, stage, warnings);
    ctx.model = s.model;
    for (const auto& w : warnings) s.log.warn("{}", w);
    for (const auto& g : ctx.groups)
      s.log.info("parameter group {}: {} tensors{}{}", g.name, g.params.size(),
                 g.lr ? fmt::format(", lr {}", *g.lr) : "", g.weight_decay ? fmt::format(", weight decay {}", *g.weight_decay) : "");
    const Params& op = stage.has("optimizer") ? stage.child("optimizer") : *s.pipeline.optimizer;
    opt = s.registry.make<Optimizer>(s.registry.require(Kind::Optimizer, op.use(), op.origin()), op, ctx);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(e.what());
  }
  std::int64_t steps = loader->num_batches();
  if (limit > 0) steps = std::min(steps, limit);
  LrSchedule schedule(stage, steps);
  s.log.info("stage {} (train): {} epochs x {} steps, batch {}, optimizer '{}'", index, epochs, steps,
             spec.batch_size, opt_name);

  s.model->train();
  for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
    loader->start_epoch(epoch);
    double loss_sum = 0, ms_sum = 0, sharpness_sum = 0, rho = std::numeric_limits<double>::quiet_NaN();
    std::int64_t sharpness_steps = 0;
    Correct correct_sum;
    std::int64_t seen = 0;
    Batch batch;
    for (std::int64_t step = 0; step < steps && loader->next(batch); ++step) {
      opt->set_lr_factor(schedule.factor(epoch, step));
      opt->begin_step(Progress{epoch, epochs, step, steps});
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
      StepResult r = opt->step(loss_fn);
      double ms = ms_since(t0);
      if (!std::isfinite(r.loss))
        throw RunError(fmt::format("non-finite training loss ({}) at stage {}, epoch {}, step {}; the last "
                                   "checkpoint in {} is intact",
                                   r.loss, index, epoch + 1, step + 1, (s.dir->path() / "checkpoints").string()));
      const std::int64_t n = y.size(0);
      loss_sum += r.loss * static_cast<double>(n);
      rho = r.rho;
      if (std::isfinite(r.sharpness)) sharpness_sum += r.sharpness, ++sharpness_steps;
      ms_sum += ms;
      seen += n;
      if (clean_logits.defined()) {
        Correct c = count_correct(clean_logits, y);
        correct_sum.top1 += c.top1;
        correct_sum.top5 += c.top5;
      }
      if (log_every > 0 && (step + 1) % log_every == 0) {
        s.log.info("stage {} epoch {}/{} step {}/{}: loss {:.4f} lr {:.4g} {:.0f} img/s", index, epoch + 1, epochs,
                   step + 1, steps, r.loss, opt->lr(), 1000.0 * static_cast<double>(n) / ms);
        s.dir->metrics(JsonObject()
                          .add("stage", index).add("epoch", epoch + 1).add("step", epoch * steps + step + 1)
                          .add("split", "train_step").add("loss", r.loss).add("lr", opt->lr())
                          .add("rho", r.rho).add("sharpness", r.sharpness).add("eps_norm", r.perturbation_norm)
                          .add("step_ms", ms).str());
      }
    }
    if (seen == 0) throw RunError("the training split gave no batches");
    const double steps_done = static_cast<double>(seen) / static_cast<double>(spec.batch_size);
    s.dir->metrics(JsonObject()
                      .add("stage", index).add("epoch", epoch + 1).add("step", (epoch + 1) * steps)
                      .add("split", "train").add("loss", loss_sum / static_cast<double>(seen))
                      .add("top1", 100.0 * static_cast<double>(correct_sum.top1) / static_cast<double>(seen))
                      .add("top5", 100.0 * static_cast<double>(correct_sum.top5) / static_cast<double>(seen))
                      .add("lr", opt->lr()).add("rho", rho)
                      .add("sharpness", sharpness_steps ? sharpness_sum / static_cast<double>(sharpness_steps)
                                                        : std::numeric_limits<double>::quiet_NaN())
                      .add("step_ms", ms_sum / std::max(1.0, std::ceil(steps_done)))
                      .add("images_per_s", 1000.0 * static_cast<double>(seen) / ms_sum).str());
    s.log.info("stage {} epoch {}/{} train: loss {:.4f} top1 {:.2f}% ({:.0f} img/s)", index, epoch + 1, epochs,
               loss_sum / static_cast<double>(seen),
               100.0 * static_cast<double>(correct_sum.top1) / static_cast<double>(seen),
               1000.0 * static_cast<double>(seen) / ms_sum);
    ++s.epochs_trained;
    bool last = epoch + 1 == epochs;
    if (last || (eval_every > 0 && (epoch + 1) % eval_every == 0)) evaluate(s, "test", 0, index, epoch + 1, opt->lr());
  }
  save_checkpoint(s, "stage" + std::to_string(index));
}

void save_checkpoint(const Session& s, const std::string& stem) {
  save_weights(*s.model, s.dir->checkpoint(stem + ".pt"));
  save_state_dict(*s.model, s.dir->checkpoint(stem + ".pth"));
}

void prepare_stage(Session& s, const Params& stage, std::int64_t index) {
  const bool quantized = s.quantizer && stage.get<bool>("quantized");
  if (quantized) attach_quantizers(*s.model, *s.quantizer);  // a no-op for layers that have them
  const std::string init = stage.get<std::string>("init");
  if (!init.empty()) {
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

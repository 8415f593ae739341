#include <chrono>
#include <new>

#include <ATen/ATen.h>

#include "data_parallel.hpp"
#include "errors.hpp"
#include "json.hpp"
#include "loss.hpp"
#include "session.hpp"
#include "train_log.hpp"

namespace saq::host {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

std::unique_ptr<Loader> open_loader(const Session& s, const LoaderSpec& spec) {
  try {
    return s.data->loader(spec);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(e.what());
  }
}

bool next_batch(Loader& loader, Batch& batch) {
  try {
    return loader.next(batch);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(e.what());
  }
}

Evaluation evaluate(Session& s, const std::string& split, std::int64_t limit_batches, std::int64_t stage,
                    std::int64_t epoch, double lr) {
  LoaderSpec spec;
  spec.split = split;
  spec.batch_size = s.pipeline.data->get<std::int64_t>("eval_batch_size");
  spec.train = false;
  spec.seed = static_cast<std::uint64_t>(s.pipeline.run->get<std::int64_t>("seed"));
  if (s.world) {
    // Data parallel: rank r evaluates the r-th contiguous part of what one process would (the first
    // limit_batches batches, or the whole split); the counts summed over the ranks are the same counts.
    std::int64_t n = open_loader(s, spec)->num_samples();
    if (limit_batches > 0) n = std::min(n, limit_batches * spec.batch_size);
    const std::int64_t w = s.world_size(), r = s.world->rank();
    spec.begin = n * r / w;
    spec.end = n * (r + 1) / w;
    limit_batches = 0;
  }
  auto loader = spec.begin < spec.end || spec.end < 0 ? open_loader(s, spec) : nullptr;  // a rank may have none
  s.model->eval();
  at::NoGradGuard no_grad;
  Evaluation ev;
  ev.split = split;
  double loss_sum = 0;
  Correct correct_sum;
  std::int64_t batches = 0;
  auto t0 = Clock::now();
  Batch b;
  while (loader && (limit_batches == 0 || batches < limit_batches) && next_batch(*loader, b)) {
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
  if (s.world) {
    std::vector<double> v{loss_sum, static_cast<double>(ev.samples), static_cast<double>(correct_sum.top1),
                          static_cast<double>(correct_sum.top5), static_cast<double>(batches)};
    sum_over_ranks(*s.world, v);
    loss_sum = v[0], ev.samples = static_cast<std::int64_t>(v[1]);
    correct_sum.top1 = static_cast<std::int64_t>(v[2]), correct_sum.top5 = static_cast<std::int64_t>(v[3]);
    batches = std::max<std::int64_t>(1, static_cast<std::int64_t>(v[4]) / s.world_size());
  }
  if (ev.samples == 0) throw RunError("split '" + split + "' gave no samples to evaluate");
  ev.loss = loss_sum / static_cast<double>(ev.samples);
  ev.top1 = 100.0 * static_cast<double>(correct_sum.top1) / static_cast<double>(ev.samples);
  ev.top5 = 100.0 * static_cast<double>(correct_sum.top5) / static_cast<double>(ev.samples);
  ev.ms_per_batch = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / static_cast<double>(batches);
  record(s, stage, epoch, -1, split,
         {{"loss", ev.loss}, {"top1", ev.top1}, {"top5", ev.top5}, {"samples", static_cast<double>(ev.samples)},
          {"lr", lr}, {"step_ms", ev.ms_per_batch}});
  s.log.info("stage {} epoch {} {}: loss {:.4f} top1 {:.2f}% top5 {:.2f}% ({} samples)", stage, epoch, split,
             ev.loss, ev.top1, ev.top5, ev.samples);
  if (split == "test") s.last_test = ev;
  return ev;
}

}  // namespace saq::host

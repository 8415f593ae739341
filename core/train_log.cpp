#include "train_log.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include <ATen/ATen.h>

#include "errors.hpp"
#include "json.hpp"
#include "tfevents.hpp"

namespace saq::host {

namespace fs = std::filesystem;

void record(Session& s, std::int64_t stage, std::int64_t epoch, std::int64_t step, const std::string& split,
            const Scalars& values) {
  JsonObject o;
  o.add("stage", stage).add("epoch", epoch);
  if (step >= 0) o.add("step", step);
  o.add("split", split);
  for (const auto& [name, v] : values) o.add(name, v);
  s.dir->metrics(o.str());
  if (!s.events) return;
  const std::string prefix = "stage" + std::to_string(stage) + "/" + split + "/";
  for (const auto& [name, v] : values)
    if (std::isfinite(v)) s.events->scalar(prefix + name, step >= 0 ? step : epoch, v);
}

void record_epoch(Session& s, std::int64_t index, std::int64_t epoch, std::int64_t epochs, std::int64_t steps,
                  const EpochTotals& t, double lr) {
  if (t.seen == 0) {  // every step of the epoch was skipped
    record(s, index, epoch + 1, (epoch + 1) * steps, "train", {{"skipped_steps", static_cast<double>(t.skipped)}});
    s.log.warn("stage {} epoch {}/{}: every step was skipped (non-finite)", index, epoch + 1, epochs);
    return;
  }
  const double seen = static_cast<double>(t.seen);
  Scalars v = {{"loss", t.loss_sum / seen},
               {"top1", 100.0 * static_cast<double>(t.top1) / seen},
               {"top5", 100.0 * static_cast<double>(t.top5) / seen},
               {"lr", lr},
               {"rho", t.rho},
               {"sharpness", t.sharpness_steps ? t.sharpness_sum / static_cast<double>(t.sharpness_steps)
                                               : std::numeric_limits<double>::quiet_NaN()},
               {"step_ms", t.ms_sum / static_cast<double>(std::max<std::int64_t>(1, steps - t.skipped))},
               {"images_per_s", 1000.0 * seen / t.ms_sum}};
  if (t.skipped) v.emplace_back("skipped_steps", static_cast<double>(t.skipped));
  record(s, index, epoch + 1, (epoch + 1) * steps, "train", v);
  s.log.info("stage {} epoch {}/{} train: loss {:.4f} top1 {:.2f}% ({:.0f} img/s){}", index, epoch + 1, epochs,
             t.loss_sum / seen, 100.0 * static_cast<double>(t.top1) / seen, 1000.0 * seen / t.ms_sum,
             t.skipped ? fmt::format(", {} non-finite steps skipped", t.skipped) : "");
}

void record_quantizer_state(Session& s, std::int64_t stage, std::int64_t step) {
  if (!s.events) return;
  at::NoGradGuard no_grad;
  for (const auto& [name, layer] : quant_layers(*s.model)) {
    if (!layer->quantizable()) continue;
    for (const auto& p : layer->named_parameters(true)) {
      if (p.key().find("_quantizer.") == std::string::npos) continue;
      s.events->scalar("stage" + std::to_string(stage) + "/quantizer/" + name + "." + p.key(), step,
                       p.value().detach().to(at::kDouble).mean().item<double>());
    }
  }
}

std::unique_ptr<ProgressDisplay> progress_bar(const Session& s, std::int64_t stage, std::int64_t epoch,
                                              std::int64_t epochs, std::int64_t steps) {
  if (!::isatty(2) || !s.log.should_log(spdlog::level::info)) return nullptr;
  const std::string label = "stage " + std::to_string(stage) + " epoch " + std::to_string(epoch + 1) + "/" +
                            std::to_string(epochs);
  return std::make_unique<ProgressDisplay>(steps, ProgressOptions::for_stderr(label, 0));
}

void open_events(Session& s, bool resuming, std::uint64_t bytes) {
  if (!s.pipeline.run->get<bool>("tensorboard")) return;
  const fs::path dir = s.dir->path() / "tensorboard";
  if (resuming) {
    fs::path file;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0 && e.path() > file) file = e.path();
    if (!file.empty()) {
      s.events = std::make_unique<TfEventsWriter>(TfEventsWriter::reopen(file, bytes));
      return;
    }
  }
  s.events = std::make_unique<TfEventsWriter>(dir);
}

}  // namespace saq::host

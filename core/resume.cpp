#include "resume.hpp"

#include <stdexcept>
#include <string>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <saq/torch_file.hpp>

#include "checkpoint.hpp"
#include "run_dir.hpp"
#include "state_dict.hpp"

namespace saq::host {

// checkpoints/resume.pt, a torch.save file:
//   format, kind, point {stage, epoch, step, ..., totals {...}, test {...}}, rng_cpu, model {state_dict},
//   optimizer {the optimizer's own state} (absent at a stage boundary)
// Integers are ints and doubles 0-d float64 tensors: both bit-exact.

void save_resume(const std::filesystem::path& path, const ResumePoint& p, const torch::nn::Module& model,
                 const Optimizer* optimizer) {
  StateDict a;
  a.put_int("format", kCheckpointFormat);
  a.put_text("kind", "saqhost resume");
  StateDict& q = a.child("point");
  q.put_int("stage", p.stage);
  q.put_int("epoch", p.epoch);
  q.put_int("step", p.step);
  q.put_bool("in_stage", p.in_stage);
  q.put_int("epochs_trained", p.epochs_trained);
  q.put_bool("quantizers_attached", p.quantizers_attached);
  StateDict& t = q.child("totals");
  t.put_real("loss_sum", p.totals.loss_sum);
  t.put_real("ms_sum", p.totals.ms_sum);
  t.put_real("sharpness_sum", p.totals.sharpness_sum);
  t.put_real("rho", p.totals.rho);
  t.put_int("sharpness_steps", p.totals.sharpness_steps);
  t.put_int("top1", p.totals.top1);
  t.put_int("top5", p.totals.top5);
  t.put_int("seen", p.totals.seen);
  t.put_int("skipped", p.totals.skipped);
  if (p.last_test) {
    StateDict& e = q.child("test");
    e.put_real("loss", p.last_test->loss);
    e.put_real("top1", p.last_test->top1);
    e.put_real("top5", p.last_test->top5);
    e.put_int("samples", p.last_test->samples);
  }
  q.put_int("metrics_bytes", static_cast<std::int64_t>(p.metrics_bytes));
  q.put_int("events_bytes", static_cast<std::int64_t>(p.events_bytes));
  q.put_int("consecutive_skipped", p.consecutive_skipped);
  q.put_real("seconds", p.seconds);
  q.put_int("world_size", p.world_size);
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    a.put_tensor("rng_cpu", gen.get_state());
  }
  a.child("model") = module_state(model);
  if (optimizer) optimizer->save(a.child("optimizer"));
  write_atomically(path, [&](const std::filesystem::path& tmp) { write_state(tmp.string(), a); });
}

ResumeFile::ResumeFile(const std::filesystem::path& path) : path_(path) {
  if (is_torchscript_archive(path.string()))
    throw std::runtime_error(path.string() + ": a resume checkpoint of an earlier saqhost (a TorchScript archive), "
                                             "which this one does not read; start the run again (its stage "
                                             "checkpoints convert with `saqhost convert OLD.pt NEW.pt`)");
  try {
    state_ = std::make_unique<StateDict>(read_state(path.string()));
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw std::runtime_error(path.string() + ": not a readable resume checkpoint (" + what.substr(0, what.find('\n')) + ")");
  }
  const StateDict& a = *state_;
  if (!a.has("kind") || a.text("kind") != "saqhost resume")
    throw std::runtime_error(path.string() + ": not a resume checkpoint (no kind \"saqhost resume\")");
  if (a.integer("format") != kCheckpointFormat)
    throw std::runtime_error(path.string() + ": resume checkpoint format " + std::to_string(a.integer("format")) +
                             ", this saqhost reads format " + std::to_string(kCheckpointFormat));
  const StateDict& q = a.child("point");
  ResumePoint& p = point_;
  p.stage = q.integer("stage");
  p.epoch = q.integer("epoch");
  p.step = q.integer("step");
  p.in_stage = q.boolean("in_stage");
  p.epochs_trained = q.integer("epochs_trained");
  p.quantizers_attached = q.boolean("quantizers_attached");
  const StateDict& t = q.child("totals");
  p.totals.loss_sum = t.real("loss_sum");
  p.totals.ms_sum = t.real("ms_sum");
  p.totals.sharpness_sum = t.real("sharpness_sum");
  p.totals.rho = t.real("rho");
  p.totals.sharpness_steps = t.integer("sharpness_steps");
  p.totals.top1 = t.integer("top1");
  p.totals.top5 = t.integer("top5");
  p.totals.seen = t.integer("seen");
  p.totals.skipped = t.integer("skipped");
  if (q.has("test")) {
    const StateDict& e = q.child("test");
    p.last_test = TestResult{e.real("loss"), e.real("top1"), e.real("top5"), e.integer("samples")};
  }
  p.metrics_bytes = static_cast<std::uint64_t>(q.integer("metrics_bytes"));
  p.events_bytes = static_cast<std::uint64_t>(q.integer("events_bytes"));
  p.consecutive_skipped = q.integer("consecutive_skipped");
  p.seconds = q.real("seconds");
  p.world_size = q.integer("world_size");
}

ResumeFile::~ResumeFile() = default;

void ResumeFile::restore_model(torch::nn::Module& model) const {
  load_state_dict(model, tensors_of(state_->child("model")), path_.string(), false);
  const at::Tensor& rng = state_->tensor("rng_cpu");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(rng);  // checks the state's size and type itself
}

void ResumeFile::restore_optimizer(Optimizer& optimizer) const {
  if (!state_->has("optimizer")) throw std::runtime_error(path_.string() + ": holds no optimizer state");
  optimizer.load(state_->child("optimizer"));
}

}  // namespace saq::host

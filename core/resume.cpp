#include "resume.hpp"

#include <stdexcept>
#include <string>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "checkpoint.hpp"
#include "run_dir.hpp"

namespace saq::host {

namespace {

constexpr std::int64_t kFormat = 1;

// Scalars travel as 0-d tensors: int64 bit-exact, doubles bit-exact.
void put(torch::serialize::OutputArchive& a, const std::string& key, std::int64_t v) { a.write(key, at::scalar_tensor(v, at::kLong)); }
void put(torch::serialize::OutputArchive& a, const std::string& key, double v) { a.write(key, at::scalar_tensor(v, at::kDouble)); }

struct Reader {
  torch::serialize::InputArchive& a;
  const std::filesystem::path& path;
  at::Tensor get(const std::string& key) const {
    at::Tensor t;
    if (!a.try_read(key, t)) throw std::runtime_error(path.string() + ": not a resume checkpoint (no '" + key + "')");
    return t;
  }
  std::int64_t i(const std::string& key) const { return get(key).item<std::int64_t>(); }
  double d(const std::string& key) const { return get(key).item<double>(); }
};

}  // namespace

void save_resume(const std::filesystem::path& path, const ResumePoint& p, const torch::nn::Module& model,
                 const Optimizer* optimizer) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    torch::serialize::OutputArchive a;
    put(a, "format", kFormat);
    put(a, "stage", p.stage);
    put(a, "epoch", p.epoch);
    put(a, "step", p.step);
    put(a, "in_stage", static_cast<std::int64_t>(p.in_stage));
    put(a, "epochs_trained", p.epochs_trained);
    put(a, "quantizers_attached", static_cast<std::int64_t>(p.quantizers_attached));
    put(a, "totals.loss_sum", p.totals.loss_sum);
    put(a, "totals.ms_sum", p.totals.ms_sum);
    put(a, "totals.sharpness_sum", p.totals.sharpness_sum);
    put(a, "totals.rho", p.totals.rho);
    put(a, "totals.sharpness_steps", p.totals.sharpness_steps);
    put(a, "totals.top1", p.totals.top1);
    put(a, "totals.top5", p.totals.top5);
    put(a, "totals.seen", p.totals.seen);
    put(a, "totals.skipped", p.totals.skipped);
    put(a, "has_test", static_cast<std::int64_t>(p.last_test.has_value()));
    if (p.last_test) {
      put(a, "test.loss", p.last_test->loss);
      put(a, "test.top1", p.last_test->top1);
      put(a, "test.top5", p.last_test->top5);
      put(a, "test.samples", p.last_test->samples);
    }
    put(a, "metrics_bytes", static_cast<std::int64_t>(p.metrics_bytes));
    put(a, "events_bytes", static_cast<std::int64_t>(p.events_bytes));
    put(a, "consecutive_skipped", p.consecutive_skipped);
    put(a, "seconds", p.seconds);
    put(a, "world_size", p.world_size);
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      a.write("rng_cpu", gen.get_state());
    }
    torch::serialize::OutputArchive m;
    model.save(m);
    a.write("model", m);
    if (optimizer) {
      torch::serialize::OutputArchive o;
      optimizer->save(o);
      a.write("optimizer", o);
    }
    write_archive(a, tmp);
  });
}

ResumeFile::ResumeFile(const std::filesystem::path& path)
    : path_(path), archive_(std::make_unique<torch::serialize::InputArchive>()) {
  try {
    check_archive_sizes(path);
    archive_->load_from(path.string());
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw std::runtime_error(path.string() + ": not a readable resume checkpoint (" + what.substr(0, what.find('\n')) + ")");
  }
  Reader r{*archive_, path_};
  if (r.i("format") != kFormat)
    throw std::runtime_error(path.string() + ": resume checkpoint format " + std::to_string(r.i("format")) +
                             ", this saqhost reads format " + std::to_string(kFormat));
  ResumePoint& p = point_;
  p.stage = r.i("stage");
  p.epoch = r.i("epoch");
  p.step = r.i("step");
  p.in_stage = r.i("in_stage") != 0;
  p.epochs_trained = r.i("epochs_trained");
  p.quantizers_attached = r.i("quantizers_attached") != 0;
  p.totals.loss_sum = r.d("totals.loss_sum");
  p.totals.ms_sum = r.d("totals.ms_sum");
  p.totals.sharpness_sum = r.d("totals.sharpness_sum");
  p.totals.rho = r.d("totals.rho");
  p.totals.sharpness_steps = r.i("totals.sharpness_steps");
  p.totals.top1 = r.i("totals.top1");
  p.totals.top5 = r.i("totals.top5");
  p.totals.seen = r.i("totals.seen");
  p.totals.skipped = r.i("totals.skipped");
  if (r.i("has_test")) p.last_test = TestResult{r.d("test.loss"), r.d("test.top1"), r.d("test.top5"), r.i("test.samples")};
  p.metrics_bytes = static_cast<std::uint64_t>(r.i("metrics_bytes"));
  p.events_bytes = static_cast<std::uint64_t>(r.i("events_bytes"));
  p.consecutive_skipped = r.i("consecutive_skipped");
  p.seconds = r.d("seconds");
  at::Tensor world;
  p.world_size = archive_->try_read("world_size", world) ? world.item<std::int64_t>() : 1;
}

ResumeFile::~ResumeFile() = default;

void ResumeFile::restore_model(torch::nn::Module& model) const {
  torch::serialize::InputArchive m;
  if (!archive_->try_read("model", m)) throw std::runtime_error(path_.string() + ": holds no model");
  load_weights(model, m, path_);
  at::Tensor rng;
  if (!archive_->try_read("rng_cpu", rng)) throw std::runtime_error(path_.string() + ": holds no RNG state");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(rng);
}

void ResumeFile::restore_optimizer(Optimizer& optimizer) const {
  torch::serialize::InputArchive o;
  if (!archive_->try_read("optimizer", o)) throw std::runtime_error(path_.string() + ": holds no optimizer state");
  optimizer.load(o);
}

}  // namespace saq::host

// Training speed of a pipeline's model: the FP32 step, the quantized (QAT) step when the pipeline has a
// [quantizer], their ratio, and the data loader's images/s alone against the training rate. When the pipeline's
// [optimizer] is sharpness-aware (sam, asam, esam, looksam, gsam), also its step against the QAT step (two passes
// make 2.0 the floor), ESAM's at beta = gamma = 0.5, LookSAM's at k = 5, GSAM's against it and MSAM's.
// usage: bench_train [PIPELINE.toml] [STEPS]     (default configs/quickstart.toml, 30 steps)
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "loss.hpp"
#include "session.hpp"
#include "pipeline.hpp"
#include "plugin_host.hpp"
#include "quantize.hpp"

using namespace saq;
using Clock = std::chrono::steady_clock;

namespace {

/// One configuration's steps (an optimizer, at FP32 or at the pipeline's bits), timed on fresh batches: the
/// configurations take turns, a few steps each (`round`), so that a machine that slows down or speeds up during the
/// run charges them alike, and the ratios printed are of steps taken side by side.
struct Timed {
  std::shared_ptr<Optimizer> opt;
  bool fp32 = false;
  int step = 0, timed = 0;
  double ms = 0;
  double mean() const { return ms / timed; }
};

class Bench {
 public:
  Bench(Model& model, Loader& loader, const std::vector<host::LayerBits>& bits)
      : model_(model), loader_(loader), bits_(bits) {
    loader_.start_epoch(1);
  }

  /// `n` steps of `t`; they count unless `warm_up` (a mean, not a median: a method whose cost comes every k-th
  /// step, LookSAM, is charged for it when n is a multiple of k).
  void run(Timed& t, int n, bool warm_up) {
    if (!bits_.empty()) host::apply_bits(model_, bits_, t.fp32);
    for (int i = 0; i < n; ++i) {
      if (!loader_.next(b_)) loader_.start_epoch(++epoch_), loader_.next(b_);
      Progress progress;  // step by step, as the host gives it (LookSAM's refreshes follow it)
      progress.step = t.step++, progress.steps_per_epoch = 1000000;
      t.opt->begin_step(progress);
      auto t0 = Clock::now();
      t.opt->step([&](const at::Tensor& rows) {  // a sub-batch by index, as the host's loss function (ESAM's selection)
        if (!rows.defined()) return host::cross_entropy_per_sample(model_.forward(b_.x), b_.y, 0.0);
        return host::cross_entropy_per_sample(model_.forward(b_.x.index_select(0, rows)), b_.y.index_select(0, rows),
                                              0.0);
      });
      if (!warm_up) t.ms += std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), ++t.timed;
    }
  }

  /// 5 warm-up steps each, then turns of `round` steps until each has `steps`.
  void run_all(std::vector<Timed*> all, int steps, int round) {
    for (Timed* t : all) run(*t, 5, true);
    for (int done = 0; done < steps; done += round)
      for (Timed* t : all) run(*t, std::min(round, steps - done), false);
  }

 private:
  Model& model_;
  Loader& loader_;
  const std::vector<host::LayerBits>& bits_;
  Batch b_;
  std::int64_t epoch_ = 1;
};

int bench(int argc, char** argv) {
  const std::string file = argc > 1 ? argv[1] : "configs/quickstart.toml";
  const int steps = argc > 2 ? std::stoi(argv[2]) : 30;
  host::Registry reg;
  host::load_plugins(reg, host::plugin_search_path({SAQ_BUILD_PLUGIN_DIR}));
  host::Pipeline p = host::load_pipeline(file, {}, reg);
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));

  Context ctx;
  auto data = reg.make<Dataset>(reg.require(Kind::Dataset, p.data->use(), file), *p.data, ctx);
  ctx.data = data->info();
  auto model = reg.make<Model>(reg.require(Kind::Model, p.model->use(), file), *p.model, ctx);
  LoaderSpec spec;
  const auto global = p.data->get<std::int64_t>("global_batch_size");  // one process: the whole global batch
  spec.batch_size = global > 0 ? global : p.data->get<std::int64_t>("batch_size");
  auto loader = data->loader(spec);

  Batch b;
  std::int64_t images = 0;
  auto t0 = Clock::now();
  for (loader->start_epoch(0); loader->next(b);) images += b.y.size(0);
  const double loader_rate = static_cast<double>(images) / std::chrono::duration<double>(Clock::now() - t0).count();

  std::vector<host::LayerBits> bits;
  if (p.quantizer) {  // quantizers attached but at 32 bits: the FP32 step runs exactly the FP32 graph
    auto quantizer = reg.make<Quantizer>(reg.require(Kind::Quantizer, p.quantizer->use(), file), *p.quantizer, ctx);
    std::vector<std::string> warnings;
    bits = host::resolve_bits(*model, *p.quantizer, warnings);
    host::attach_quantizers(*model, *quantizer);
  }
  host::HostBuilder builder(reg);
  ctx.build = &builder;
  ctx.model = model;
  ctx.groups = {ParamGroup{"all", model->parameters(), std::nullopt, std::nullopt}};
  // The pipeline's optimizer with `overrides` applied (ρ = 0 makes a sharpness-aware one its base alone).
  auto optimizer = [&](const std::vector<std::string>& overrides) {
    host::Pipeline q = host::load_pipeline(file, overrides, reg);
    return reg.make<Optimizer>(reg.require(Kind::Optimizer, q.optimizer->use(), file), *q.optimizer, ctx);
  };
  const std::string use = p.optimizer->use();
  const bool sharpness_aware =
      use == "sam" || use == "asam" || use == "esam" || use == "looksam" || use == "gsam" || use == "msam";
  auto opt = optimizer(sharpness_aware ? std::vector<std::string>{"optimizer.rho=0"} : std::vector<std::string>{});
  model->train();
  Bench bench(*model, *loader, bits);
  Timed fp32{opt, true}, qat{opt, false}, sam, esam, looksam, gsam, msam;
  std::vector<Timed*> all = {&fp32};
  if (p.quantizer) all.push_back(&qat);
  if (p.quantizer && sharpness_aware) {
    sam.opt = optimizer({});
    esam.opt = optimizer({"optimizer.use=esam", "optimizer.beta=0.5", "optimizer.gamma=0.5"});
    looksam.opt = optimizer({"optimizer.use=looksam", "optimizer.k=5"});
    gsam.opt = optimizer({"optimizer.use=gsam"});
    msam.opt = optimizer({"optimizer.use=msam"});
    for (Timed* t : {&sam, &esam, &looksam, &gsam, &msam}) all.push_back(t);
  }
  bench.run_all(all, steps, 5);  // turns of 5 steps: LookSAM (k = 5) refreshes once in each
  const double fp32_ms = fp32.mean();
  const double train_rate = 1000.0 * static_cast<double>(spec.batch_size) / fp32_ms;
  std::cout << "pipeline " << file << ", " << at::get_num_threads() << " threads, batch " << spec.batch_size << "\n"
            << "FP32 step:   " << fp32_ms << " ms (mean of " << fp32.timed << ", in turns of 5 steps with the others), "
            << train_rate << " images/s\n";
  if (p.quantizer) {
    const double qat_ms = qat.mean();
    std::cout << "QAT step:    " << qat_ms << " ms with '" << p.quantizer->use() << "' at the pipeline's bits\n"
              << "ratio QAT/FP32: " << qat_ms / fp32_ms << " (target <= 1.15)\n";
    if (sharpness_aware) {
      const double sam_ms = sam.mean(), esam_ms = esam.mean(), looksam_ms = looksam.mean(), gsam_ms = gsam.mean(),
                   msam_ms = msam.mean();
      std::cout << use << " step:    " << sam_ms << " ms (rho " << p.optimizer->get<double>("rho") << ", perturb "
                << p.optimizer->get<std::string>("perturb") << ")\n"
                << "ratio " << use << "/QAT: " << sam_ms / qat_ms << " (target <= 2.05)\n"
                << "esam step:   " << esam_ms << " ms (beta = gamma = 0.5)\n"
                << "ratio esam/QAT: " << esam_ms / qat_ms << " (target <= 1.75 and below " << use << "'s: (3 + beta + "
                << "3 gamma)/3 = 1.67 in FLOPs)\n"
                << "looksam step: " << looksam_ms << " ms (k = 5)\n"
                << "ratio looksam/QAT: " << looksam_ms / qat_ms << " (target <= 1.3: 1.2 passes on average)\n"
                << "gsam step:   " << gsam_ms << " ms\n"
                << "ratio gsam/" << use << ": " << gsam_ms / sam_ms << " (target <= 1.05)\n"
                << "msam step:   " << msam_ms << " ms\n"
                << "ratio msam/QAT: " << msam_ms / qat_ms << " (target <= 1.1: one pass)\n";
    }
  }
  std::cout << "data loader: " << loader_rate << " images/s\n"
            << "ratio loader/train: " << loader_rate / train_rate << " (target >= 10)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return bench(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_train: " << e.what() << "\n";
    return 2;
  }
}

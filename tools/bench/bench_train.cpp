// Training speed of a pipeline's model: the FP32 step, the quantized (QAT) step when the pipeline has a
// [quantizer], their ratio, and the data loader's images/s alone against the training rate. When the pipeline's
// [optimizer] is sharpness-aware (sam, asam, esam, looksam, gsam), also its step against the QAT step (two passes
// make 2.0 the floor), ESAM's at beta = gamma = 0.5, LookSAM's at k = 5, GSAM's against it and MSAM's.
// usage: bench_train [PIPELINE.toml] [STEPS]     (default configs/quickstart.toml, 30 steps)
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "loss.hpp"
#include "session.hpp"
#include "pipeline.hpp"
#include "plugin_host.hpp"
#include "quantize.hpp"

using namespace saq;
using Clock = std::chrono::steady_clock;

namespace {

/// Mean milliseconds of `steps` optimizer steps on fresh batches, after 5 warm-up steps: a mean, not a median,
/// so that a method whose cost comes every k-th step (LookSAM) is charged for it.
double mean_step_ms(Model& model, Optimizer& opt, Loader& loader, int steps) {
  std::vector<double> ms;
  Batch b;
  loader.start_epoch(1);
  for (int i = 0; i < steps + 5; ++i) {
    if (!loader.next(b)) loader.start_epoch(2 + i), loader.next(b);
    Progress progress;  // step by step, as the host gives it (LookSAM's refreshes follow it)
    progress.step = i, progress.steps_per_epoch = steps + 5;
    opt.begin_step(progress);
    auto t = Clock::now();
    opt.step([&](const at::Tensor& rows) {  // a sub-batch by index, as the host's loss function (ESAM's selection)
      if (!rows.defined()) return host::cross_entropy_per_sample(model.forward(b.x), b.y, 0.0);
      return host::cross_entropy_per_sample(model.forward(b.x.index_select(0, rows)), b.y.index_select(0, rows), 0.0);
    });
    if (i >= 5) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  }
  double sum = 0;
  for (double v : ms) sum += v;
  return sum / static_cast<double>(ms.size());
}

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
  host::apply_bits(*model, bits, true);
  const double fp32_ms = mean_step_ms(*model, *opt, *loader, steps);
  const double train_rate = 1000.0 * static_cast<double>(spec.batch_size) / fp32_ms;
  std::cout << "pipeline " << file << ", " << at::get_num_threads() << " threads, batch " << spec.batch_size << "\n"
            << "FP32 step:   " << fp32_ms << " ms (mean of " << steps << "), " << train_rate << " images/s\n";
  if (p.quantizer) {
    host::apply_bits(*model, bits, false);
    const double qat_ms = mean_step_ms(*model, *opt, *loader, steps);
    std::cout << "QAT step:    " << qat_ms << " ms with '" << p.quantizer->use() << "' at the pipeline's bits\n"
              << "ratio QAT/FP32: " << qat_ms / fp32_ms << " (target <= 1.15)\n";
    if (sharpness_aware) {
      auto sam = optimizer({});
      const double sam_ms = mean_step_ms(*model, *sam, *loader, steps);
      auto esam = optimizer({"optimizer.use=esam", "optimizer.beta=0.5", "optimizer.gamma=0.5"});
      const double esam_ms = mean_step_ms(*model, *esam, *loader, steps);
      std::cout << use << " step:    " << sam_ms << " ms (rho " << p.optimizer->get<double>("rho") << ", perturb "
                << p.optimizer->get<std::string>("perturb") << ")\n"
                << "ratio " << use << "/QAT: " << sam_ms / qat_ms << " (target <= 2.05)\n"
                << "esam step:   " << esam_ms << " ms (beta = gamma = 0.5)\n"
                << "ratio esam/QAT: " << esam_ms / qat_ms << " (target <= 1.75 and below " << use << "'s: (3 + beta + "
                << "3 gamma)/3 = 1.67 in FLOPs)\n";
      auto looksam = optimizer({"optimizer.use=looksam", "optimizer.k=5"});
      const double looksam_ms = mean_step_ms(*model, *looksam, *loader, steps);
      auto gsam = optimizer({"optimizer.use=gsam"});
      const double gsam_ms = mean_step_ms(*model, *gsam, *loader, steps);
      std::cout << "looksam step: " << looksam_ms << " ms (k = 5)\n"
                << "ratio looksam/QAT: " << looksam_ms / qat_ms << " (target <= 1.3: 1.2 passes on average)\n"
                << "gsam step:   " << gsam_ms << " ms\n"
                << "ratio gsam/" << use << ": " << gsam_ms / sam_ms << " (target <= 1.05)\n";
      auto msam = optimizer({"optimizer.use=msam"});
      const double msam_ms = mean_step_ms(*model, *msam, *loader, steps);
      std::cout << "msam step:   " << msam_ms << " ms\n"
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

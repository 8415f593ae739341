// Training step time and images/s of a pipeline's model, and its data loader's images/s alone.
// usage: bench_quickstart [PIPELINE.toml] [STEPS]     (default configs/quickstart.toml, 30 steps)
#include <ATen/Parallel.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "loss.hpp"
#include "pipeline.hpp"
#include "plugin_host.hpp"

using namespace saq;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

static int bench(int argc, char** argv) {
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
  ctx.groups = {ParamGroup{"all", model->parameters(), std::nullopt, std::nullopt}};
  auto opt = reg.make<Optimizer>(reg.require(Kind::Optimizer, p.optimizer->use(), file), *p.optimizer, ctx);

  LoaderSpec spec;
  spec.batch_size = p.data->get<std::int64_t>("batch_size");
  auto loader = data->loader(spec);
  Batch b;
  std::int64_t images = 0;
  auto t0 = Clock::now();
  while (loader->next(b)) images += b.y.size(0);
  const double loader_rate = static_cast<double>(images) / seconds_since(t0);

  loader->start_epoch(1);
  model->train();
  double train_s = 0;
  std::int64_t trained = 0;
  for (int i = 0; i < steps + 5; ++i) {
    if (!loader->next(b)) loader->start_epoch(2 + i), loader->next(b);
    auto t = Clock::now();
    opt->step([&](const at::Tensor&) { return host::cross_entropy_per_sample(model->forward(b.x), b.y, 0.0); });
    if (i >= 5) train_s += seconds_since(t), trained += b.y.size(0);  // the first steps warm the allocator
  }
  const double train_rate = static_cast<double>(trained) / train_s;
  std::cout << "pipeline " << file << ", " << at::get_num_threads() << " threads, batch " << spec.batch_size << "\n"
            << "train step:  " << 1000.0 * train_s / steps << " ms/step, " << train_rate << " images/s\n"
            << "data loader: " << loader_rate << " images/s\n"
            << "ratio loader/train: " << loader_rate / train_rate << " (target >= 10)\n";
  return 0;
}

int main(int argc, char** argv) {
  try {
    return bench(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_quickstart: " << e.what() << "\n";
    return 2;
  }
}

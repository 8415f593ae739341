#include "analyze.hpp"

#include <unistd.h>

#include <chrono>
#include <limits>
#include <memory>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "errors.hpp"
#include "progress.hpp"
#include "run_loader.hpp"
#include "session.hpp"

namespace saq::host {

namespace fs = std::filesystem;

namespace {

struct Budget {
  std::int64_t train_samples, test_samples;
  int ascent_steps, slice_points, surface_points, eigen_iterations, trace_samples, curvature_samples;
};

Budget budget_of(const std::string& name) {
  if (name == "fast") return {256, 256, 2, 21, 0, 0, 0, 0};
  if (name == "full") return {1024, 1024, 5, 41, 13, 20, 10, 256};
  throw InputError("analyze: --budget '" + name + "' is neither fast nor full");
}

/// The first `n` samples of `split` in the data set's own order, from a seeded offset (train) or the start (test),
/// without augmentation.
std::vector<Batch> subset(Session& s, const std::string& split, std::int64_t n, std::uint64_t seed) {
  LoaderSpec spec;
  spec.split = split;
  spec.batch_size = std::min<std::int64_t>(128, n);
  spec.train = false;
  std::int64_t total = open_loader(s, spec)->num_samples();
  n = std::min(n, total);
  if (split == "train" && total > n) spec.begin = static_cast<std::int64_t>(seed * 7919 % static_cast<std::uint64_t>(total - n));
  spec.end = spec.begin + n;
  auto loader = open_loader(s, spec);
  std::vector<Batch> out;
  Batch b;
  while (next_batch(*loader, b)) out.push_back({b.x.clone(), b.y.clone()});
  return out;
}

std::vector<std::int64_t> shapes_of(Model& m) {
  std::vector<std::int64_t> out;
  for (const auto& p : m.parameters())
    for (auto d : p.sizes()) out.push_back(d);
  return out;
}

/// Every measurement of one model (the session's, as it stands) into `r`.
void measure(Session& s, RunAnalysis& r, const AnalyzeOptions& options, const Budget& budget, spdlog::logger& log) {
  Model& model = *s.model;
  const std::vector<Batch> train = subset(s, "train", budget.train_samples, options.seed);
  const std::vector<Batch> test = subset(s, "test", budget.test_samples, options.seed);
  log.info("analyze: {} ({}, {}): {} training and {} test samples", r.name, r.model, r.quantizer,
            budget.train_samples, budget.test_samples);
  std::vector<std::pair<QuantLayer*, std::pair<int, int>>> bits;  // the quantized layers' bits, for the fp32 view
  for (const auto& [name, layer] : quant_layers(model))
    if (layer->weight_bits() != kFullPrecision || layer->activation_bits() != kFullPrecision)
      bits.push_back({layer.get(), {layer->weight_bits(), layer->activation_bits()}});
  // On a terminal, one line redrawn in place over the measurements (minutes of work on CPU); the log lines say
  // what each measured, on a terminal and elsewhere.
  const std::int64_t steps = 5 + !bits.empty() + (budget.surface_points > 0) + (budget.eigen_iterations > 0);
  std::unique_ptr<ProgressDisplay> bar;
  if (::isatty(2) && log.should_log(spdlog::level::info))
    bar = std::make_unique<ProgressDisplay>(steps, ProgressOptions::for_stderr("analyze " + r.name, 0));
  std::int64_t step = 0;
  const double no_loss = std::numeric_limits<double>::quiet_NaN();
  auto next = [&](const std::string& what) {  // the measurement about to start
    if (bar) bar->set_note(what), bar->update(step, -1, no_loss);
  };
  auto done = [&](const std::string& message) {
    if (bar) bar->clear();
    log.info("{}", message);
    if (bar) bar->update(++step, -1, no_loss);
  };
  next("sharpness");
  const LossProbe qtrain(model, train, PerturbTarget::Quantized), ltrain(model, train, PerturbTarget::Latent);
  const LossProbe ltest(model, test, PerturbTarget::Latent);
  r.train_samples = qtrain.samples(), r.test_samples = ltest.samples();
  r.train_loss = ltrain.loss(ltrain.zeros());
  r.test_loss = ltest.loss(ltest.zeros());
  for (const LossProbe* p : {&qtrain, &ltrain})
    for (bool per_batch : {true, false}) {
      r.sharpness.push_back(measure_sharpness(*p, options.rhos, budget.ascent_steps, per_batch));
      done(fmt::format("analyze: {}: sharpness ({} weights, m = {}) done", r.name, target_name(p->target()),
                       per_batch ? "batch" : "subset"));
    }
  next("loss slices");
  // slices on the latent weights (they show where quantization levels flip), the random draw seeded alike for
  // every run of this architecture; the SAM direction filter-normalised the same way
  // ±0.5 of each filter's norm: a 4-bit model's levels mostly flip by then
  const std::vector<double> alphas = linspace(-0.5, 0.5, budget.slice_points);
  const auto random = filter_normalized_direction(ltrain.weights(), options.seed + 1);
  r.slices.push_back(slice(ltrain, &ltest, random, "random", alphas));
  const auto sam = filter_normalized(sam_direction(ltrain, 1.0), ltrain.weights());
  r.slices.push_back(slice(ltrain, &ltest, sam, "sam", alphas));
  done(fmt::format("analyze: {}: loss slices done", r.name));
  if (!bits.empty()) {
    next("the latent weights at full precision");
    struct Restore {  // the layers' bits come back, whatever happens
      std::vector<std::pair<QuantLayer*, std::pair<int, int>>>& b;
      ~Restore() {
        for (auto& [l, wa] : b) l->set_bits(wa.first, wa.second);
      }
    } restore{bits};
    for (auto& [l, wa] : bits) l->set_bits(kFullPrecision, kFullPrecision);
    const LossProbe ftrain(model, train, PerturbTarget::Latent), ftest(model, test, PerturbTarget::Latent);
    r.fp32_sharpness = measure_sharpness(ftrain, options.rhos, budget.ascent_steps, false);
    r.fp32_sharpness.target = "fp32 latent";
    r.fp32_slice = slice(ftrain, &ftest, random, "random", alphas);
    r.has_fp32 = true;
    done(fmt::format("analyze: {}: the latent weights at full precision done", r.name));
  }
  if (budget.surface_points > 0) {
    next("loss surface");
    const auto d2 = filter_normalized_direction(ltrain.weights(), options.seed + 2);
    const auto grid = linspace(-0.5, 0.5, budget.surface_points);
    r.surface = surface(ltrain, random, d2, grid, grid);
    r.has_surface = true;
    done(fmt::format("analyze: {}: loss surface done", r.name));
  }
  if (budget.eigen_iterations > 0) {
    next("Hessian λ_max and trace");
    DoublePrecision fp64(model);
    std::vector<Batch> few(train.begin(), train.begin() + std::min<std::ptrdiff_t>(
                                                           static_cast<std::ptrdiff_t>(train.size()),
                                                           std::max<std::int64_t>(1, budget.curvature_samples / 128)));
    const LossProbe probe(model, few, PerturbTarget::Quantized);
    const Objective f = probe.objective();
    r.eigenvalue = top_eigenvalue(f, budget.eigen_iterations, 1e-3, options.seed + 3);
    r.trace = hessian_trace(f, budget.trace_samples, options.seed + 4);
    r.curvature = true;
    done(fmt::format("analyze: {}: Hessian λ_max {:.4g} ({} iterations{}), trace {:.4g} ± {:.2g}", r.name,
                     r.eigenvalue.value, r.eigenvalue.iterations, r.eigenvalue.converged ? ", converged" : ", not converged",
                     r.trace.value, r.trace.std_error));
  }
  if (bar) bar->set_note(""), bar->finish();
}

}  // namespace

Analysis analyze_runs(const AnalyzeOptions& options, const Registry& registry, std::shared_ptr<spdlog::logger> log) {
  if (options.runs.empty()) throw InputError("analyze: which runs? (saqhost analyze RUN_DIR...)");
  for (double r : options.rhos)
    if (!(r > 0)) throw InputError(fmt::format("analyze: --rho: every ρ must be > 0, got {}", r));
  const Budget budget = budget_of(options.budget);
  Analysis a;
  a.options = options;
  a.ascent_steps = budget.ascent_steps, a.eigen_iterations = budget.eigen_iterations, a.trace_samples = budget.trace_samples;
  std::vector<std::int64_t> first_shapes;
  std::string first_model;
  for (const fs::path& dir : options.runs) {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<LoadedRun> run = load_run(dir, options.checkpoint, registry, log, "analyze");
    Session& s = *run->session;
    RunAnalysis r;
    r.name = dir.filename().string();
    r.model = run->pipeline->model->use();
    r.quantizer = run->quantized ? run->pipeline->quantizer->use() : "none (full precision)";
    r.checkpoint = run->checkpoint.string();
    if (first_shapes.empty()) first_shapes = shapes_of(*s.model), first_model = options.runs.front().string();
    else if (shapes_of(*s.model) != first_shapes)
      throw InputError(fmt::format("analyze: {} ({}) and {} are not the same model (their parameters differ in shape): "
                                   "runs are compared along the same directions, which needs one architecture; "
                                   "analyze them separately", dir.string(), r.model, first_model));
    measure(s, r, options, budget, *log);
    log->info("analyze: {} in {:.1f} s", r.name,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    a.runs.push_back(std::move(r));
  }
  return a;
}

}  // namespace saq::host

namespace saq::host {

void analyze_stage(Session& s, const Params& stage, std::int64_t index) {
  if (!s.writes()) return;
  AnalyzeOptions options;
  options.budget = stage.get<std::string>("budget");
  options.rhos = stage.get<std::vector<double>>("rho");
  options.seed = static_cast<std::uint64_t>(stage.get<std::int64_t>("seed"));
  options.checkpoint = "stage " + std::to_string(index) + " (the model as the stages before it left it)";
  options.output = s.dir->path() / stage.get<std::string>("output");
  const Budget budget = budget_of(options.budget);
  Analysis a;
  a.options = options;
  a.ascent_steps = budget.ascent_steps, a.eigen_iterations = budget.eigen_iterations, a.trace_samples = budget.trace_samples;
  RunAnalysis r;
  r.name = s.dir->path().filename().string();
  r.model = s.pipeline.model->use();
  r.quantizer = s.quantizer ? s.pipeline.quantizer->use() : "none (full precision)";
  r.checkpoint = options.checkpoint;
  measure(s, r, options, budget, s.log);
  a.runs.push_back(std::move(r));
  s.log.info("analyze: {}", write_analysis(a).string());
  s.model->train();
}

}  // namespace saq::host

#include "engine.hpp"

#include <chrono>
#include <csignal>
#include <limits>
#include <optional>
#include <cstdlib>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <torch/cuda.h>

#include "bops.hpp"
#include "data_parallel.hpp"
#include "interrupt.hpp"
#include "errors.hpp"
#include "analyze.hpp"
#include "export.hpp"
#include "json.hpp"
#include "search.hpp"
#include "session.hpp"
#include "train_log.hpp"

namespace saq::host {

namespace fs = std::filesystem;

void SpdLog::write(LogLevel level, const std::string& m) const {
  switch (level) {
    case LogLevel::Debug: log_.debug(m); break;
    case LogLevel::Info: log_.info(m); break;
    case LogLevel::Warn: log_.warn(m); break;
    case LogLevel::Error: log_.error(m); break;
  }
}

std::shared_ptr<Optimizer> HostBuilder::optimizer(const Params& params, const Context& ctx) const {
  const Component& c = registry_.require(Kind::Optimizer, params.use(), params.origin() + ": " + params.section());
  return registry_.make<Optimizer>(c, params, ctx);
}

Context Session::context() const {
  Context ctx;
  ctx.device = device;
  ctx.log = &plugin_log;
  ctx.build = &builder;
  ctx.data = info;
  ctx.seed = static_cast<std::uint64_t>(pipeline.run->get<std::int64_t>("seed"));
  ctx.collective = world;
  return ctx;
}

std::int64_t Session::batch_size() const {
  const Params& d = *pipeline.data;
  const std::int64_t global = d.get<std::int64_t>("global_batch_size");
  if (global == 0) return d.get<std::int64_t>("batch_size");
  if (d.entries().at("batch_size").origin != "default")
    d.fail("global_batch_size", "give batch_size (per process) or global_batch_size (over all processes), not both");
  if (global % world_size() != 0)
    d.fail("global_batch_size", std::to_string(global) + " does not divide among " + std::to_string(world_size()) +
                                    " processes");
  return global / world_size();
}

int Session::interrupt() const { return world ? agreed_interrupt : pending_interrupt(); }

std::string Session::resume_command() const {
  std::string cmd = "saqhost resume " + dir->path().string();
  if (world && world->world().launcher == "saqhost --nproc") cmd += " --nproc " + std::to_string(world_size());
  else if (world) cmd += " (under " + world->world().launcher + ", with " + std::to_string(world_size()) + " processes)";
  return cmd;
}

double Session::seconds() const {
  return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

ResumePoint Session::point(std::int64_t stage, std::int64_t epoch, std::int64_t step, bool in_stage,
                           const EpochTotals& totals) const {
  ResumePoint p;
  p.stage = stage, p.epoch = epoch, p.step = step, p.in_stage = in_stage;
  p.epochs_trained = epochs_trained;
  const auto layers = quant_layers(*model);
  p.quantizers_attached = !layers.empty() && layers.front().second->quantizable();
  p.totals = totals;
  if (last_test) p.last_test = TestResult{last_test->loss, last_test->top1, last_test->top5, last_test->samples};
  p.metrics_bytes = dir->metrics_bytes();
  if (events) {
    events->flush();
    p.events_bytes = events->bytes_written();
  }
  p.consecutive_skipped = consecutive_skipped;
  p.seconds = seconds();
  p.world_size = world_size();
  return p;
}

namespace {

c10::Device pick_device(const Params& run) {
  std::string want = run.get<std::string>("device");
  bool cuda = torch::cuda::is_available();
  if (want == "cuda" && !cuda)
    run.fail("device", "\"cuda\" requested, but this LibTorch sees no CUDA device (a CPU-only build, or no GPU); "
                       "use \"cpu\" or \"auto\"");
  return (want == "cuda" || (want == "auto" && cuda)) ? c10::Device(c10::kCUDA) : c10::Device(c10::kCPU);
}

/// Runs a factory or other setup step; whatever it throws is bad input (exit status 2).
template <class F>
auto setup(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(e.what());
  }
}

std::string summary_json(const Session& s, double seconds, const std::optional<CostReport>& costs) {
  JsonObject o;
  o.add("name", s.pipeline.run->get<std::string>("name")).add("pipeline", s.pipeline.file);
  o.add("dataset", s.pipeline.data->use()).add("model", s.pipeline.model->use());
  if (s.pipeline.optimizer) o.add("optimizer", s.pipeline.optimizer->use());
  if (s.last_test) {
    o.add("test_top1", s.last_test->top1).add("test_top5", s.last_test->top5).add("test_loss", s.last_test->loss);
    o.add("test_samples", s.last_test->samples);
  }
  std::int64_t params = 0;
  for (const auto& p : s.model->parameters()) params += p.numel();
  o.add("parameters", params).add("epochs", s.epochs_trained).add("seconds", seconds);
  o.add("device", s.device.str()).add("threads", static_cast<std::int64_t>(at::get_num_threads()));
  o.add("seed", s.pipeline.run->get<std::int64_t>("seed"));
  o.add("world_size", static_cast<std::int64_t>(s.world_size()));
  o.add("global_batch_size", s.batch_size() * s.world_size());
  if (costs) o.add("quantizer", s.pipeline.quantizer->use()).raw("bops", cost_json(*costs));
  return o.str() + "\n";
}

}  // namespace

void build_components(Session& s) {
  const Registry& registry = s.registry;
  const Params& dp = *s.pipeline.data;
  setup([&] { return s.batch_size(); });
  s.data = setup([&] { return registry.make<Dataset>(registry.require(Kind::Dataset, dp.use(), dp.origin()), dp, s.context()); });
  s.info = s.data->info();
  const Params& mp = *s.pipeline.model;
  s.model = setup([&] { return registry.make<Model>(registry.require(Kind::Model, mp.use(), mp.origin()), mp, s.context()); });
  s.model->to(s.device);
  if (!s.pipeline.quantizer) return;
  const Params& qp = *s.pipeline.quantizer;
  s.quantizer = setup([&] {
    return registry.make<Quantizer>(registry.require(Kind::Quantizer, qp.use(), qp.origin()), qp, s.context());
  });
  std::vector<std::string> warnings;
  s.bits = setup([&] { return resolve_bits(*s.model, qp, warnings); });
  check_quantizer_bits(*s.model, *s.quantizer, qp.use(), s.bits);
  for (const auto& w : warnings) s.log.warn("{}", w);
}

/// report.md's lead: the quantizer and its bit keys, the test top-1 once the run has one.
std::string report_lead(const Session& s) {
  const Params& q = *s.pipeline.quantizer;
  std::string out = fmt::format("Quantizer: `{}` (weight_bits {}, activation_bits {}; per-layer bits below).\n", q.use(),
                                q.get<std::int64_t>("weight_bits"), q.get<std::int64_t>("activation_bits"));
  if (s.last_test)
    out += fmt::format("Test top-1: {:.2f}% (top-5 {:.2f}%, {} samples, after {} epochs).\n", s.last_test->top1,
                       s.last_test->top5, s.last_test->samples, s.epochs_trained);
  else
    out += "Test top-1: not measured yet (this file is written again when the run ends).\n";
  return out;
}

std::string report_pipeline(const Pipeline& pipeline, const Registry& registry, std::shared_ptr<spdlog::logger> log) {
  Session s{pipeline, registry, *log, SpdLog(*log), HostBuilder(registry), nullptr, c10::Device(c10::kCPU)};
  build_components(s);
  if (!s.quantizer) log->warn("{}: no [quantizer]: every layer counts at 32 bits", pipeline.file);
  return cost_markdown(measure_costs(*s.model, s.info, s.quantizer ? &s.bits : nullptr), pipeline.file);
}

void check_components(const Pipeline& pipeline, const Registry& registry, std::shared_ptr<spdlog::logger> log) {
  Session s{pipeline, registry, *log, SpdLog(*log), HostBuilder(registry), nullptr, c10::Device(c10::kCPU)};
  build_components(s);
}

fs::path run_pipeline(const Pipeline& pipeline, const Registry& registry, std::shared_ptr<spdlog::logger> log,
                      const fs::path& resume_dir) {
  const Params& run = *pipeline.run;
  c10::Device device = setup([&] { return pick_device(run); });
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(run.get<double>("dist_timeout_s") * 1000));
  std::unique_ptr<C10dCollective> world = join_world(timeout, device);
  int local_processes = 1;
  if (world) {
    check_same_pipeline(*world, pipeline_fingerprint(pipeline, registry));
    local_processes = world->world().local_world_size;
    if (world->rank() != 0) {
      if (log->level() < spdlog::level::warn) log->set_level(spdlog::level::warn);  // rank 0 tells the progress
      log->set_pattern(fmt::format("[%H:%M:%S] [rank {}] %^%l%$ %v", world->rank()));
    }
  }
  std::unique_ptr<ResumeFile> resume;
  std::unique_ptr<RunDir> dir_owner;
  fs::path resuming = resume_dir;
  if (world && world->rank() != 0) {
    // rank 0 chose the directory (a new one, or the run --resume found): every rank follows it
    const std::string chosen = world->get("run_dir");
    if (world->get("resuming") == "1") resuming = chosen;
    else resuming.clear();
    dir_owner = std::make_unique<RunDir>(RunDir::observer(chosen));
  }
  if (!resuming.empty()) {
    resume = setup([&] { return std::make_unique<ResumeFile>(resuming / "checkpoints" / "resume.pt"); });
    const std::int64_t saved_world = resume->point().world_size, now = world ? world->world_size() : 1;
    if (saved_world != now)
      throw InputError(fmt::format("{}: its checkpoint was written by a run of {} process{}, this run has {}; resume "
                                   "it with {}", resuming.string(), saved_world, saved_world == 1 ? "" : "es", now,
                                   saved_world == 1 ? "one process (no --nproc)" : fmt::format("--nproc {} (or a "
                                   "torchrun/srun world of {})", saved_world, saved_world)));
  }
  if (!dir_owner) {
    if (resuming.empty()) dir_owner = std::make_unique<RunDir>(run.get<std::string>("out_dir"), run.get<std::string>("name"));
    else dir_owner = std::make_unique<RunDir>(resuming, resume->point().metrics_bytes);
    if (world) world->set("resuming", resuming.empty() ? "0" : "1"), world->set("run_dir", dir_owner->path().string());
  }
  RunDir& dir = *dir_owner;
  if (dir.writes()) log->sinks().push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>((dir.path() / "saqhost.log").string()));
  struct DropSink {  // the logger outlives this run; its file sink must not
    spdlog::logger& l;
    bool added;
    ~DropSink() {
      if (added) l.sinks().pop_back();
    }
  } drop{*log, dir.writes()};
  InterruptGuard interrupts;

  // 0 = all cores, shared by the processes of this machine; OMP_NUM_THREADS, when set, is each process's count
  // instead, as in LibTorch and under torchrun (the test suite sets it: it runs two tests side by side)
  auto threads = run.get<std::int64_t>("threads");
  const char* omp = std::getenv("OMP_NUM_THREADS");
  const int omp_threads = omp ? std::atoi(omp) : 0;
  at::set_num_threads(threads > 0       ? static_cast<int>(threads)
                      : omp_threads > 0 ? omp_threads
                                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local_processes));
  at::manual_seed(static_cast<std::uint64_t>(run.get<std::int64_t>("seed")));
  log->info("{} {} (device {}, {} threads, seed {})", resume ? "resuming run directory" : "run directory",
            dir.path().string(), device.str(), at::get_num_threads(), run.get<std::int64_t>("seed"));
  if (world)
    log->info("data parallel: {} processes ({}, {}), {} on this machine, store at {}:{}", world->world_size(),
              world->world().launcher, world->backend(), local_processes, world->world().master_addr,
              world->world().master_port);
  if (!resume && dir.writes()) write_text_atomically(dir.path() / "config.resolved.toml", pipeline.resolved_toml());

  Session s{pipeline, registry, *log, SpdLog(*log), HostBuilder(registry), &dir, device};
  s.world = world.get();
  if (dir.writes()) setup([&] { open_events(s, resume != nullptr, resume ? resume->point().events_bytes : 0); });
  build_components(s);
  std::int64_t params = 0;
  for (const auto& p : s.model->parameters()) params += p.numel();
  log->info("dataset '{}' ({} classes), model '{}' ({} parameters)", pipeline.data->use(), s.info.num_classes,
            pipeline.model->use(), params);
  std::optional<CostReport> costs;
  if (s.quantizer) {
    costs = measure_costs(*s.model, s.info, &s.bits);
    if (dir.writes())
      write_text_atomically(dir.path() / "report.md",
                            cost_markdown(*costs, pipeline.run->get<std::string>("name"), report_lead(s)));
    log->info("{:.1f} MBOPs with the quantized stages' bits (report.md)", costs->bops / 1e6);
  }

  std::size_t first_stage = 0;
  if (resume) {
    const ResumePoint& p = resume->point();
    if (p.stage > static_cast<std::int64_t>(pipeline.stages.size()))
      throw InputError(resume_dir.string() + ": its checkpoint is at stage " + std::to_string(p.stage) +
                       ", the pipeline has " + std::to_string(pipeline.stages.size()));
    if (p.quantizers_attached) attach_quantizers(*s.model, *s.quantizer);
    setup([&] { resume->restore_model(*s.model); });
    s.resume = resume.get();
    s.epochs_trained = p.epochs_trained;
    s.consecutive_skipped = p.consecutive_skipped;
    s.seconds_before = p.seconds;
    if (p.last_test) s.last_test = Evaluation{"test", p.last_test->loss, p.last_test->top1, p.last_test->top5, p.last_test->samples};
    first_stage = static_cast<std::size_t>(p.stage);
    for (std::size_t i = 0; i < first_stage; ++i)
      if (pipeline.stages[i]->use() == "search") setup([&] { reapply_search(s); });
  }

  for (size_t i = first_stage; i < pipeline.stages.size(); ++i) {
    const Params& stage = *pipeline.stages[i];
    const auto index = static_cast<std::int64_t>(i);
    const bool mid_stage = resume && i == first_stage && resume->point().in_stage;
    setup([&] { prepare_stage(s, stage, index, mid_stage); });
    if (s.world) broadcast_model(*s.world, *s.model);  // every rank starts the stage from rank 0's model
    if (stage.use() == "train") train(s, stage, index);
    else if (stage.use() == "search") search(s, stage, index);
    else if (stage.use() == "export") export_stage(s, stage);
    else if (stage.use() == "analyze") analyze_stage(s, stage, index);
    else
      evaluate(s, stage.get<std::string>("split"), stage.get<std::int64_t>("limit_batches"), index, s.epochs_trained,
               std::numeric_limits<double>::quiet_NaN());
    s.resume = nullptr;
    save_resume_point(s, s.point(index + 1, 0, 0, false), nullptr);
    if (s.world) s.agreed_interrupt = agree_on_interrupt(s.world);
    if (s.interrupt() && i + 1 < pipeline.stages.size())
      throw Interrupted(fmt::format("{} after stage {}: checkpoint saved; continue with: {}",
                                    s.interrupt() == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)",
                                    index, s.resume_command()),
                        s.interrupt());
  }
  save_checkpoint(s, "final");
  if (s.quantizer) costs = measure_costs(*s.model, s.info, &s.bits);  // a search stage may have changed the bits
  const double seconds = s.seconds();
  if (dir.writes()) {
    if (costs)
      write_text_atomically(dir.path() / "report.md",
                            cost_markdown(*costs, pipeline.run->get<std::string>("name"), report_lead(s)));
    write_text_atomically(dir.path() / "summary.json", summary_json(s, seconds, costs));
    std::error_code ec;
    fs::remove(dir.checkpoint("resume.pt"), ec);  // the run is complete: final.pt and summary.json say so
  }
  if (s.world) s.world->barrier();  // no rank leaves (closing its connections) before rank 0 has written
  if (s.last_test)
    log->info("done in {:.1f} s: test top1 {:.2f}% top5 {:.2f}%; results in {}", seconds, s.last_test->top1,
              s.last_test->top5, dir.path().string());
  return dir.path();
}

}  // namespace saq::host

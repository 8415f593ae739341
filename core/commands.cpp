#include "commands.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <saq/abi.hpp>

#include "convert.hpp"
#include "analyze.hpp"
#include "export.hpp"
#include "engine.hpp"
#include "errors.hpp"
#include "host_schema.hpp"
#include "launcher.hpp"
#include "world.hpp"
#include "pipeline.hpp"
#include "plugin_host.hpp"
#include "quantize.hpp"

#ifndef SAQ_VERSION
#define SAQ_VERSION "0"
#endif

namespace saq::host {

std::string version_text() {
  return std::string("saqhost ") + SAQ_VERSION + " (SDK ABI " + std::to_string(SAQ_ABI_VERSION) + ", LibTorch " +
         TORCH_VERSION + ")";
}

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void print_schema(const Schema& schema) {
  for (const auto& s : schema.specs()) {
    std::string def = s.fallback ? to_toml(*s.fallback) : s.is_optional ? "(optional, no default)" : "(required)";
    std::cout << "  " << s.name << " : " << type_name(s.type);
    if (s.type == ParamType::Component) std::cout << " (" << kind_name(s.component_kind) << ")";
    std::cout << " = " << def;
    std::string range = s.range_text();
    if (!range.empty()) std::cout << "  range " << range;
    if (!s.choices.empty()) std::cout << "  one of " << join(s.choices, " | ");
    std::cout << "\n      " << s.doc << "\n";
  }
}

int plugins(const Registry& reg, const std::string& describe) {
  if (!describe.empty()) {
    bool found = false;
    for (const Component* c : reg.all()) {
      if (c->desc.name != describe) continue;
      found = true;
      std::cout << kind_name(c->desc.kind) << " '" << c->desc.name << "' — " << c->desc.description << "\n"
                << "  from " << c->plugin->path << " (plugin " << c->plugin->name << " " << c->plugin->version
                << ")\nparameters:\n";
      print_schema(c->desc.schema);
      if (c->desc.kind == Kind::Quantizer) {
        std::cout << "host keys of [quantizer] (read by saqhost for every quantizer):\n";
        print_schema(quantizer_host_schema());
      }
    }
    for (const auto& kind : stage_kinds()) {
      if (kind != describe) continue;
      found = true;
      std::cout << "stage '" << kind << "' (built into saqhost)\nparameters:\n";
      print_schema(stage_schema(kind));
    }
    if (describe == "run") {
      found = true;
      std::cout << "[run] (built into saqhost)\nparameters:\n";
      print_schema(run_schema());
    }
    if (!found) {
      std::vector<std::string> names;
      for (const Component* c : reg.all()) names.push_back(c->desc.name);
      std::string hint = did_you_mean(describe, names);
      throw InputError("--describe: no component '" + describe + "'" + (hint.empty() ? "" : "; " + hint));
    }
    return 0;
  }
  for (const Component* c : reg.all())
    std::cout << kind_name(c->desc.kind) << "\t" << c->desc.name << "\t" << c->desc.description << "\n";
  for (const auto& s : reg.skipped) std::cout << "skipped\t" << s.path << "\t" << s.reason << "\n";
  return 0;
}

/// The run directory `saqhost run P --resume` continues: the newest of <out_dir>/<name>, <name>.1, … .
/// Empty when there is none, or when the newest never saved a checkpoint (a new run starts).
fs::path resumable_run(const Pipeline& pipeline, spdlog::logger& log, bool& finished) {
  const fs::path out = pipeline.run->get<std::string>("out_dir");
  const std::string name = pipeline.run->get<std::string>("name");
  fs::path newest;
  for (int i = 0;; ++i) {
    fs::path p = out / (i == 0 ? name : name + "." + std::to_string(i));
    if (!fs::exists(p)) break;
    newest = p;
  }
  finished = false;
  if (newest.empty()) return {};
  if (fs::exists(newest / "summary.json")) {
    finished = true;
    return newest;
  }
  if (!fs::exists(newest / "checkpoints" / "resume.pt")) {
    log.warn("{} has no checkpoint to resume from; starting a new run", newest.string());
    return {};
  }
  const std::string saved = read_text(newest / "config.resolved.toml"), now = pipeline.resolved_toml();
  if (saved != now) {
    std::size_t line = 1;
    for (std::size_t i = 0; i < std::min(saved.size(), now.size()) && saved[i] == now[i]; ++i) line += saved[i] == '\n';
    throw InputError(pipeline.file + ": differs from the pipeline " + newest.string() + " was started with (line " +
                     std::to_string(line) + " of its config.resolved.toml); continue it as it was with 'saqhost "
                     "resume " + newest.string() + "', or drop --resume to start a new run");
  }
  return newest;
}

int resume_run(const CommandLine& cl, const Registry& registry, std::shared_ptr<spdlog::logger> log) {
  if (!cl.overrides.empty())
    throw InputError("resume: --set is not allowed: a resumed run continues with the pipeline it started with");
  const fs::path dir = cl.pipeline;
  if (!fs::is_directory(dir)) throw InputError("resume: " + dir.string() + ": no such run directory");
  if (fs::exists(dir / "summary.json")) {
    log->info("{} is finished (summary.json); nothing to resume", dir.string());
    return 0;
  }
  if (!fs::exists(dir / "checkpoints" / "resume.pt"))
    throw InputError("resume: " + (dir / "checkpoints" / "resume.pt").string() +
                     ": no such file; the run stopped before its first checkpoint (start it again)");
  Pipeline pipeline = load_pipeline((dir / "config.resolved.toml").string(), {}, registry);
  run_pipeline(pipeline, registry, log, dir);
  return 0;
}

/// `saqhost validate|report A.toml B.toml ...`: each file on its own, its error told as saqhost tells one (so a
/// folder of configs is one start of LibTorch, not one per file); the worst exit status of them all.
int for_each_pipeline(const std::vector<std::string>& files, const CommandLine& cl, const Registry& registry,
                      std::shared_ptr<spdlog::logger> log) {
  int status = 0;
  for (const auto& file : files) {
    try {
      Pipeline pipeline = load_pipeline(file, cl.overrides, registry);
      if (cl.command == "report") {
        std::cout << report_pipeline(pipeline, registry, log) << "\n" << std::flush;
        continue;
      }
      check_components(pipeline, registry, log);
      log->info("{} is valid", file);
    } catch (const InputError& e) {
      std::cerr << "saqhost: error: " << e.what() << "\n";
      status = std::max(status, 2);
    } catch (const Interrupted&) {
      throw;  // a signal stops them all, as it stops one
    } catch (const std::exception& e) {
      std::cerr << "saqhost: error: " << file << ": " << e.what() << "\n";
      status = std::max(status, 1);
    }
  }
  return status;
}

}  // namespace

int run_command(const CommandLine& cl, std::shared_ptr<spdlog::logger> log) {
  const std::vector<std::string> commands = {"run",    "resume", "validate", "report",
                                             "plugins", "export", "analyze",  "convert"};
  if (std::find(commands.begin(), commands.end(), cl.command) == commands.end()) {
    std::string hint = did_you_mean(cl.command, commands);
    throw InputError("unknown command '" + cl.command + "'" + (hint.empty() ? "" : "; " + hint) + " (commands: " +
                     join(commands) + ")");
  }
  if (cl.command == "convert") {
    const std::string out = !cl.output.empty() ? cl.output : cl.more.empty() ? "" : cl.more.front();
    if (cl.pipeline.empty() || out.empty() || cl.more.size() > 1) throw InputError("convert: saqhost convert OLD.pt NEW.pt");
    const std::size_t n = convert_checkpoint(cl.pipeline, out, *log);
    log->info("{}: {} tensors from {}", out, n, cl.pipeline);
    return 0;
  }
  if (cl.command != "analyze" && cl.command != "export" && cl.command != "validate" && cl.command != "report" &&
      !cl.more.empty())
    throw InputError(cl.command + ": unexpected argument '" + cl.more.front() + "'");
  if (cl.command != "analyze" && (!cl.budget.empty() || !cl.rhos.empty()))
    throw InputError("--budget and --rho are for analyze, not " + cl.command);
  const bool export_flags =
      !cl.checkpoint.empty() || !cl.profile.empty() || cl.allow_float || !cl.fold_batch_norm || cl.reference >= 0;
  if (cl.command != "export" && export_flags && !(cl.command == "analyze" && cl.profile.empty() && !cl.allow_float &&
                                                  cl.fold_batch_norm && cl.reference < 0))
    throw InputError("--checkpoint, --profile, --allow-float, --no-fold-bn and --reference are for export, not " + cl.command);
  if (cl.command != "export" && cl.command != "analyze" && !cl.output.empty())
    throw InputError(cl.command + ": unexpected argument '" + cl.output + "'");
  Registry registry;
  load_plugins(registry, plugin_search_path(cl.plugin_paths));
  for (const auto& w : registry.warnings) log->warn("{}", w);
  if (cl.command == "plugins") return plugins(registry, cl.describe);
  if (cl.command == "analyze") {
    AnalyzeOptions options;
    if (!cl.pipeline.empty()) options.runs.push_back(cl.pipeline);
    for (const auto& r : cl.more) options.runs.push_back(r);
    if (options.runs.empty()) throw InputError("analyze: which runs? (saqhost analyze RUN_DIR... [-o DIR])");
    if (!cl.checkpoint.empty()) options.checkpoint = cl.checkpoint;
    if (!cl.budget.empty()) options.budget = cl.budget;
    if (!cl.rhos.empty()) options.rhos = cl.rhos;
    options.seed = cl.seed;
    options.output = cl.output.empty() ? options.runs.front() / "analysis" : fs::path(cl.output);
    const Analysis a = analyze_runs(options, registry, log);
    log->info("analyze: {}", write_analysis(a).string());
    return 0;
  }
  if (cl.command == "export") {
    if (cl.pipeline.empty()) throw InputError("export: which run? (saqhost export RUN_DIR [-o model.onnx])");
    if (cl.more.size() > 1 || (!cl.more.empty() && !cl.output.empty()))
      throw InputError("export: saqhost export RUN_DIR [-o model.onnx]");
    ExportOptions options;
    options.output = cl.output.empty() && !cl.more.empty() ? cl.more.front() : cl.output;
    try {
      options.profile = parse_profile(cl.profile.empty() ? "onnxruntime" : cl.profile);
    } catch (const std::invalid_argument& e) {
      throw InputError(e.what());
    }
    options.allow_float = cl.allow_float;
    options.fold_batch_norm = cl.fold_batch_norm;
    export_run(cl.pipeline, cl.checkpoint.empty() ? "final" : cl.checkpoint, options, registry, log, cl.reference);
    return 0;
  }
  for (const auto& s : registry.skipped) log->warn("skipped plugin library {}: {}", s.path, s.reason);

  if (cl.nproc_given) {
    if (cl.command != "run" && cl.command != "resume")
      throw InputError("--nproc is for run and resume, not " + cl.command);
    if (cl.nproc < 1 || cl.nproc > 1024)
      throw InputError("--nproc must be a number of processes in [1, 1024], got " + std::to_string(cl.nproc));
    if (world_from_env())
      throw InputError("--nproc: this process is already a rank of a launched world (RANK/WORLD_SIZE or SLURM "
                       "variables are set); let that launcher start the processes, or unset them");
  }
  if (cl.nproc > 1) {
    // bad input is told once, here, before any worker starts
    if (cl.command == "run") {
      if (cl.pipeline.empty()) throw InputError("run: which pipeline? (saqhost run PIPELINE.toml)");
      load_pipeline(cl.pipeline, cl.overrides, registry);
    } else if (cl.pipeline.empty() || !fs::is_directory(cl.pipeline)) {
      throw InputError("resume: " + (cl.pipeline.empty() ? std::string("which run? (saqhost resume RUN_DIR)")
                                                         : cl.pipeline + ": no such run directory"));
    }
    return launch_local(cl.nproc, cl.worker_args, *log);
  }
  if (cl.command == "resume") {
    if (cl.pipeline.empty()) throw InputError("resume: which run? (saqhost resume RUN_DIR)");
    return resume_run(cl, registry, log);
  }
  if (cl.pipeline.empty()) throw InputError(cl.command + ": which pipeline? (saqhost " + cl.command + " PIPELINE.toml)");
  if ((cl.command == "validate" || cl.command == "report") && !cl.more.empty()) {
    std::vector<std::string> files = {cl.pipeline};
    files.insert(files.end(), cl.more.begin(), cl.more.end());
    return for_each_pipeline(files, cl, registry, log);
  }
  Pipeline pipeline = load_pipeline(cl.pipeline, cl.overrides, registry);
  if (cl.command == "validate") {
    check_components(pipeline, registry, log);  // the quantizer's refuse_bits and the plugins' own checks
    std::cout << pipeline.resolved_toml();
    log->info("{} is valid", cl.pipeline);
    return 0;
  }
  if (cl.command == "report") {
    std::cout << report_pipeline(pipeline, registry, log);
    return 0;
  }
  if (cl.resume) {
    bool finished = false;
    fs::path dir = resumable_run(pipeline, *log, finished);
    if (finished) {
      log->info("{} is finished (summary.json); nothing to resume", dir.string());
      return 0;
    }
    run_pipeline(pipeline, registry, log, dir);
    return 0;
  }
  run_pipeline(pipeline, registry, log);
  return 0;
}

}  // namespace saq::host

// saqhost: runs sharpness-aware quantization pipelines; every component comes from a plugin.
#include <cstdlib>
#include <iostream>

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "launcher.hpp"
#include "errors.hpp"

namespace po = boost::program_options;
using namespace saq::host;

namespace {

const char* kUsage =
    "usage: saqhost <command> [options]\n"
    "\n"
    "commands:\n"
    "  run PIPELINE.toml [--set key=value]...    train and evaluate; results in runs/<name>/\n"
    "  run PIPELINE.toml --resume                continue this pipeline's latest unfinished run (or start one)\n"
    "  resume RUN_DIR                            continue a stopped run from its last checkpoint\n"
    "  run|resume ... --nproc N                  data parallel on N local processes (torchrun and srun work too)\n"
    "  validate PIPELINE.toml [--set key=value]... check a pipeline without running it\n"
    "  validate|report A.toml B.toml...          each file in turn (an error per bad one); validate prints no pipeline\n"
    "  report PIPELINE.toml [--set key=value]...   per-layer bits, BOPs and memory footprint, without training\n"
    "  plugins [--describe NAME]                 list components, or one component's parameters\n"
    "  export RUN_DIR [-o model.onnx] [--checkpoint final|stageN] [--profile onnxruntime|tensorrt] [--allow-float]\n"
    "                                            the trained model as an ONNX graph (QDQ, integer weights) and\n"
    "                                            its model.quant.json; default RUN_DIR/export/model.onnx\n"
    "  analyze RUN_DIR... [-o DIR] [--checkpoint final|stageN] [--budget fast|full] [--rho R]...\n"
    "                                            sharpness, curvature and loss landscapes of trained runs, side by\n"
    "                                            side: DIR/index.html (default: analysis/ in the first run)\n"
    "  convert OLD.pt NEW.pt                     rewrite a weights checkpoint of an earlier saqhost (TorchScript\n"
    "                                            archive) as a torch.save file; convert only files you trust\n"
    "\n"
    "exit status: 0 done, 1 failed while running, 2 bad input (pipeline, key, plugin or data file),\n"
    "             130 / 143 stopped by SIGINT / SIGTERM after saving a checkpoint (saqhost resume continues)\n";

int dispatch(int argc, char** argv) {
  po::options_description common("options");
  common.add_options()
      ("help,h", "show this help")
      ("version", "print the version and the SDK ABI")
      ("set,s", po::value<std::vector<std::string>>()->composing(), "override a pipeline value: section.key=value")
      ("plugin-path,P", po::value<std::vector<std::string>>()->composing(),
       "also load plugins from this folder or file (searched before $SAQ_PLUGIN_PATH)")
      ("describe", po::value<std::string>(), "plugins: print the parameters of this component")
      ("resume", "run: continue the latest unfinished run of this pipeline instead of starting a new one")
      ("nproc", po::value<int>(), "run/resume: train data-parallel on N processes of this machine")
      ("quiet,q", "log warnings and errors only")
      ("output,o", po::value<std::string>(), "export: the .onnx file to write")
      ("checkpoint", po::value<std::string>(), "export, analyze: final (default) or stageN")
      ("budget", po::value<std::string>(), "analyze: fast (default: slices and sharpness) or full (surfaces, Hessian)")
      ("rho", po::value<std::vector<double>>()->composing(), "analyze: a sharpness radius (repeat for several)")
      ("seed", po::value<std::uint64_t>(), "analyze: the subset and the random directions (default 0)")
      ("profile", po::value<std::string>(), "export: onnxruntime (default: uint8/int8 QDQ) or tensorrt (int8, zero point 0)")
      ("allow-float", "export: what the profile cannot hold exactly goes out as float (a warning), not an error")
      ("no-fold-bn", "export: keep every BatchNorm as a BatchNormalization node")
      ("reference", po::value<std::int64_t>(), "export: also write saqhost's own eval of N test samples (0: all) "
       "beside the graph, for tools/check_onnx.sh");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>())("pipeline", po::value<std::string>())(
      "more", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(common).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1).add("pipeline", 1).add("more", -1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "saqhost: error: " << e.what() << "\n\n" << kUsage << common;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << common;
    return 0;
  }
  if (vm.count("version")) {
    std::cout << version_text() << "\n";
    return 0;
  }
  if (!vm.count("command")) {
    std::cerr << kUsage << "\n" << common;
    return 2;
  }
  auto list = [&](const char* k) {
    return vm.count(k) ? vm[k].as<std::vector<std::string>>() : std::vector<std::string>{};
  };
  CommandLine cl;
  cl.command = vm["command"].as<std::string>();
  cl.pipeline = vm.count("pipeline") ? vm["pipeline"].as<std::string>() : "";
  cl.output = vm.count("output") ? vm["output"].as<std::string>() : "";
  cl.overrides = list("set");
  cl.plugin_paths = list("plugin-path");
  cl.describe = vm.count("describe") ? vm["describe"].as<std::string>() : "";
  cl.checkpoint = vm.count("checkpoint") ? vm["checkpoint"].as<std::string>() : "";
  cl.more = list("more");
  cl.budget = vm.count("budget") ? vm["budget"].as<std::string>() : "";
  if (vm.count("rho")) cl.rhos = vm["rho"].as<std::vector<double>>();
  cl.seed = vm.count("seed") ? vm["seed"].as<std::uint64_t>() : 0;
  cl.profile = vm.count("profile") ? vm["profile"].as<std::string>() : "";
  cl.allow_float = vm.count("allow-float") > 0;
  cl.reference = vm.count("reference") ? vm["reference"].as<std::int64_t>() : -1;
  cl.fold_batch_norm = vm.count("no-fold-bn") == 0;
  cl.resume = vm.count("resume") > 0;
  cl.nproc_given = vm.count("nproc") > 0;
  if (cl.nproc_given) cl.nproc = vm["nproc"].as<int>();
  cl.worker_args = without_nproc(argc, argv);

  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto log = std::make_shared<spdlog::logger>("saqhost", console);
  log->set_pattern("[%H:%M:%S] %^%l%$ %v");
  log->set_level(vm.count("quiet") ? spdlog::level::warn : spdlog::level::info);
  log->flush_on(spdlog::level::info);
  return run_command(cl, log);
}

}  // namespace

/// "saqhost", or "saqhost (rank N)" in a data-parallel worker other than rank 0: whose error it is.
std::string who() {
  const char* rank = std::getenv("RANK");
  const char* world = std::getenv("WORLD_SIZE");
  if (!rank || !world || std::atoi(world) <= 1 || std::string(rank) == "0") return "saqhost";
  return std::string("saqhost (rank ") + rank + ")";
}

int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const InputError& e) {
    std::cerr << who() << ": error: " << e.what() << "\n";
    return 2;
  } catch (const Interrupted& e) {
    std::cerr << who() << ": " << e.what() << "\n";
    return 128 + e.signal;
  } catch (const std::exception& e) {
    std::cerr << who() << ": error: " << e.what() << "\n";
    return 1;
  }
}

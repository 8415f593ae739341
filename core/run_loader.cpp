#include "run_loader.hpp"

#include <algorithm>
#include <regex>

#include <fmt/format.h>

#include "errors.hpp"
#include "quantize.hpp"
#include "state_dict.hpp"

namespace saq::host {

namespace fs = std::filesystem;

std::unique_ptr<LoadedRun> load_run(const fs::path& run_dir, const std::string& checkpoint, const Registry& registry,
                                    std::shared_ptr<spdlog::logger> log, const std::string& command) {
  if (!fs::is_directory(run_dir)) throw InputError(command + ": " + run_dir.string() + ": no such run directory");
  const fs::path config = run_dir / "config.resolved.toml";
  if (!fs::exists(config))
    throw InputError(command + ": " + run_dir.string() + ": not a run directory (no config.resolved.toml)");
  auto run = std::make_unique<LoadedRun>();
  run->pipeline = std::make_unique<Pipeline>(load_pipeline(config.string(), {}, registry));
  const Pipeline& pipeline = *run->pipeline;
  std::size_t stage_index = pipeline.stages.size() - 1;
  std::smatch match;
  if (checkpoint != "final") {
    if (!std::regex_match(checkpoint, match, std::regex("stage([0-9]+)")))
      throw InputError(command + ": --checkpoint '" + checkpoint + "' is neither final nor stageN");
    stage_index = std::stoul(match[1]);
    if (stage_index >= pipeline.stages.size())
      throw InputError(fmt::format("{}: --checkpoint {}: the pipeline has stages 0..{}", command, checkpoint,
                                   pipeline.stages.size() - 1));
  }
  const fs::path file = run_dir / "checkpoints" / (checkpoint + ".pt");
  if (!fs::exists(file)) {
    std::vector<std::string> have;
    if (fs::is_directory(run_dir / "checkpoints"))
      for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
        if (e.path().extension() == ".pt" && e.path().stem() != "resume") have.push_back(e.path().stem().string());
    std::sort(have.begin(), have.end());
    throw InputError(command + ": " + file.string() + ": no such checkpoint (" +
                     (have.empty() ? std::string("the run saved none yet") : "it has: " + join(have)) + ")");
  }
  run->dir = run_dir, run->checkpoint = file, run->checkpoint_name = checkpoint;
  run->session = std::make_unique<Session>(Session{pipeline, registry, *log, SpdLog(*log), HostBuilder(registry),
                                                   nullptr, c10::Device(c10::kCPU)});
  Session& s = *run->session;
  build_components(s);
  const Params& stage = *pipeline.stages[stage_index];
  run->quantized = s.quantizer && (!stage.has("quantized") || stage.get<bool>("quantized"));
  std::vector<std::string> warnings;
  for (std::size_t i = 0; i <= stage_index; ++i)
    if (pipeline.stages[i]->use() == "search") {
      const fs::path rules = run_dir / "search" / "result.toml";
      if (!fs::exists(rules)) throw InputError(command + ": " + rules.string() + ": no such file (the search's bits)");
      apply_rules_file(*s.model, rules.string(), s.bits, warnings);
    }
  if (run->quantized) attach_quantizers(*s.model, *s.quantizer);
  try {
    load_state_dict(*s.model, read_state_dict(file.string()), file.string(), false);
  } catch (const std::exception& e) {
    throw InputError(fmt::format("{}: {} does not fit the model of {} ({}): {}", command, file.string(),
                                 config.string(), pipeline.model->use(), e.what()));
  }
  apply_bits(*s.model, s.bits, !run->quantized);
  return run;
}

}  // namespace saq::host

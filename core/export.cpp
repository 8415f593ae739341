#include "export.hpp"

#include <fmt/format.h>

#include "bops.hpp"
#include "errors.hpp"
#include "export_reference.hpp"
#include "json.hpp"
#include "quant_sidecar.hpp"
#include "run_dir.hpp"
#include "run_loader.hpp"
#include "session.hpp"

namespace saq::host {

namespace fs = std::filesystem;

ExportSummary prepare_export(Model& model, const DataInfo& info, const ExportOptions& options, spdlog::logger& log) {
  std::vector<Inexact> inexact;
  std::vector<LayerExport> layers;
  try {
    layers = layer_exports(model, options.profile, options.quantizer, inexact);
  } catch (const std::runtime_error& e) {
    throw InputError(std::string("export: ") + e.what());
  }
  if (!inexact.empty()) {
    std::string list;
    for (const auto& i : inexact) list += fmt::format("\n  {}: {}", i.layer, i.reason);
    if (!options.allow_float)
      throw InputError(fmt::format("export: the {} profile cannot hold {} layer tensor{} exactly:{}\n(--allow-float "
                                   "exports them as float: weights as the values the layer consumed, inputs as "
                                   "Clip/Div/Round/Mul on the same grid)", profile_name(options.profile),
                                   inexact.size(), inexact.size() == 1 ? "" : "s", list));
    log.warn("export: exported as float (--allow-float), the {} profile cannot hold them exactly:{}",
             profile_name(options.profile), list);
  }
  const CostReport costs = measure_costs(model, info);
  onnx::Model m;
  try {
    m.graph = trace_to_onnx(model, layers, {info.input_shape, options.fold_batch_norm});
  } catch (const c10::Error& e) {  // LibTorch's own, with a stack trace: its first line says what
    const std::string what = e.what();
    throw RunError("export: tracing the model failed: " + what.substr(0, what.find('\n')));
  } catch (const std::runtime_error& e) {
    throw InputError(e.what());
  }
  m.producer_version = SAQ_VERSION;
  m.doc = "saqhost export of " + options.source;
  m.metadata = {{"saq.source", options.source}, {"saq.profile", profile_name(options.profile)},
                {"saq.quantizer", options.quantizer}};

  ExportSummary summary;
  for (const auto& l : layers) {
    summary.integer_weights += l.quantized_weight && !l.weight.as_float;
    summary.quantized_inputs += l.quantized_activation && !l.activation.as_float;
    summary.float_layers += !l.quantized_weight || l.weight.as_float;
    summary.folded_batch_norms += l.batch_norm_folded;
  }
  summary.layers = layers;
  summary.model = m;
  summary.onnx = options.output;
  summary.sidecar = fs::path(options.output).replace_extension(".quant.json");
  summary.sidecar_text = quant_sidecar(layers, costs, m, options);
  return summary;
}

void write_export(const ExportSummary& summary, const ExportOptions& options, spdlog::logger& log) {
  const std::string bytes = onnx::serialize(summary.model);
  fs::create_directories(fs::absolute(summary.onnx).parent_path());
  write_atomically(summary.onnx, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw RunError(tmp.string() + ": cannot write");
  });
  write_text_atomically(summary.sidecar, summary.sidecar_text);
  if (summary.integer_weights == 0 && summary.quantized_inputs == 0)
    log.warn("export: {} has no quantized layer: a float graph", options.source);
  log.info("export: {} ({} layers with integer weights, {} quantized inputs, {} float layers, {} BatchNorms folded; "
           "profile {}) and {}", summary.onnx.string(), summary.integer_weights, summary.quantized_inputs,
           summary.float_layers, summary.folded_batch_norms, profile_name(options.profile), summary.sidecar.string());
}

void export_stage(Session& s, const Params& stage) {
  if (!s.writes()) return;
  ExportOptions options;
  options.output = s.dir->path() / stage.get<std::string>("output");
  options.profile = parse_profile(stage.get<std::string>("profile"));
  options.allow_float = stage.get<bool>("allow_float");
  options.fold_batch_norm = stage.get<bool>("fold_batch_norm");
  options.source = s.dir->path().string() + " (export stage)";
  const bool quantized = s.quantizer && stage.get<bool>("quantized");
  options.quantizer = quantized ? s.pipeline.quantizer->use() : "";
  const ExportSummary summary = prepare_export(*s.model, s.info, options, s.log);
  check_activation_grids(s, summary);
  write_export(summary, options, s.log);
  s.model->train();
}

ExportSummary export_run(const fs::path& run_dir, const std::string& checkpoint, ExportOptions options,
                         const Registry& registry, std::shared_ptr<spdlog::logger> log, std::int64_t reference_samples) {
  std::unique_ptr<LoadedRun> run = load_run(run_dir, checkpoint, registry, log, "export");
  Session& s = *run->session;
  if (!run->quantized)
    log->warn("export: {} is a full-precision stage's checkpoint: the graph is float", run->checkpoint.string());
  if (options.output.empty()) options.output = run_dir / "export" / "model.onnx";
  options.source = run->checkpoint.string();
  options.quantizer = run->quantized ? run->pipeline->quantizer->use() : "";
  ExportSummary summary = prepare_export(*s.model, s.info, options, *log);
  check_activation_grids(s, summary);
  write_export(summary, options, *log);
  if (reference_samples >= 0) {
    const fs::path dir = fs::path(summary.onnx).replace_extension(".reference");
    write_reference(s, summary, dir, reference_samples);
    log->info("export: saqhost's eval of {} for the ONNX Runtime check in {}", checkpoint, dir.string());
  }
  return summary;
}

}  // namespace saq::host

#include "host_schema.hpp"

#include <cstdint>
#include <stdexcept>

namespace saq::host {

Schema run_schema() {
  Schema s;
  s.string("name", "", "run name; the run directory is <out_dir>/<name> (default: the pipeline file's stem)");
  s.string("out_dir", "runs", "folder that holds run directories");
  s.integer("seed", 0, "seed of model initialisation, data order and augmentation").min(0);
  s.choice("device", "auto", {"auto", "cpu", "cuda"}, "auto = cuda when this LibTorch has it, else cpu");
  s.integer("threads", 0, "intra-op threads; 0 = all cores (shared by the data-parallel processes of a machine)")
      .min(0).max(4096);
  s.real("dist_timeout_s", 300, "data parallel: seconds a rank waits for the others (rendezvous, each collective)")
      .above(0).max(86400);
  s.boolean("tensorboard", true, "write TensorBoard event files to <run>/tensorboard/ (every metric, clip values)");
  s.integer("checkpoint_every", 200,
            "write the resume checkpoint every N training steps (and at every epoch end); 0 = epoch ends only")
      .min(0);
  s.choice("on_nonfinite", "stop", {"stop", "skip"},
           "a step whose loss or gradients hold NaN/Inf: stop the run, or skip the step (nothing is updated)");
  s.integer("max_skipped_steps", 20, "skip: stop after this many non-finite steps in a row").min(1);
  return s;
}

Schema data_host_schema() {
  Schema s;
  s.integer("batch_size", 128, "training batch size of each process (data parallel: W processes take W times it)")
      .min(1);
  s.integer("global_batch_size", 0,
            "training batch size over all processes, kept as the world grows (each of W takes 1/W of it; it must "
            "divide by W); exclusive with batch_size; 0 = batch_size decides")
      .min(0);
  s.integer("eval_batch_size", 500, "evaluation batch size").min(1);
  return s;
}

std::vector<std::string> stage_kinds() { return {"train", "eval", "search", "export", "analyze"}; }

namespace {
void add_init(Schema& s) {
  s.string("init", "",
           "load model weights first, by name: a PyTorch state_dict file (torch.save, e.g. a model zoo's .pth), a "
           "saqhost .pt checkpoint, or \"stageN\" of this run (\"\": keep)");
  s.boolean("init_partial", false,
            "with a state_dict init: load the tensors whose name and shape match and list the rest (missing, "
            "unexpected, other shape); false: any mismatch is an error");
}

/// The optimizer, schedule and parameter-group keys a train stage and a search stage's supernet share.
void add_training(Schema& s) {
  s.component("optimizer", Kind::Optimizer, "sgd", "this stage's optimizer (default: the pipeline's [optimizer])")
      .optional();
  s.choice("schedule", "cosine", {"constant", "cosine", "multistep", "step"}, "learning-rate schedule");
  s.choice("lr_update", "epoch", {"epoch", "step"}, "evaluate the schedule once per epoch or at every step");
  s.integers("milestones", {}, "multistep: epochs at which the rate is multiplied by gamma");
  s.integer("step_size", 30, "step: epochs between multiplications by gamma").min(1);
  s.real("gamma", 0.1, "multistep/step decay factor").above(0).max(1);
  s.real("min_lr_factor", 0.0, "cosine: final rate as a fraction of the base rate").min(0).max(1);
  s.real("warmup_epochs", 0.0, "linear warm-up from ~0 to the base rate, stepped per batch").min(0);
  s.real("label_smoothing", 0.0, "cross-entropy label smoothing (PyTorch convention: eps/K on every class)")
      .min(0).below(1);
  s.boolean("decay_norm_and_bias", true, "apply weight decay to BatchNorm and bias parameters too");
  Schema group;
  group.string("match", "", "glob on parameter names, e.g. \"*.clip*\" or \"layer3.*\"").required();
  group.real("lr", 0.0, "this group's base learning rate (default: the optimizer's)").above(0).optional();
  group.real("weight_decay", 0.0, "this group's weight decay (default: the optimizer's)").min(0).optional();
  s.tables("group", group,
           "parameter groups ([[stage.group]]): a parameter joins the last group whose glob matches it");
}
}  // namespace

Schema stage_schema(const std::string& kind) {
  Schema s;
  if (kind == "train") {
    s.integer("epochs", 10, "passes over the training split").min(1);
    s.boolean("quantized", true, "train with the pipeline's [quantizer] (false: full precision)");
    add_init(s);
    add_training(s);
    s.integer("eval_every", 1, "evaluate on the test split every N epochs (and after the last); 0 = last only")
        .min(0);
    s.integer("log_every", 100, "log a training line every N steps; 0 = never").min(0);
    s.integer("limit_batches", 0, "use at most N batches per epoch; 0 = all (smoke runs)").min(0);
    return s;
  }
  if (kind == "eval") {
    s.choice("split", "test", {"train", "test"}, "split to evaluate");
    s.boolean("quantized", true, "evaluate with the pipeline's [quantizer] (false: full precision)");
    add_init(s);
    s.integer("limit_batches", 0, "use at most N batches; 0 = all").min(0);
    return s;
  }
  if (kind == "search") {
    s.component("search", Kind::Search, "samq", "the bit search: samq, uniform, random");
    s.real("target_mbops", 0.0, "the BOPs budget in MBOPs (the paper's rule, as `saqhost report` counts)").required()
        .above(0);
    s.real("window_mbops", 10.0, "accepted configurations lie in [target − window, target] (the paper: 10 on CIFAR)")
        .min(0);
    s.integers("bits", {2, 3, 4, 5}, "the bit choices of each searchable layer");
    s.real("split_ratio", 0.5, "the first fraction of the training split trains the supernet, the rest the generator")
        .above(0).below(1);
    s.integer("epochs", 10, "search epochs (the plugin's bit warm-up included)").min(0);
    add_init(s);
    add_training(s);
    s.integer("limit_batches", 0, "use at most N batches per pass; 0 = all (smoke runs)").min(0);
    return s;
  }
  if (kind == "export") {
    s.string("output", "export/model.onnx", "the ONNX file, relative to the run directory (its sidecar "
                                              "model.quant.json goes beside it)");
    s.choice("profile", "onnxruntime", {"onnxruntime", "tensorrt"},
             "onnxruntime: uint8/int8 QDQ (int32 codes where 9 bits are needed); tensorrt: int8, zero point 0 only");
    s.boolean("allow_float", false, "export what the profile cannot hold exactly as float (a warning), not an error");
    s.boolean("fold_batch_norm", true, "fold a BatchNorm into the conv whose only consumer it is");
    s.boolean("quantized", true, "export the model quantized with the pipeline's [quantizer] (false: as float)");
    add_init(s);
    return s;
  }
  if (kind == "analyze") {
    s.string("output", "analysis", "the report's folder, relative to the run directory (index.html, analysis.json)");
    s.choice("budget", "fast", {"fast", "full"}, "fast: sharpness and slices; full: more samples, surfaces, Hessian");
    s.reals("rho", {0.05, 0.1, 0.2}, "the sharpness radii").above(0);
    s.integer("seed", 0, "the subset and the random directions").min(0);
    s.boolean("quantized", true, "analyze the model quantized with the pipeline's [quantizer] (false: as float)");
    add_init(s);
    return s;
  }
  throw std::logic_error("no stage kind " + kind);
}

void check_stage_init(const std::vector<ParamsPtr>& stages, size_t i) {
  const Params& stage = *stages[i];
  const std::string init = stage.get<std::string>("init");
  if (init.size() <= 5 || init.compare(0, 5, "stage") != 0 || init.find_first_not_of("0123456789", 5) != std::string::npos)
    return;
  const size_t n = init.size() > 14 ? SIZE_MAX : std::stoul(init.substr(5));
  if (n >= i)
    stage.fail("init", "\"" + init + "\" is not an earlier stage (this is stage " + std::to_string(i) +
                           "): init = \"stageN\" loads the checkpoint an earlier train stage of this run wrote");
  if (stages[n]->use() != "train")
    stage.fail("init", "\"" + init + "\" is an '" + stages[n]->use() + "' stage, which writes no checkpoint");
}

void check_glob(const Params& p, const std::string& key) {
  const std::string glob = p.get<std::string>(key);
  if (glob.empty()) p.fail(key, "an empty glob matches nothing (\"*\" matches every name)");
  for (size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      if (++i == glob.size()) p.fail(key, "\"" + glob + "\" ends in a lone '\\'");
      continue;
    }
    if (glob[i] != '[') continue;
    size_t j = i + 1;
    if (j < glob.size() && (glob[j] == '!' || glob[j] == '^')) ++j;
    if (j < glob.size() && glob[j] == ']') ++j;  // a ']' first in the class is a member
    j = glob.find(']', j);
    if (j == std::string::npos)
      p.fail(key, "\"" + glob + "\": the '[' at character " + std::to_string(i + 1) +
                      " opens a character class that never closes (write \\\\[ to match a '[')");
    i = j;
  }
}

}  // namespace saq::host

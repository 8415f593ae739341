#include "sharpness_aware.hpp"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

namespace saq::plugins {

namespace {

/// Undoes a step's perturbation: parameters back to their saved values, layers without ε, BatchNorm momenta
/// back. Runs at the latest when the step unwinds, so an exception mid-step leaves the model as it was.
struct Restore {
  std::vector<std::pair<at::Tensor, at::Tensor>> params;  ///< (parameter, its value before ε)
  std::vector<std::shared_ptr<QuantLayer>> layers;
  std::vector<std::pair<std::shared_ptr<BatchNorm2dLayer>, double>> momenta;

  void now() {
    at::NoGradGuard no_grad;
    for (auto& [param, before] : params) param.detach().copy_(before);
    for (auto& layer : layers) layer->clear_perturbation();
    for (auto& [bn, momentum] : momenta) bn->momentum = momentum;
    params.clear(), layers.clear(), momenta.clear();
  }
  ~Restore() { now(); }
};

TargetFlags flags_of(const Params& p) {
  TargetFlags f;
  f.quantized = p.get<std::string>("perturb") == "quantized";
  f.weight_clip = p.get<bool>("perturb_weight_clip");
  f.activation_clip = p.get<bool>("perturb_activation_clip");
  f.bias = p.get<bool>("perturb_bias");
  f.batch_norm = p.get<bool>("perturb_batch_norm");
  return f;
}

torch::nn::Module& model_of(const Context& ctx) {
  if (!ctx.model) throw std::invalid_argument("a sharpness-aware optimizer needs the model (Context::model)");
  return *ctx.model;
}

/// The base optimizer; building a sharpness-aware one inside another is refused.
std::shared_ptr<Optimizer> make_base(const Params& p, const Context& ctx) {
  const Params& base = p.child("base");
  for (const char* name : {"sam", "asam", "esam"})
    if (base.use() == name) p.fail("base", "must be a first-order optimizer (sgd, adam, ...), got \"" + base.use() + "\"");
  if (!ctx.build) throw std::invalid_argument("no component builder in the context");
  return ctx.build->optimizer(base, ctx);
}

}  // namespace

SharpnessAware::SharpnessAware(const Params& p, const Context& ctx, Variant variant)
    : variant_(variant),
      base_(make_base(p, ctx)),
      targets_(model_of(ctx), flags_of(p)),
      rho_(p.get<double>("rho")),
      rho_final_(p.get<double>("rho_final")),
      warmup_epochs_(p.get<double>("rho_warmup_epochs")),
      rho_schedule_(p.get<std::string>("rho_schedule")),
      single_pass_(p.get<bool>("single_pass_when_zero")),
      freeze_bn_(p.get<std::string>("bn_second_pass") == "freeze"),
      rho_now_(rho_),
      sync_perturbation_(p.get<bool>("sync_perturbation")),
      collective_(ctx.collective),
      seed_(SplitMix::mix(ctx.seed, 0x5a3)),
      rng_(seed_) {
  if (variant == Variant::Asam) eta_ = p.get<double>("eta");
  if (variant == Variant::Esam) beta_ = p.get<double>("beta"), gamma_ = p.get<double>("gamma");
}

Schema SharpnessAware::schema(Variant variant) {
  Schema s;
  s.component("base", Kind::Optimizer, "sgd", "the base optimizer that takes the step, e.g. { use = \"sgd\", lr = 0.01 }");
  s.real("rho", variant == Variant::Asam ? 0.5 : 0.05, "radius ρ of the perturbation").min(0);
  s.choice("perturb", "quantized", {"quantized", "latent"},
           "\"quantized\": ε on the quantized weights after the quantizer (SAQ); \"latent\": on the latent weights, "
           "re-quantized in the second pass (plain SAM)");
  s.boolean("perturb_weight_clip", false, "perturb weight clip values / step sizes too (the paper's code: no)");
  s.boolean("perturb_activation_clip", true, "perturb activation clip values / step sizes (the paper's code: yes)");
  s.boolean("perturb_bias", true, "perturb the biases of conv and linear layers");
  s.boolean("perturb_batch_norm", true, "perturb BatchNorm γ and β");
  s.choice("bn_second_pass", "update", {"update", "freeze"},
           "BatchNorm running statistics in the perturbed pass: updated (the paper's code) or left alone");
  s.choice("rho_schedule", "constant", {"constant", "linear", "cosine"}, "ρ over training, after the warm-up");
  s.real("rho_final", 0.0, "linear/cosine: ρ at the end of training").min(0);
  s.real("rho_warmup_epochs", 0.0, "epochs at ρ = 0 before the schedule starts").min(0);
  s.boolean("single_pass_when_zero", true, "at ρ = 0 take the base optimizer's step alone (one pass)");
  s.boolean("sync_perturbation", false,
            "data parallel: average the first pass's gradient over the ranks (one ε per global batch); by default "
            "each rank perturbs with its own (m-sharpness, as the SAM paper and the official SAQ code)");
  if (variant == Variant::Asam) s.real("eta", 0.01, "ASAM's η in T = |w| + η").min(0);
  if (variant == Variant::Esam) {
    s.real("beta", 0.5, "probability that a tensor is perturbed (stochastic weight perturbation)").above(0).max(1);
    s.real("gamma", 0.5, "fraction of the batch the second pass uses (sharpness-sensitive data selection)")
        .above(0).max(1);
  }
  return s;
}

double SharpnessAware::rho_at(double epoch, std::int64_t epochs) const {
  if (epoch < warmup_epochs_) return 0.0;
  if (rho_schedule_ == "constant") return rho_;
  const double span = static_cast<double>(epochs) - warmup_epochs_;
  const double t = span > 0 ? std::min(1.0, (epoch - warmup_epochs_) / span) : 1.0;
  if (rho_schedule_ == "linear") return rho_ + (rho_final_ - rho_) * t;
  return rho_final_ + (rho_ - rho_final_) * 0.5 * (1.0 + std::cos(M_PI * t));
}

void SharpnessAware::begin_step(const Progress& progress) {
  rho_now_ = rho_at(progress.epoch_fraction(), progress.epochs);
  rng_ = SplitMix(SplitMix::mix(seed_, static_cast<std::uint64_t>(progress.epoch * progress.steps_per_epoch + progress.step)));
  base_->begin_step(progress);
}

StepResult SharpnessAware::step(const LossFn& loss_fn) {
  if (rho_now_ == 0.0 && single_pass_) {
    StepResult r = base_->step(loss_fn);
    r.rho = 0.0;
    return r;
  }
  base_->zero_grad();
  // 1. clean pass: gradients with respect to the perturbation targets only
  at::Tensor clean = loss_fn(at::Tensor());
  at::Tensor clean_loss = clean.mean();
  std::vector<Target> all = targets_.collect(), chosen;
  for (auto& t : all)
    if (variant_ != Variant::Esam || beta_ >= 1.0 || rng_.uniform() < beta_) chosen.push_back(t);
  std::vector<at::Tensor> inputs;
  for (const auto& t : chosen) inputs.push_back(t.value);
  std::vector<at::Tensor> grads =
      inputs.empty() ? std::vector<at::Tensor>{}
                     : torch::autograd::grad({clean_loss}, inputs, {}, /*retain_graph=*/false,
                                             /*create_graph=*/false, /*allow_unused=*/true);

  // 2. ε from one global norm
  at::NoGradGuard no_grad;
  if (sync_perturbation_ && collective_ && collective_->world_size() > 1) {
    for (size_t i = 0; i < grads.size(); ++i)
      if (!grads[i].defined()) grads[i] = at::zeros_like(inputs[i]);
    average_tensors(*collective_, grads);
  }
  const bool adaptive = variant_ == Variant::Asam;
  // Per-tensor sums stay tensors and are read once: one host sync per norm, not one per tensor.
  std::vector<at::Tensor> squares;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) continue;
    at::Tensor g = adaptive && chosen[i].adaptive ? grads[i] * (chosen[i].value.abs() + eta_) : grads[i];
    squares.push_back(g.pow(2).sum().to(at::kDouble));
  }
  const double squared = squares.empty() ? 0.0 : at::stack(squares).sum().item<double>();
  const double scale = rho_now_ / (std::sqrt(squared) + 1e-12) / beta_;
  Restore restore;
  std::vector<at::Tensor> eps_squares;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) continue;
    const Target& t = chosen[i];
    at::Tensor eps = adaptive && t.adaptive ? (t.value.abs() + eta_).pow(2) * grads[i] * scale : grads[i] * scale;
    eps_squares.push_back(eps.pow(2).sum().to(at::kDouble));
    if (t.layer) {
      restore.layers.push_back(t.layer);
      t.layer->set_perturbation(eps);
    } else {
      restore.params.emplace_back(t.value, t.value.detach().clone());
      t.value.detach().add_(eps);
    }
  }

  // BN running statistics: every pass at w + ε (the data-selection forward included) leaves them, when frozen
  if (freeze_bn_)
    for (auto& bn : targets_.norms()) restore.momenta.emplace_back(bn, bn->momentum), bn->momentum = 0.0;

  // 3. data selection: the samples whose loss rose most under ε
  at::Tensor rows, perturbed_all;
  if (variant_ == Variant::Esam && gamma_ < 1.0) {
    perturbed_all = loss_fn(at::Tensor()).detach();
    // ⌊γ·B⌋, robust to γ·B landing a hair below an integer in floating point (0.29·100)
    const auto k = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(std::floor(gamma_ * static_cast<double>(clean.size(0)) + 1e-9)));
    rows = std::get<1>((perturbed_all - clean.detach()).topk(k));
  }

  // 4. perturbed pass; its gradient is the one the base optimizer applies
  base_->zero_grad();
  at::Tensor perturbed;
  {
    at::AutoGradMode enable(true);
    perturbed = loss_fn(rows).mean();
    perturbed.backward();
  }

  // 5. restore exactly what was perturbed, then the base step
  restore.now();
  base_->apply_gradients();

  StepResult r;
  r.loss = clean_loss.item<double>();
  r.sharpness = (perturbed_all.defined() ? perturbed_all.mean().item<double>() : perturbed.item<double>()) - r.loss;
  r.perturbation_norm = eps_squares.empty() ? 0.0 : std::sqrt(at::stack(eps_squares).sum().item<double>());
  r.rho = rho_now_;
  return r;
}

}  // namespace saq::plugins

#include "sharpness_aware.hpp"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

namespace saq::plugins {

namespace {

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
  for (const char* name : {"sam", "asam", "esam", "looksam", "gsam", "msam"})
    if (base.use() == name) p.fail("base", "must be a first-order optimizer (sgd, adam, ...), got \"" + base.use() + "\"");
  if (!ctx.build) throw std::invalid_argument("no component builder in the context");
  return ctx.build->optimizer(base, ctx);
}

std::vector<at::Tensor> params_of(const Context& ctx) {
  std::vector<at::Tensor> out;
  for (const auto& g : ctx.groups) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

}  // namespace

void Restore::now() {
  at::NoGradGuard no_grad;
  for (auto& [param, before] : params) param.detach().copy_(before);
  for (auto& layer : layers) layer->clear_perturbation();
  for (auto& [bn, momentum] : momenta) bn->momentum = momentum;
  params.clear(), layers.clear(), momenta.clear();
}

double dot(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  std::vector<at::Tensor> terms;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (a[i].defined() && b[i].defined()) terms.push_back((a[i].to(at::kDouble) * b[i].to(at::kDouble)).sum());
  return terms.empty() ? 0.0 : at::stack(terms).sum().item<double>();
}

SharpnessAware::SharpnessAware(const Params& p, const Context& ctx)
    : base_(make_base(p, ctx)),
      targets_(model_of(ctx), flags_of(p)),
      params_(params_of(ctx)),
      rho_(p.get<double>("rho")),
      rho_final_(p.get<double>("rho_final")),
      warmup_epochs_(p.get<double>("rho_warmup_epochs")),
      rho_schedule_(p.get<std::string>("rho_schedule")),
      single_pass_(p.get<bool>("single_pass_when_zero")),
      freeze_bn_(p.get<std::string>("bn_second_pass") == "freeze"),
      sync_perturbation_(p.get<bool>("sync_perturbation")),
      collective_(ctx.collective),
      rho_now_(rho_),
      seed_(SplitMix::mix(ctx.seed, 0x5a3)),
      rng_(seed_) {}

Schema SharpnessAware::common_schema(double default_rho) {
  Schema s;
  s.component("base", Kind::Optimizer, "sgd", "the base optimizer that takes the step, e.g. { use = \"sgd\", lr = 0.01 }");
  s.real("rho", default_rho, "radius ρ of the perturbation").min(0);
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
  global_step_ = progress.epoch * progress.steps_per_epoch + progress.step;
  rng_ = SplitMix(SplitMix::mix(seed_, static_cast<std::uint64_t>(global_step_)));
  base_->begin_step(progress);
}

void SharpnessAware::set_lr_factor(double factor) {
  lr_factor_ = factor;
  base_->set_lr_factor(factor);
}

StepResult SharpnessAware::step(const LossFn& loss_fn) {
  if (rho_now_ == 0.0 && single_pass_) {
    StepResult r = base_->step(loss_fn);
    r.rho = 0.0;
    return r;
  }
  return method_step(loss_fn);
}

StateDict SharpnessAware::base_state() const {
  StateDict s;
  base_->save(s);
  return s;
}

void SharpnessAware::save(StateDict& state) const {
  base_->save(state.child("base"));
  save_method(state);
}

void SharpnessAware::load(const StateDict& state) {
  base_->load(state.child("base"));
  load_method(state);
}

Ascent SharpnessAware::ascend(const LossFn& loss_fn, const std::function<bool(const Target&)>& choose, bool with_params) {
  base_->zero_grad();
  Ascent a;
  a.per_sample = loss_fn(at::Tensor());
  a.loss = a.per_sample.mean();
  for (auto& t : targets_.collect())
    if (!choose || choose(t)) a.targets.push_back(t);
  std::vector<at::Tensor> inputs;
  for (const auto& t : a.targets) inputs.push_back(t.value);
  if (with_params) inputs.insert(inputs.end(), params_.begin(), params_.end());
  // One backward for every input: autograd runs only the kernels that reach them (a target left out costs no
  // weight-gradient kernel).
  std::vector<at::Tensor> grads =
      inputs.empty() ? std::vector<at::Tensor>{}
                     : torch::autograd::grad({a.loss}, inputs, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                             /*allow_unused=*/true);
  a.grads.assign(grads.begin(), grads.begin() + static_cast<std::ptrdiff_t>(a.targets.size()));
  a.param_grads.assign(grads.begin() + static_cast<std::ptrdiff_t>(a.targets.size()), grads.end());
  if (sync_perturbation_ && collective_ && collective_->world_size() > 1) {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < a.grads.size(); ++i)
      if (!a.grads[i].defined()) a.grads[i] = at::zeros_like(a.targets[i].value);
    average_tensors(*collective_, a.grads);
  }
  return a;
}

double SharpnessAware::gradient_norm(const Ascent& a, double eta) const {
  at::NoGradGuard no_grad;
  // Per-tensor sums stay tensors and are read once: one host sync per norm, not one per tensor.
  std::vector<at::Tensor> squares;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    if (!a.grads[i].defined()) continue;
    at::Tensor g = eta >= 0 && a.targets[i].adaptive ? a.grads[i] * (a.targets[i].value.abs() + eta) : a.grads[i];
    squares.push_back(g.pow(2).sum().to(at::kDouble));
  }
  return squares.empty() ? 0.0 : std::sqrt(at::stack(squares).sum().item<double>());
}

double SharpnessAware::perturb(const Ascent& a, double scale, Restore& restore, double eta) const {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> eps_squares;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    if (!a.grads[i].defined()) continue;
    const Target& t = a.targets[i];
    at::Tensor eps = eta >= 0 && t.adaptive ? (t.value.abs() + eta).pow(2) * a.grads[i] * scale : a.grads[i] * scale;
    eps_squares.push_back(eps.pow(2).sum().to(at::kDouble));
    if (t.layer) {
      restore.layers.push_back(t.layer);
      t.layer->set_perturbation(eps);
    } else {
      restore.params.emplace_back(t.value, t.value.detach().clone());
      t.value.detach().add_(eps);
    }
  }
  return eps_squares.empty() ? 0.0 : std::sqrt(at::stack(eps_squares).sum().item<double>());
}

void SharpnessAware::freeze_norms(Restore& restore) const {
  if (!freeze_bn_) return;
  for (auto& bn : targets_.norms()) restore.momenta.emplace_back(bn, bn->momentum), bn->momentum = 0.0;
}

at::Tensor SharpnessAware::descend(const LossFn& loss_fn, const at::Tensor& rows) {
  base_->zero_grad();
  at::AutoGradMode enable(true);
  at::Tensor loss = loss_fn(rows).mean();
  loss.backward();
  return loss;
}

StepResult SharpnessAware::two_pass_result(const Ascent& a, double perturbed_loss, double eps_norm, double rho) {
  StepResult r;
  r.loss = a.loss.item<double>();
  r.sharpness = perturbed_loss - r.loss;
  r.perturbation_norm = eps_norm;
  r.rho = rho;
  return r;
}

}  // namespace saq::plugins

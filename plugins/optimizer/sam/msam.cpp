#include "msam.hpp"

#include <cmath>

#include <ATen/ATen.h>

namespace saq::plugins {

Msam::Msam(const Params& p, const Context& ctx) : SharpnessAware(p, ctx) {
  const Params& base = p.child("base");
  if (base.use() == "sgd" && base.get<double>("momentum") <= 0)
    p.fail("base", "MSAM perturbs along the base optimizer's momentum: give sgd a momentum > 0");
  for (std::size_t i = 0; i < params().size(); ++i) index_[params()[i].unsafeGetTensorImpl()] = i;
}

Schema Msam::schema() { return common_schema(0.3); }

std::vector<at::Tensor> Msam::momenta() const {
  const StateDict s = base_state();
  if (!s.has("kind")) throw std::runtime_error("msam: the base optimizer keeps no momentum that msam can read");
  const char* key = s.text("kind") == "sgd" ? "momentum_buffer" : "exp_avg";
  std::vector<at::Tensor> out;
  const StateDict& groups = s.child("groups");
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const StateDict& group = groups.child(std::to_string(g));
    const StateDict& state = group.child("state");
    for (std::int64_t i = 0; i < group.integer("params"); ++i) {
      const std::string k = std::to_string(i);
      out.push_back(state.has(k) && state.child(k).has(key) ? state.child(k).tensor(key) : at::Tensor());
    }
  }
  return out;
}

StepResult Msam::method_step(const LossFn& loss_fn) {
  const std::vector<at::Tensor> v = momenta();
  auto v_of = [&](const at::Tensor& param) {
    auto it = index_.find(param.unsafeGetTensorImpl());
    return it == index_.end() || it->second >= v.size() ? at::Tensor() : v[it->second];
  };
  // what moves, and along which momentum
  std::vector<std::pair<std::shared_ptr<QuantLayer>, at::Tensor>> layers;  // SAQ: Q(w) along v_w
  std::vector<std::pair<at::Tensor, at::Tensor>> tensors;                  // a parameter along its own v
  for (const auto& layer : targets().perturbed_layers())
    if (at::Tensor m = v_of(layer->weight); m.defined()) layers.emplace_back(layer, m);
  for (const auto& t : targets().parameter_targets())
    if (at::Tensor m = v_of(t.value); m.defined() && t.value.requires_grad()) tensors.emplace_back(t.value, m);
  std::vector<at::Tensor> squares;
  for (const auto& [layer, m] : layers) squares.push_back(m.pow(2).sum().to(at::kDouble));
  for (const auto& [param, m] : tensors) squares.push_back(m.pow(2).sum().to(at::kDouble));
  const double norm = squares.empty() ? 0.0 : std::sqrt(at::stack(squares).sum().item<double>());

  Restore restore;
  if (norm > 0) {
    at::NoGradGuard no_grad;
    const double scale = -rho_now() / norm;
    for (const auto& [layer, m] : layers) {
      restore.layers.push_back(layer);
      layer->set_perturbation(m * scale);
    }
    for (const auto& [param, m] : tensors) {
      restore.params.emplace_back(param, param.detach().clone());
      param.detach().add_(m, scale);
    }
  }
  const at::Tensor loss = descend(loss_fn, at::Tensor());  // g at w̃
  restore.now();
  apply_gradients();
  StepResult r;
  r.loss = loss.item<double>();
  r.perturbation_norm = norm > 0 ? rho_now() : 0.0;
  r.rho = rho_now();
  return r;
}

}  // namespace saq::plugins

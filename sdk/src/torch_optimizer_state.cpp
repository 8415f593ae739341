// A torch::optim optimizer's state as a StateDict:
//   kind: "sgd" | "adam" | "adamw"
//   groups.<g>.lr, groups.<g>.params (how many), groups.<g>.state.<i>.{momentum_buffer | step, exp_avg, ...}
// LibTorch keys its per-parameter state by the parameter's TensorImpl address, so the state is saved and
// restored by position: group g, parameter i.
#include <saq/torch_optimizer.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/string_utils.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace saq {

namespace {

std::string kind_of(const torch::optim::Optimizer& o) {
  if (dynamic_cast<const torch::optim::SGD*>(&o)) return "sgd";
  if (dynamic_cast<const torch::optim::Adam*>(&o)) return "adam";
  if (dynamic_cast<const torch::optim::AdamW*>(&o)) return "adamw";
  throw std::runtime_error("the state of this torch::optim optimizer is not saved (SGD, Adam and AdamW are)");
}

std::string key_of(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

void put_defined(StateDict& d, const std::string& key, const at::Tensor& t) {
  if (t.defined()) d.put_tensor(key, t);
}

template <class AdamState>
void save_adam(const AdamState& s, StateDict& d) {
  d.put_int("step", s.step());
  put_defined(d, "exp_avg", s.exp_avg());
  put_defined(d, "exp_avg_sq", s.exp_avg_sq());
  put_defined(d, "max_exp_avg_sq", s.max_exp_avg_sq());
}

/// `d[key]` checked against the parameter, on the parameter's device; undefined when absent.
at::Tensor buffer(const StateDict& d, const std::string& key, const at::Tensor& param) {
  if (!d.has(key)) return {};
  const at::Tensor& t = d.tensor(key);
  if (t.sizes() != param.sizes() || t.scalar_type() != param.scalar_type())
    throw std::runtime_error(d.where() + ": '" + key + "' is " + c10::toString(t.scalar_type()) + " " +
                             c10::str(t.sizes()) + ", its parameter " + c10::toString(param.scalar_type()) + " " +
                             c10::str(param.sizes()));
  return t.to(param.device()).clone();
}

template <class AdamState>
std::unique_ptr<torch::optim::OptimizerParamState> load_adam(const StateDict& d, const at::Tensor& p) {
  auto s = std::make_unique<AdamState>();
  s->step(d.integer("step"));
  s->exp_avg(buffer(d, "exp_avg", p));
  s->exp_avg_sq(buffer(d, "exp_avg_sq", p));
  s->max_exp_avg_sq(buffer(d, "max_exp_avg_sq", p));
  return s;
}

}  // namespace

void save_torch_optimizer(const torch::optim::Optimizer& optimizer, StateDict& state) {
  const std::string kind = kind_of(optimizer);
  state.put_text("kind", kind);
  StateDict& groups = state.child("groups");
  const auto& all = optimizer.state();
  for (std::size_t g = 0; g < optimizer.param_groups().size(); ++g) {
    const auto& group = optimizer.param_groups()[g];
    StateDict& out = groups.child(std::to_string(g));
    out.put_real("lr", group.options().get_lr());
    out.put_int("params", static_cast<std::int64_t>(group.params().size()));
    StateDict& per_param = out.child("state");
    for (std::size_t i = 0; i < group.params().size(); ++i) {
      auto it = all.find(key_of(group.params()[i]));
      if (it == all.end()) continue;  // no step has touched it yet
      StateDict& d = per_param.child(std::to_string(i));
      if (kind == "sgd") put_defined(d, "momentum_buffer", static_cast<const torch::optim::SGDParamState&>(*it->second).momentum_buffer());
      else if (kind == "adam") save_adam(static_cast<const torch::optim::AdamParamState&>(*it->second), d);
      else save_adam(static_cast<const torch::optim::AdamWParamState&>(*it->second), d);
    }
  }
}

void load_torch_optimizer(torch::optim::Optimizer& optimizer, const StateDict& state) {
  const std::string kind = kind_of(optimizer);
  if (state.text("kind") != kind)
    throw std::runtime_error(state.where() + ": the state of a '" + state.text("kind") + "' optimizer, this one is '" +
                             kind + "'");
  const StateDict& groups = state.child("groups");
  auto& param_groups = optimizer.param_groups();
  if (groups.size() != param_groups.size())
    throw std::runtime_error(groups.where() + ": " + std::to_string(groups.size()) + " parameter groups, the optimizer has " +
                             std::to_string(param_groups.size()));
  // Everything is built and checked first; the optimizer changes only once all of it fits.
  std::vector<std::pair<std::string, std::unique_ptr<torch::optim::OptimizerParamState>>> built;
  std::vector<double> lrs;
  for (std::size_t g = 0; g < param_groups.size(); ++g) {
    const StateDict& in = groups.child(std::to_string(g));
    const auto& params = param_groups[g].params();
    if (in.integer("params") != static_cast<std::int64_t>(params.size()))
      throw std::runtime_error(in.where() + ": " + std::to_string(in.integer("params")) + " parameters, the group has " +
                               std::to_string(params.size()));
    lrs.push_back(in.real("lr"));
    const StateDict& per_param = in.child("state");
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (!per_param.has(std::to_string(i))) continue;
      const StateDict& d = per_param.child(std::to_string(i));
      if (kind == "sgd") {
        auto s = std::make_unique<torch::optim::SGDParamState>();
        s->momentum_buffer(buffer(d, "momentum_buffer", params[i]));
        built.emplace_back(key_of(params[i]), std::move(s));
      } else if (kind == "adam") {
        built.emplace_back(key_of(params[i]), load_adam<torch::optim::AdamParamState>(d, params[i]));
      } else {
        built.emplace_back(key_of(params[i]), load_adam<torch::optim::AdamWParamState>(d, params[i]));
      }
    }
  }
  optimizer.state().clear();
  for (auto& [key, s] : built) optimizer.state()[key] = std::move(s);
  for (std::size_t g = 0; g < param_groups.size(); ++g) param_groups[g].options().set_lr(lrs[g]);
}

}  // namespace saq

#include <torch/optim/sgd.h>

#include "optimizers.hpp"

namespace saq::plugins {

namespace {
std::unique_ptr<torch::optim::Optimizer> make_sgd(const Params& p, const Context& ctx) {
  const double momentum = p.get<double>("momentum"), dampening = p.get<double>("dampening");
  const bool nesterov = p.get<bool>("nesterov");
  if (nesterov && (momentum <= 0 || dampening != 0))
    p.fail("nesterov", "needs momentum > 0 and dampening = 0, got momentum " + std::to_string(momentum) +
                           ", dampening " + std::to_string(dampening));
  auto defaults = torch::optim::SGDOptions(p.get<double>("lr"))
                      .momentum(momentum)
                      .dampening(dampening)
                      .nesterov(nesterov)
                      .weight_decay(p.get<double>("weight_decay"));
  return std::make_unique<torch::optim::SGD>(torch_groups(ctx.groups, defaults), defaults);
}
}  // namespace

Sgd::Sgd(const Params& p, const Context& ctx) : TorchOptimizer(make_sgd(p, ctx), ctx.collective) {}

Schema Sgd::schema() {
  Schema s;
  s.real("lr", 0.1, "learning rate").above(0);
  s.real("momentum", 0.9, "momentum factor").min(0).below(1);
  s.real("dampening", 0.0, "dampening of the momentum buffer").min(0).max(1);
  s.boolean("nesterov", false, "Nesterov momentum");
  s.real("weight_decay", 0.0, "L2 penalty added to the gradient").min(0);
  return s;
}

}  // namespace saq::plugins

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>

#include "optimizers.hpp"

namespace saq::plugins {

namespace {
template <class Options>
Options adam_options(const Params& p) {
  return Options(p.get<double>("lr"))
      .betas({p.get<double>("beta1"), p.get<double>("beta2")})
      .eps(p.get<double>("eps"))
      .weight_decay(p.get<double>("weight_decay"))
      .amsgrad(p.get<bool>("amsgrad"));
}

Schema adam_schema(double weight_decay, const char* decay_doc) {
  Schema s;
  s.real("lr", 1e-3, "learning rate").above(0);
  s.real("beta1", 0.9, "first-moment decay").min(0).below(1);
  s.real("beta2", 0.999, "second-moment decay").min(0).below(1);
  s.real("eps", 1e-8, "denominator guard").above(0);
  s.real("weight_decay", weight_decay, decay_doc).min(0);
  s.boolean("amsgrad", false, "use the running maximum of the second moment");
  return s;
}
}  // namespace

Adam::Adam(const Params& p, const Context& ctx)
    : TorchOptimizer(std::make_unique<torch::optim::Adam>(
          torch_groups(ctx.groups, adam_options<torch::optim::AdamOptions>(p)),
          adam_options<torch::optim::AdamOptions>(p)), ctx.collective) {}

Schema Adam::schema() { return adam_schema(0.0, "L2 penalty added to the gradient"); }

AdamW::AdamW(const Params& p, const Context& ctx)
    : TorchOptimizer(std::make_unique<torch::optim::AdamW>(
          torch_groups(ctx.groups, adam_options<torch::optim::AdamWOptions>(p)),
          adam_options<torch::optim::AdamWOptions>(p)), ctx.collective) {}

Schema AdamW::schema() { return adam_schema(1e-2, "decoupled weight decay"); }

}  // namespace saq::plugins

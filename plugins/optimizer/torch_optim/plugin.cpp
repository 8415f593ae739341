#include "optimizers.hpp"

SAQ_PLUGIN("torch_optim", "1.0.0", "first-order optimizers: SGD, Adam, AdamW", reg) {
  reg.add<saq::plugins::Sgd>("sgd", "SGD with momentum, Nesterov and weight decay");
  reg.add<saq::plugins::Adam>("adam", "Adam with L2 weight decay");
  reg.add<saq::plugins::AdamW>("adamw", "AdamW with decoupled weight decay");
}

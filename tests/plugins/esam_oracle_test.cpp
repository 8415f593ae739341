// saqhost's esam against one step of the authors' own ESAM code (tests/data/oracles/esam_step.pth, made by
// tools/oracles/make_esam_fixture.py): the same frozen tensors give the same step.
#include "unit.hpp"

#include <filesystem>
#include <map>

#include <ATen/ATen.h>
#include <saq/torch_file.hpp>

#include "sharpness_aware_fixture.hpp"

using namespace saq;
using namespace saq::sa_test;

TEST_CASE("ESAM oracle: with the official step's frozen tensors, saqhost's step gives its weights (β = 0.5, γ = 1)") {
  const std::filesystem::path file =
      std::filesystem::path(test::env("SAQ_SOURCE_ROOT")) / "tests/data/oracles/esam_step.pth";
  std::map<std::string, at::Tensor> f;
  for (const auto& [name, t] : read_state_dict(file.string())) f[name] = t;
  const std::vector<std::string> names = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  // saqhost draws which tensors join from (seed, step): find a step whose draw freezes what the fixture froze
  bool found = false;
  for (std::int64_t step = 0; step < 400 && !found; ++step) {
    auto net = std::make_shared<Net>();
    auto fc1 = linear(*net, "fc1", 4, 3, true);
    auto fc2 = linear(*net, "fc2", 3, 2, true);
    net->to(at::kDouble);
    {
      at::NoGradGuard g;
      for (const auto& p : net->named_parameters()) p.value().copy_(f.at("before." + p.key()));
    }
    auto opt = make_optimizer("use = \"esam\"\nrho = 0.2\nbeta = 0.5\ngamma = 1.0\nperturb = \"latent\"\n"
                              "base = { use = \"sgd\", lr = 0.1, momentum = 0.9 }\n",
                              net);
    std::map<std::string, bool> moved;
    int calls = 0;
    LossFn loss = [&](const at::Tensor&) {
      if (++calls == 2)
        for (const auto& p : net->named_parameters()) moved[p.key()] = !at::equal(p.value(), f.at("before." + p.key()));
      at::Tensor logits = fc2->forward(at::tanh(fc1->forward(f.at("x"))));
      return at::nll_loss(at::log_softmax(logits, 1), f.at("y"), {}, at::Reduction::None);
    };
    Progress progress;
    progress.step = step, progress.steps_per_epoch = 1000;
    opt->begin_step(progress);
    opt->step(loss);
    bool same_draw = true;
    for (const auto& n : names) same_draw &= moved[n] == !f.at("frozen." + n).item<bool>();
    if (!same_draw) continue;
    found = true;
    for (const auto& p : net->named_parameters()) {
      CAPTURE(p.key());
      // the official code adds 1e-7 to the norm where saqhost adds 1e-12, and undoes ε by subtraction: ~1e-9
      CHECK(at::allclose(p.value(), f.at("after." + p.key()), 0, 1e-8));
      // the step moved it by far more than that tolerance
      CHECK((f.at("after." + p.key()) - f.at("before." + p.key())).abs().max().item<double>() > 1e-6);
    }
  }
  CHECK(found);
}

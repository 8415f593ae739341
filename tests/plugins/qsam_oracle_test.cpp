// saqhost's sam and asam on the quantized weights (SAQ's QSAM and QASAM) against one step of the official SAQ code
// (tests/data/oracles/qsam_step.pth, made by tools/oracles/make_qsam_fixture.py): a float64 MLP of two liq_wn
// linear layers at 4-bit weights, the second with a 4-bit input, both optimizers over SGD with momentum.
#include "unit.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include <ATen/ATen.h>
#include <saq/quantizer.hpp>
#include <saq/torch_file.hpp>

#include "sharpness_aware_fixture.hpp"

using namespace saq;
using namespace saq::sa_test;

namespace {

std::shared_ptr<Quantizer> liq_wn() {
  test::TempDir dir;
  host::Pipeline p = test::pipeline_from_text(dir, "[data]\nuse = \"synthetic\"\n[model]\nuse = \"small_cnn\"\n"
                                                   "[quantizer]\nuse = \"liq_wn\"\n[[stage]]\nuse = \"eval\"\n");
  const host::Registry& reg = test::registry();
  return reg.make<Quantizer>(reg.require(Kind::Quantizer, "liq_wn", "test"), *p.quantizer, Context{});
}

/// The official parameter name of a saqhost one ("fc2.activation_quantizer.clip_value" → "fc2.activation_clip_value").
std::string official(std::string name) {
  for (const char* kind : {"weight", "activation"}) {
    const std::string ours = std::string(".") + kind + "_quantizer.clip_value";
    const auto at = name.find(ours);
    if (at != std::string::npos) name.replace(at, ours.size(), std::string(".") + kind + "_clip_value");
  }
  return name;
}

/// One step of `optimizer` (an [optimizer] body) from the fixture's `prefix`.before weights; each parameter is
/// checked against `prefix`.after when `expect_match`, else the largest difference from it is returned.
double check_step(const std::string& prefix, const std::string& optimizer, bool expect_match = true) {
  const std::filesystem::path file =
      std::filesystem::path(test::env("SAQ_SOURCE_ROOT")) / "tests/data/oracles/qsam_step.pth";
  std::map<std::string, at::Tensor> f;
  for (const auto& [name, t] : read_state_dict(file.string())) f[name] = t;
  auto at_key = [&](const std::string& k) {
    REQUIRE_MESSAGE(f.count(prefix + "." + k), "the fixture lacks " << prefix << "." << k);
    return f.at(prefix + "." + k);
  };

  auto q = liq_wn();
  auto net = std::make_shared<Net>();
  auto fc1 = linear(*net, "fc1", 4, 3, true);
  auto fc2 = linear(*net, "fc2", 3, 2, true);
  fc1->attach(q->weight_quantizer({"fc1", false, {3, 4}, 1, true, false}),
              q->activation_quantizer({"fc1", false, {3, 4}, 1, true, false}));
  fc2->attach(q->weight_quantizer({"fc2", false, {2, 3}, 1, false, true}),
              q->activation_quantizer({"fc2", false, {2, 3}, 1, false, true}));
  fc1->set_bits(4, 32);
  fc2->set_bits(4, 4);
  net->to(at::kDouble);
  net->train();
  {
    at::NoGradGuard g;
    for (const auto& p : net->named_parameters()) p.value().copy_(at_key("before." + official(p.key())));
    for (const auto& b : net->named_buffers()) b.value().fill_(1);  // "initialized": the clips come from the fixture
  }
  auto opt = make_optimizer(optimizer, net);
  const at::Tensor x = at_key("x"), y = at_key("y");
  LossFn loss = [&](const at::Tensor&) {
    return at::nll_loss(at::log_softmax(fc2->forward(at::sigmoid(fc1->forward(x))), 1), y, {}, at::Reduction::None);
  };
  Progress progress;
  progress.steps_per_epoch = 10;
  opt->begin_step(progress);
  opt->step(loss);

  int compared = 0;
  double largest = 0;
  for (const auto& p : net->named_parameters()) {
    // fc1's input is not quantized (32 bits): its clip takes no part in the step in either implementation
    if (p.key() == "fc1.activation_quantizer.clip_value") continue;
    const std::string name = official(p.key());
    CAPTURE(name);
    const at::Tensor before = at_key("before." + name), after = at_key("after." + name);
    largest = std::max(largest, (p.value() - after).abs().max().item<double>());
    if (!expect_match) continue;
    CHECK(at::allclose(p.value(), after, 0, 1e-12));
    CHECK((after - before).abs().max().item<double>() > 1e-3);  // the step moved it by far more than the tolerance
    ++compared;
  }
  if (expect_match) CHECK(compared == 7);  // two weights, two biases, two weight clips, fc2's activation clip
  return largest;
}

/// The base optimizer's step alone, the same SGD as the fixture's.
const char* const kPlainSgd = "use = \"sam\"\nrho = 0.0\nbase = { use = \"sgd\", lr = 0.1, momentum = 0.9 }\n";

}  // namespace

TEST_CASE("QSAM oracle: sam on the quantized weights gives the official SAQ step (ρ = 0.2, activation clip perturbed)") {
  check_step("qsam", "use = \"sam\"\nrho = 0.2\nperturb = \"quantized\"\nperturb_weight_clip = false\n"
                     "perturb_activation_clip = true\nbase = { use = \"sgd\", lr = 0.1, momentum = 0.9 }\n");
  CHECK(check_step("qsam", kPlainSgd, false) > 1e-4);  // without ε the step is another: the perturbation is tested
}

TEST_CASE("QASAM oracle: asam on the quantized weights gives the official step at η = 0 (ρ = 0.5)") {
  check_step("qasam", "use = \"asam\"\nrho = 0.5\neta = 0.0\nperturb = \"quantized\"\nperturb_weight_clip = false\n"
                      "perturb_activation_clip = true\nbase = { use = \"sgd\", lr = 0.1, momentum = 0.9 }\n");
  CHECK(check_step("qasam", kPlainSgd, false) > 1e-4);
  // and QASAM's step is not QSAM's at the same ρ
  CHECK(check_step("qasam", "use = \"sam\"\nrho = 0.5\nperturb = \"quantized\"\nperturb_weight_clip = false\n"
                            "base = { use = \"sgd\", lr = 0.1, momentum = 0.9 }\n", false) > 1e-4);
}

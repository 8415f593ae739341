// Loading state_dicts into models by name: PyTorch's file into the same architecture, DataParallel's prefix,
// the mismatch report (missing, unexpected, other shape) strict and partial, quantizer state, and our own
// files read back equal.
#include "unit.hpp"

#include <tuple>

#include <filesystem>
#include <map>

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "state_dict.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using saq::host::LoadReport;
using saq::host::load_state_dict;

namespace {

fs::path fixture(const std::string& name) { return fs::path(saq::test::env("SAQ_SOURCE_ROOT")) / "tests/data/pth" / name; }

/// Stands for a quantizer's state: one clip value.
struct Clip : torch::nn::Module {
  Clip() { register_parameter("clip_value", at::full({1}, 3.0)); }
};

/// The architecture of tests/data/pth/make_fixture.py's model, with `classes` outputs and optional extras.
struct Net : torch::nn::Module {
  explicit Net(std::int64_t classes = 5, bool with_fc = true, bool extra = false, bool quantizer = false) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).bias(false)));
    bn = register_module("bn", torch::nn::BatchNorm2d(4));
    if (with_fc) fc = register_module("fc", torch::nn::Linear(4, classes));
    if (extra) register_parameter("head_scale", at::ones({1}));
    if (quantizer) conv->register_module("weight_quantizer", std::make_shared<Clip>());
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Linear fc{nullptr};
};

std::map<std::string, at::Tensor> state(const torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t] : saq::host::model_state(m)) out[name] = t;
  return out;
}

std::map<std::string, at::Tensor> file_state(const std::string& name) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, t] : saq::read_state_dict(fixture(name).string())) out[k] = t;
  return out;
}

std::string strict_error(torch::nn::Module& m, const saq::NamedTensors& t) {
  try {
    load_state_dict(m, t, "f.pth", false);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

using saq::test::contains;

}  // namespace

TEST_CASE("state_dict: model_state names parameters and buffers as PyTorch does") {
  Net net;
  std::vector<std::string> names;
  for (const auto& [name, t] : saq::host::model_state(net)) names.push_back(name);
  CHECK(names == std::vector<std::string>{"conv.weight", "bn.weight", "bn.bias", "fc.weight", "fc.bias",
                                          "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});
}

TEST_CASE("state_dict: PyTorch's file loads strictly into the same architecture, every tensor equal") {
  Net net;
  LoadReport r = load_state_dict(net, saq::read_state_dict(fixture("model.pth").string()), "model.pth", false);
  CHECK(r.complete());
  CHECK(r.loaded.size() == 8);
  auto want = file_state("model.pth");
  for (const auto& item : state(net)) {
    const auto& name = std::get<0>(item);
    const auto& t = std::get<1>(item);
    CAPTURE(name);
    CHECK(at::equal(t, want.at(name)));
  }
  CHECK(net.bn->num_batches_tracked.item<std::int64_t>() == 12);  // the script's value
}

TEST_CASE("state_dict: DataParallel's module. prefix is dropped; a wrapped state_dict is found") {
  Net net;
  LoadReport r = load_state_dict(net, saq::read_state_dict(fixture("wrapped.pth").string()), "wrapped.pth", false);
  CHECK(r.stripped_module_prefix);
  CHECK(r.complete());
  CHECK(at::equal(net.conv->weight, file_state("model.pth").at("conv.weight")));
  CHECK(contains(r.describe(), "the file's \"module.\" prefix dropped"));
}

TEST_CASE("state_dict: another class count is an error listing the mis-shaped tensors, or a partial load") {
  saq::NamedTensors file = saq::read_state_dict(fixture("model.pth").string());
  Net strict(7);
  std::string msg = strict_error(strict, file);
  CHECK(contains(msg, "f.pth: does not match the model (6 tensors match; of another shape (2): "
                 "fc.weight: file [5, 4], model [7, 4], fc.bias: file [5], model [7]"));
  CHECK(contains(msg, "init_partial = true"));
  CHECK(!at::equal(strict.conv->weight, file_state("model.pth").at("conv.weight")));  // nothing was copied

  Net partial(7);
  at::Tensor fc_before = partial.fc->weight.clone();
  LoadReport r = load_state_dict(partial, file, "f.pth", true);
  CHECK(!r.complete());
  CHECK(r.loaded.size() == 6);
  CHECK(r.misshaped == std::vector<std::string>{"fc.weight: file [5, 4], model [7, 4]", "fc.bias: file [5], model [7]"});
  CHECK(at::equal(partial.conv->weight, file_state("model.pth").at("conv.weight")));
  CHECK(at::equal(partial.fc->weight, fc_before));
  CHECK(contains(r.describe(), "6 tensors match; of another shape (2): fc.weight"));
}

TEST_CASE("state_dict: missing and unexpected tensors are each listed by name") {
  saq::NamedTensors file = saq::read_state_dict(fixture("model.pth").string());
  Net more(5, true, /*extra=*/true);
  CHECK(contains(strict_error(more, file), "8 tensors match; missing from the file (1): head_scale"));
  Net less(5, /*with_fc=*/false);
  CHECK(contains(strict_error(less, file), "6 tensors match; unexpected (not in the model) (2): fc.weight, fc.bias"));
  LoadReport r = load_state_dict(less, file, "f.pth", true);
  CHECK(r.unexpected == std::vector<std::string>{"fc.weight", "fc.bias"});
  CHECK(r.missing.empty());
}

TEST_CASE("state_dict: quantizer state absent from an FP32 file keeps its value, and the load is complete") {
  Net q(5, true, false, /*quantizer=*/true);
  LoadReport r = load_state_dict(q, saq::read_state_dict(fixture("model.pth").string()), "f.pth", false);
  CHECK(r.complete());
  CHECK(r.kept == std::vector<std::string>{"conv.weight_quantizer.clip_value"});
  CHECK(q.conv->named_parameters()["weight_quantizer.clip_value"].item<float>() == 3.0f);
}

TEST_CASE("state_dict: our saved file reads back equal and loads into a fresh model") {
  saq::test::TempDir dir;
  Net a(5, true, false, true);
  a.bn->running_mean.uniform_(-1, 1);
  a.bn->num_batches_tracked.fill_(4);
  saq::host::save_state_dict(a, dir / "a.pth");
  auto back = saq::read_state_dict((dir / "a.pth").string());
  auto want = saq::host::model_state(a);
  REQUIRE(back.size() == want.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    CAPTURE(want[i].first);
    CHECK(back[i].first == want[i].first);
    CHECK(at::equal(back[i].second, want[i].second));
  }
  Net b(5, true, false, true);
  CHECK(load_state_dict(b, back, "a.pth", false).complete());
  for (const auto& [name, t] : state(b)) CHECK(at::equal(t, state(a).at(name)));
}

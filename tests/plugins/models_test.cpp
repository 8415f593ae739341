// small_cnn and small_resnet: output shapes, parameter counts summed by hand from the architectures,
// PyTorch parameter names, and BatchNorm's train/eval behaviour (PyTorch's momentum-0.1 running statistics).
#include "plugin_test.hpp"

#include <torch/nn/module.h>

using namespace saq;

namespace {

const DataInfo kGrey28{{1, 28, 28}, 10, {}};
const DataInfo kColour32{{3, 32, 32}, 10, {}};

std::shared_ptr<Model> model(const std::string& keys, const DataInfo& info) {
  test::TempDir dir;
  return test::make_model(test::eval_pipeline(dir, "use = \"synthetic\"", keys), info);
}

std::int64_t count_parameters(const Model& m) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

at::Tensor named(const torch::OrderedDict<std::string, at::Tensor>& dict, const std::string& key) {
  const at::Tensor* t = dict.find(key);
  REQUIRE_MESSAGE(t != nullptr, "no tensor named " << key);
  return *t;
}

}  // namespace

TEST_CASE("models: logits are [B, num_classes] for 1x28x28 and 3x32x32 inputs") {
  at::manual_seed(0);
  for (const std::string use : {"small_cnn", "small_resnet"}) {
    CAPTURE(use);
    auto grey = model("use = \"" + use + "\"", kGrey28);
    CHECK(grey->forward(at::randn({4, 1, 28, 28})).sizes().vec() == std::vector<std::int64_t>{4, 10});
    auto colour = model("use = \"" + use + "\"\nwidth = 8", DataInfo{{3, 32, 32}, 100, {}});
    CHECK(colour->forward(at::randn({2, 3, 32, 32})).sizes().vec() == std::vector<std::int64_t>{2, 100});
  }
}

TEST_CASE("models: small_cnn parameter count, by hand") {
  // width 32 on 1x28x28, 10 classes (3x3 convolutions without bias; BN has weight and bias):
  //   conv 1*32*9 + 32*32*9 + 32*64*9 + 64*64*9 = 288 + 9216 + 18432 + 36864 = 64800
  //   BN   2 * (32 + 32 + 64 + 64)               = 384
  //   fc   64*10 + 10                              = 650          total 65834
  CHECK(count_parameters(*model("use = \"small_cnn\"\nwidth = 32", kGrey28)) == 65834);
  // 3 input channels: the first conv has 3*32*9 = 864 weights instead of 288: 65834 + 576 = 66410.
  CHECK(count_parameters(*model("use = \"small_cnn\"\nwidth = 32", kColour32)) == 66410);
  // width 8, 1 channel, 100 classes: conv 1*8*9 + 8*8*9 + 8*16*9 + 16*16*9 = 72 + 576 + 1152 + 2304 = 4104;
  //   BN 2 * (8 + 8 + 16 + 16) = 96; fc 16*100 + 100 = 1700; total 5900.
  CHECK(count_parameters(*model("use = \"small_cnn\"\nwidth = 8", DataInfo{{1, 28, 28}, 100, {}})) == 5900);
}

TEST_CASE("models: small_resnet parameter count, by hand") {
  // width 16, 1 block per stage, on 1x28x28, 10 classes:
  //   stem    conv 1*16*9 = 144, bn 32                                                       = 176
  //   layer1  16->16: conv 16*16*9 = 2304 twice, bn 32 twice, no shortcut conv               = 4672
  //   layer2  16->32: conv 16*32*9 = 4608, 32*32*9 = 9216, bn 64 twice, 1x1 16*32 = 512, bn 64 = 14528
  //   layer3  32->64: conv 32*64*9 = 18432, 64*64*9 = 36864, bn 128 twice, 1x1 32*64 = 2048, bn 128 = 57728
  //   fc      64*10 + 10                                                                      = 650
  //   total   176 + 4672 + 14528 + 57728 + 650                                                = 77754
  CHECK(count_parameters(*model("use = \"small_resnet\"", kGrey28)) == 77754);
  // 3 input channels: the stem has 3*16*9 = 432 weights instead of 144: 77754 + 288 = 78042.
  CHECK(count_parameters(*model("use = \"small_resnet\"", kColour32)) == 78042);
  // A second block per stage keeps its width and has no shortcut conv:
  //   layer1.1 2*2304 + 2*32 = 4672; layer2.1 2*9216 + 2*64 = 18560; layer3.1 2*36864 + 2*128 = 73984
  //   77754 + 4672 + 18560 + 73984 = 174970
  CHECK(count_parameters(*model("use = \"small_resnet\"\nblocks = 2", kGrey28)) == 174970);
}

TEST_CASE("models: parameter and buffer names and shapes follow PyTorch") {
  auto cnn = model("use = \"small_cnn\"\nwidth = 32", kGrey28);
  std::vector<std::string> want = {"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
                                   "conv3.weight", "bn3.weight", "bn3.bias", "conv4.weight", "bn4.weight", "bn4.bias",
                                   "fc.weight",    "fc.bias"};
  CHECK(cnn->named_parameters().keys() == want);
  auto buffers = cnn->named_buffers();
  CHECK(buffers.size() == 12);  // running_mean, running_var, num_batches_tracked of 4 BN layers
  CHECK(named(buffers, "bn1.running_mean").sizes().vec() == std::vector<std::int64_t>{32});
  CHECK(named(buffers, "bn4.running_var").sizes().vec() == std::vector<std::int64_t>{64});
  CHECK((named(buffers, "bn2.num_batches_tracked").scalar_type() == at::kLong));
  CHECK(named(cnn->named_parameters(), "conv3.weight").sizes().vec() == std::vector<std::int64_t>{64, 32, 3, 3});
  CHECK(named(cnn->named_parameters(), "fc.weight").sizes().vec() == std::vector<std::int64_t>{10, 64});

  auto res = model("use = \"small_resnet\"", kGrey28);
  auto params = res->named_parameters();
  CHECK(named(params, "conv1.weight").sizes().vec() == std::vector<std::int64_t>{16, 1, 3, 3});
  CHECK(named(params, "layer1.0.conv2.weight").sizes().vec() == std::vector<std::int64_t>{16, 16, 3, 3});
  CHECK(named(params, "layer2.0.conv1.weight").sizes().vec() == std::vector<std::int64_t>{32, 16, 3, 3});
  CHECK(named(params, "layer2.0.downsample.0.weight").sizes().vec() == std::vector<std::int64_t>{32, 16, 1, 1});
  CHECK(named(params, "layer3.0.downsample.1.bias").sizes().vec() == std::vector<std::int64_t>{64});
  CHECK(named(params, "fc.weight").sizes().vec() == std::vector<std::int64_t>{10, 64});
  CHECK(params.find("layer1.0.downsample.0.weight") == nullptr);  // stage 1 keeps the shape: identity shortcut
  auto res_buffers = res->named_buffers();
  CHECK(named(res_buffers, "bn1.running_mean").sizes().vec() == std::vector<std::int64_t>{16});
  CHECK(named(res_buffers, "layer2.0.downsample.1.running_var").sizes().vec() == std::vector<std::int64_t>{32});
  CHECK(res_buffers.size() == 3 * (1 + 2 + 3 + 3));  // 3 buffers per BN: stem, layer1 2, layer2 3, layer3 3
}

TEST_CASE("models: eval is deterministic and per-sample; train uses batch statistics") {
  at::manual_seed(1);
  at::Tensor x = at::randn({4, 1, 28, 28});
  for (const std::string use : {"small_cnn", "small_resnet"}) {
    CAPTURE(use);
    auto m = model("use = \"" + use + "\"\nwidth = 8", kGrey28);
    at::NoGradGuard no_grad;
    m->eval();
    at::Tensor e1 = m->forward(x), e2 = m->forward(x);
    CHECK(at::equal(e1, e2));
    // Running statistics do not depend on the batch: sample 0 alone gives the same logits.
    CHECK(at::allclose(m->forward(x.slice(0, 0, 1)), e1.slice(0, 0, 1), 1e-4, 1e-5));
    m->train();
    at::Tensor t = m->forward(x);
    CHECK(t.sub(e1).abs().max().item<float>() > 1e-3);
    // Batch statistics do: sample 0 in a batch of 2 is not sample 0 in a batch of 4.
    CHECK(m->forward(x.slice(0, 0, 2))[0].sub(t[0]).abs().max().item<float>() > 1e-3);
  }
}

TEST_CASE("models: a training pass moves BN running statistics by momentum 0.1 toward the batch's") {
  at::manual_seed(2);
  auto m = model("use = \"small_cnn\"\nwidth = 8", kGrey28);
  at::Tensor x = at::randn({6, 1, 28, 28});
  at::NoGradGuard no_grad;
  m->train();
  m->forward(x);
  auto buffers = m->named_buffers();
  // PyTorch: running = 0.9 * running + 0.1 * batch, from mean 0 and var 1; var is the unbiased one.
  at::Tensor h = at::conv2d(x, named(m->named_parameters(), "conv1.weight"), {}, 1, 1);  // [6, 8, 28, 28]
  at::Tensor mean = h.mean({0, 2, 3}), var = h.var({0, 2, 3}, /*unbiased=*/true);
  CHECK(at::allclose(named(buffers, "bn1.running_mean"), mean.mul(0.1), 1e-4, 1e-6));
  CHECK(at::allclose(named(buffers, "bn1.running_var"), var.mul(0.1).add(0.9), 1e-4, 1e-6));
  CHECK(named(buffers, "bn1.num_batches_tracked").item<std::int64_t>() == 1);
  m->eval();
  m->forward(x);
  CHECK(named(buffers, "bn1.num_batches_tracked").item<std::int64_t>() == 1);  // eval leaves them alone
}

TEST_CASE("models: small_cnn dropout is random in training and off in eval") {
  at::manual_seed(3);
  auto m = model("use = \"small_cnn\"\nwidth = 8\ndropout = 0.5", kGrey28);
  at::Tensor x = at::randn({4, 1, 28, 28});
  at::NoGradGuard no_grad;
  m->train();
  CHECK_FALSE(at::equal(m->forward(x), m->forward(x)));
  m->eval();
  CHECK(at::equal(m->forward(x), m->forward(x)));
}

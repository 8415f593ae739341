// synthetic: a deterministic set whose sample i is the prototype of class i % classes plus Gaussian noise of
// std noise * 255 grey levels, normalised with mean 0.5 and std 0.5.
#include "plugin_test.hpp"

using namespace saq;

namespace {

std::shared_ptr<Dataset> synthetic(const std::string& keys) {
  test::TempDir dir;
  return test::make_dataset(test::eval_pipeline(dir, "use = \"synthetic\"\n" + keys));
}

/// The grey levels 0..255 behind a normalised batch: x = (byte / 255 - 0.5) / 0.5.
at::Tensor grey(const at::Tensor& x) { return x.mul(0.5).add(0.5).mul(255).round(); }

}  // namespace

TEST_CASE("synthetic: the same parameters give the same bytes; another seed gives other bytes") {
  const std::string keys = "train_samples = 64\ntest_samples = 32\nseed = 7\n";
  auto a = synthetic(keys), b = synthetic(keys), other = synthetic("train_samples = 64\ntest_samples = 32\nseed = 8\n");
  for (const std::string split : {"train", "test"}) {
    CAPTURE(split);
    Batch x = test::whole_split(*a, split), y = test::whole_split(*b, split), z = test::whole_split(*other, split);
    CHECK(at::equal(x.x, y.x));
    CHECK(at::equal(x.y, y.y));
    // Two independent draws of a pixel are equal with small probability only: most pixels must differ.
    double same = grey(x.x).eq(grey(z.x)).to(at::kDouble).mean().item<double>();
    CHECK(same < 0.1);
  }
  // Training and test noise are drawn separately: sample 0 of each (both class 0) differ.
  CHECK_FALSE(at::equal(test::whole_split(*a, "train").x[0], test::whole_split(*a, "test").x[0]));
}

TEST_CASE("synthetic: sample i has label i % classes; shapes follow channels and size; sizes follow the keys") {
  auto ds = synthetic("classes = 7\nchannels = 3\nsize = 12\ntrain_samples = 20\ntest_samples = 9\n");
  DataInfo info = ds->info();
  CHECK(info.input_shape == std::vector<std::int64_t>{3, 12, 12});
  CHECK(info.num_classes == 7);
  CHECK(info.class_names.empty());
  Batch train = test::whole_split(*ds, "train"), t10k = test::whole_split(*ds, "test");
  CHECK(train.x.sizes().vec() == std::vector<std::int64_t>{20, 3, 12, 12});
  CHECK(t10k.x.sizes().vec() == std::vector<std::int64_t>{9, 3, 12, 12});
  CHECK(at::equal(train.y,
                  at::tensor(std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5})));
  CHECK(at::equal(t10k.y, at::tensor(std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 0, 1})));
  // Normalised bytes lie in [(0 - 0.5) / 0.5, (1 - 0.5) / 0.5] = [-1, 1].
  CHECK(train.x.min().item<float>() >= -1.0f);
  CHECK(train.x.max().item<float>() <= 1.0f);
  LoaderSpec spec;
  spec.split = "valid";
  CHECK_THROWS_AS(ds->loader(spec), std::invalid_argument);
}

TEST_CASE("synthetic: without noise every sample is its class prototype, in both splits") {
  auto ds = synthetic("classes = 3\nnoise = 0.0\ntrain_samples = 9\ntest_samples = 3\n");
  Batch train = test::whole_split(*ds, "train"), t10k = test::whole_split(*ds, "test");
  for (std::int64_t i = 3; i < 9; ++i) CHECK(at::equal(train.x[i], train.x[i % 3]));
  CHECK(at::equal(t10k.x, train.x.slice(0, 0, 3)));
  CHECK_FALSE(at::equal(train.x[0], train.x[1]));
}

TEST_CASE("synthetic: the noise has std noise * 255 grey levels around the prototype") {
  // Same seed: the prototypes are drawn before any noise, so noise = 0 gives the noise-free images.
  auto clean = synthetic("noise = 0.0\ntrain_samples = 200\ntest_samples = 1\n");
  auto noisy = synthetic("noise = 0.1\ntrain_samples = 200\ntest_samples = 1\n");
  at::Tensor c = grey(test::whole_split(*clean, "train").x), n = grey(test::whole_split(*noisy, "train").x);
  // Far from the clamps at 0 and 255 (>= 2.5 sigma of 25.5 levels away) the difference is the rounded noise.
  at::Tensor inner = c.ge(64).logical_and(c.le(191));
  at::Tensor d = (n - c).masked_select(inner).to(at::kDouble);
  REQUIRE(d.numel() > 50000);  // about half of 200 * 784 pixels
  CHECK(std::abs(d.mean().item<double>()) < 0.5);  // its standard error is 25.5 / sqrt(50000) = 0.11
  CHECK(d.std().item<double>() == doctest::Approx(25.5).epsilon(0.02));
  // Gaussian: 68.3% of draws lie within one sigma (|d| <= 25 of whole levels, 25.5 before rounding).
  double within = d.abs().le(25).to(at::kDouble).mean().item<double>();
  CHECK(within == doctest::Approx(0.683).epsilon(0.03));
}

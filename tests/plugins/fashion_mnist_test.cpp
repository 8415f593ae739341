// fashion_mnist on the real IDX files Debian installs: sizes, class balance and first labels as published
// (Xiao et al. 2017), the normalisation statistics, sample limits, splits.
#include "plugin_test.hpp"

#include <tuple>

using namespace saq;

namespace {

const std::string kRoot = "/usr/share/datasets/fashion-mnist";

/// The full data set with default parameters (normalize = true), loaded once for this file.
const Dataset& full() {
  static std::shared_ptr<Dataset> ds = [] {
    test::TempDir dir;
    return test::make_dataset(test::eval_pipeline(dir, "use = \"fashion_mnist\"\nroot = \"" + kRoot + "\""));
  }();
  return *ds;
}

std::int64_t samples(const Dataset& ds, const std::string& split) {
  LoaderSpec spec;
  spec.split = split;
  spec.train = false;
  return ds.loader(spec)->num_samples();
}

}  // namespace

TEST_CASE("fashion_mnist: 60000 training and 10000 test images, 6000 and 1000 of each class") {
  using Expect = std::tuple<std::string, std::int64_t, std::int64_t>;  // split, images, images per class
  for (const auto& item : {Expect{"train", 60000, 6000}, Expect{"test", 10000, 1000}}) {
    const auto& split = std::get<0>(item);
    const auto& total = std::get<1>(item);
    const auto& per_class = std::get<2>(item);
    CAPTURE(split);
    Batch all = test::whole_split(full(), split);
    REQUIRE(all.y.size(0) == total);
    CHECK((all.y.scalar_type() == at::kLong));
    at::Tensor counts = at::bincount(all.y, {}, 10);
    REQUIRE(counts.size(0) == 10);  // no label above 9
    for (std::int64_t c = 0; c < 10; ++c) CHECK(counts[c].item<std::int64_t>() == per_class);
  }
}

TEST_CASE("fashion_mnist: the first training and the first test image are both ankle boots (class 9)") {
  Batch train = test::whole_split(full(), "train");
  Batch t10k = test::whole_split(full(), "test");
  CHECK(train.y[0].item<std::int64_t>() == 9);
  CHECK(t10k.y[0].item<std::int64_t>() == 9);
  // The next labels of each file, as the IDX files hold them: train 9 0 0 3 0, t10k 9 2 1 1 6.
  CHECK(at::equal(train.y.slice(0, 0, 5), at::tensor(std::vector<std::int64_t>{9, 0, 0, 3, 0})));
  CHECK(at::equal(t10k.y.slice(0, 0, 5), at::tensor(std::vector<std::int64_t>{9, 2, 1, 1, 6})));
}

TEST_CASE("fashion_mnist: info is 1x28x28 grey, 10 named classes") {
  DataInfo info = full().info();
  CHECK(info.input_shape == std::vector<std::int64_t>{1, 28, 28});
  CHECK(info.num_classes == 10);
  REQUIRE(info.class_names.size() == 10);
  CHECK(info.class_names[0] == "T-shirt/top");
  CHECK(info.class_names[9] == "Ankle boot");
  CHECK(full().splits() == std::vector<std::string>{"train", "test"});
  Batch b;
  LoaderSpec spec;
  spec.batch_size = 32;
  REQUIRE(full().loader(spec)->next(b));
  CHECK(b.x.sizes().vec() == std::vector<std::int64_t>{32, 1, 28, 28});
  CHECK((b.x.scalar_type() == at::kFloat));
}

TEST_CASE("fashion_mnist: normalised training pixels have mean 0 and std 1 (published mean 0.2860, std 0.3530)") {
  Batch train = test::whole_split(full(), "train");
  at::Tensor x = train.x.to(at::kDouble);
  // (0.28604 - 0.2860) / 0.3530 = 0.0001 and 0.35302 / 0.3530 = 1.0001: both far inside 0.01.
  CHECK(std::abs(x.mean().item<double>()) < 0.01);
  CHECK(std::abs(x.std(/*unbiased=*/false).item<double>() - 1.0) < 0.01);
  // Without normalisation a pixel is byte/255: its range is [0, 1] and the mean is the published 0.2860.
  test::TempDir dir;
  auto raw =
      test::make_dataset(test::eval_pipeline(dir, "use = \"fashion_mnist\"\nnormalize = false\ntest_samples = 1"));
  at::Tensor r = test::whole_split(*raw, "train").x.to(at::kDouble);
  CHECK(r.min().item<double>() == 0.0);
  CHECK(r.max().item<double>() == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(r.mean().item<double>() == doctest::Approx(0.2860).epsilon(0.001));
}

TEST_CASE("fashion_mnist: train_samples and test_samples keep the first N images of each file") {
  test::TempDir dir;
  auto ds =
      test::make_dataset(test::eval_pipeline(dir, "use = \"fashion_mnist\"\ntrain_samples = 100\ntest_samples = 50"));
  CHECK(samples(*ds, "train") == 100);
  CHECK(samples(*ds, "test") == 50);
  Batch train = test::whole_split(*ds, "train");
  Batch t10k = test::whole_split(*ds, "test");
  CHECK(at::equal(train.x, test::whole_split(full(), "train").x.slice(0, 0, 100)));
  CHECK(at::equal(t10k.y, test::whole_split(full(), "test").y.slice(0, 0, 50)));
  CHECK(samples(full(), "train") == 60000);  // 0 = all
}

TEST_CASE("fashion_mnist: a split other than train and test is refused, naming it") {
  LoaderSpec spec;
  spec.split = "validation";
  std::string msg = test::error_of([&] { full().loader(spec); });
  CHECK(test::contains(msg, "'validation'"));
  CHECK_THROWS_AS(full().loader(spec), std::invalid_argument);
}

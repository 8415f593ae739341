// A deterministic image-classification set for tests: each class has a random prototype image, and every
// sample is its class prototype plus Gaussian pixel noise. The same parameters give the same bytes everywhere.
#include <cmath>

#include <ATen/ATen.h>

#include <saq/random.hpp>
#include <saq/sdk.hpp>
#include <saq/tensor_loader.hpp>

namespace saq::plugins {

namespace {

std::shared_ptr<ImageSet> make_split(const at::Tensor& prototypes, std::int64_t n, double noise, std::uint64_t seed) {
  const std::int64_t classes = prototypes.size(0), pixels = prototypes[0].numel();
  auto set = std::make_shared<ImageSet>();
  std::vector<std::int64_t> shape = prototypes.sizes().vec();
  shape[0] = n;
  set->images = at::empty(shape, at::kByte);
  set->labels = at::empty({n}, at::kLong);
  const float* proto = prototypes.data_ptr<float>();
  std::uint8_t* img = set->images.data_ptr<std::uint8_t>();
  SplitMix rng(seed);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t label = i % classes;
    set->labels[i] = label;
    for (std::int64_t k = 0; k < pixels; ++k) {
      double v = proto[label * pixels + k] + noise * 255.0 * rng.normal();
      img[i * pixels + k] = static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
    }
  }
  return set;
}

}  // namespace

class Synthetic final : public Dataset {
 public:
  Synthetic(const Params& p, const Context&)
      : classes_(p.get<std::int64_t>("classes")),
        shape_{p.get<std::int64_t>("channels"), p.get<std::int64_t>("size"), p.get<std::int64_t>("size")} {
    auto seed = static_cast<std::uint64_t>(p.get<std::int64_t>("seed"));
    at::Tensor prototypes = at::empty({classes_, shape_[0], shape_[1], shape_[2]}, at::kFloat);
    SplitMix rng(seed);
    float* proto = prototypes.data_ptr<float>();
    for (std::int64_t k = 0; k < prototypes.numel(); ++k) proto[k] = static_cast<float>(255.0 * rng.uniform());
    const double noise = p.get<double>("noise");
    train_ = make_split(prototypes, p.get<std::int64_t>("train_samples"), noise, seed * 2 + 1);
    test_ = make_split(prototypes, p.get<std::int64_t>("test_samples"), noise, seed * 2 + 2);
    norm_ = {std::vector<double>(shape_[0], 0.5), std::vector<double>(shape_[0], 0.5)};
  }

  static Schema schema() {
    Schema s;
    s.integer("classes", 10, "number of classes").min(2).max(1000);
    s.integer("channels", 1, "image channels").min(1).max(16);
    s.integer("size", 28, "image height and width").min(4).max(512);
    s.integer("train_samples", 2048, "training images").min(1);
    s.integer("test_samples", 512, "test images").min(1);
    s.real("noise", 0.1, "pixel noise std as a fraction of the 0..255 range").min(0);
    s.integer("seed", 0, "generator seed (independent of run.seed)").min(0);
    return s;
  }

  DataInfo info() const override { return {shape_, classes_, {}}; }
  std::vector<std::string> splits() const override { return {"train", "test"}; }

  std::unique_ptr<Loader> loader(const LoaderSpec& spec) const override {
    if (spec.split != "train" && spec.split != "test")
      throw std::invalid_argument("synthetic has splits train and test, not '" + spec.split + "'");
    return make_tensor_loader(spec.split == "train" ? train_ : test_, spec, norm_, Augment{});
  }

 private:
  std::int64_t classes_;
  std::vector<std::int64_t> shape_;
  std::shared_ptr<const ImageSet> train_, test_;
  Normalize norm_;
};

}  // namespace saq::plugins

SAQ_PLUGIN("synthetic", "1.0.0", "deterministic generated images for tests", reg) {
  reg.add<saq::plugins::Synthetic>("synthetic", "class prototypes plus Gaussian noise; deterministic, for tests");
}

// Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test images, 28×28 grey, 10 classes, read from
// the IDX files (gzipped or not) that Debian's dataset-fashion-mnist installs.
#include <filesystem>

#include <ATen/ATen.h>

#include <saq/sdk.hpp>
#include <saq/tensor_loader.hpp>

#include "idx.hpp"

namespace saq::plugins {

namespace {

namespace fs = std::filesystem;

std::string find_file(const Params& p, const std::string& root, const std::string& stem) {
  for (const auto& name : {stem + ".gz", stem}) {
    fs::path f = fs::path(root) / name;
    if (fs::exists(f)) return f.string();
  }
  p.fail("root", (fs::path(root) / (stem + ".gz")).string() +
                     ": no such file (Fashion-MNIST IDX files are expected there; on Debian: apt install "
                     "dataset-fashion-mnist)");
}

std::shared_ptr<ImageSet> load_split(const Params& p, const std::string& prefix, std::int64_t limit) {
  const std::string root = p.get<std::string>("root");
  const std::string images_path = find_file(p, root, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(p, root, prefix + "-labels-idx1-ubyte");
  at::Tensor images = read_idx_u8(images_path, 3);
  at::Tensor labels = read_idx_u8(labels_path, 1);
  if (images.size(0) != labels.size(0))
    throw std::runtime_error(images_path + " holds " + std::to_string(images.size(0)) + " images but " + labels_path +
                             " holds " + std::to_string(labels.size(0)) + " labels");
  if (images.size(1) != 28 || images.size(2) != 28)
    throw std::runtime_error(images_path + ": images are " + std::to_string(images.size(1)) + "x" +
                             std::to_string(images.size(2)) + ", want 28x28");
  if (labels.max().item<int>() > 9) throw std::runtime_error(labels_path + ": a label is above 9");
  if (limit > 0 && limit < images.size(0)) {
    images = images.slice(0, 0, limit);
    labels = labels.slice(0, 0, limit);
  }
  auto set = std::make_shared<ImageSet>();
  set->images = images.unsqueeze(1).contiguous();
  set->labels = labels.to(at::kLong);
  return set;
}

}  // namespace

class FashionMnist final : public Dataset {
 public:
  // The IDX files are read by the first loader(): validating or reporting a pipeline needs no data.
  FashionMnist(const Params& p, const Context&)
      : splits_([p] {
          return LazySplits::Splits{{"train", load_split(p, "train", p.get<std::int64_t>("train_samples"))},
                                    {"test", load_split(p, "t10k", p.get<std::int64_t>("test_samples"))}};
        }),
        augment_{p.get<bool>("augment") ? p.get<std::int64_t>("pad") : 0, p.get<bool>("augment") && p.get<bool>("flip")} {
    if (p.get<bool>("normalize")) norm_ = {{0.2860}, {0.3530}};
  }

  static Schema schema() {
    Schema s;
    s.string("root", "/usr/share/datasets/fashion-mnist", "folder with the four IDX files (.gz or not)");
    s.boolean("normalize", true, "standardise with the training set's mean 0.2860 and std 0.3530");
    s.boolean("augment", false, "training augmentation: random crop after padding, and flips");
    s.integer("pad", 2, "augmentation: zero padding before the 28x28 random crop").min(0).max(14);
    s.boolean("flip", true, "augmentation: random horizontal flips");
    s.integer("train_samples", 0, "use only the first N training images; 0 = all 60000").min(0);
    s.integer("test_samples", 0, "use only the first N test images; 0 = all 10000").min(0);
    return s;
  }

  DataInfo info() const override {
    return {{1, 28, 28},
            10,
            {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}};
  }

  std::vector<std::string> splits() const override { return {"train", "test"}; }

  std::unique_ptr<Loader> loader(const LoaderSpec& spec) const override {
    if (spec.split != "train" && spec.split != "test")
      throw std::invalid_argument("fashion_mnist has splits train and test, not '" + spec.split + "'");
    return make_tensor_loader(splits_.get(spec.split), spec, norm_, augment_);
  }

 private:
  LazySplits splits_;
  Augment augment_;
  Normalize norm_{{0.0}, {1.0}};
};

}  // namespace saq::plugins

SAQ_PLUGIN("fashion_mnist", "1.0.0", "Fashion-MNIST from its IDX files", reg) {
  reg.add<saq::plugins::FashionMnist>("fashion_mnist", "Fashion-MNIST: 28x28 grey images, 10 classes (IDX files)");
}

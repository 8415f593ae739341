// CIFAR-10 and CIFAR-100 (Krizhevsky 2009): 50,000 training and 10,000 test images, 32×32 RGB, from the python or
// the binary release. Training augmentation and normalisation follow the SAQ paper's code: a random 32×32 crop
// after zero padding by 4, a horizontal flip, and each channel standardised with the training set's statistics.
#include <ATen/ATen.h>

#include <saq/sdk.hpp>
#include <saq/tensor_loader.hpp>

#include "cifar_files.hpp"

namespace saq::plugins {

namespace {

const std::vector<std::string> kCifar10Names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};

// The meta file's names, in label order (alphabetical).
const std::vector<std::string> kCifar100Fine = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
    "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard",
    "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum",
    "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper",
    "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf",
    "woman", "worm"};

const std::vector<std::string> kCifar100Coarse = {
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
    "household_furniture", "insects", "large_carnivores", "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes", "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
    "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2"};

std::shared_ptr<ImageSet> first(const cifar::Split& s, bool coarse, std::int64_t limit) {
  auto set = std::make_shared<ImageSet>();
  set->images = s.images;
  set->labels = coarse ? s.coarse : s.labels;
  if (limit > 0 && limit < set->images.size(0)) {
    set->images = set->images.slice(0, 0, limit).contiguous();
    set->labels = set->labels.slice(0, 0, limit).contiguous();
  }
  return set;
}

/// Reads both splits; every error is the root key's, with the file named.
LazySplits::Splits load(const Params& p, int classes) {
  try {
    const bool coarse = classes == 100 && p.get<std::string>("labels") == "coarse";
    cifar::Files f = cifar::locate(p.get<std::string>("root"), classes, p.get<std::string>("layout"));
    const std::filesystem::path& names_file = coarse ? f.coarse_names : f.names;
    auto names = f.layout == cifar::Layout::Python ? cifar::read_python_names(names_file, classes, coarse)
                                                   : cifar::read_text_names(names_file);
    const std::size_t want = classes == 10 ? 10 : coarse ? 20 : 100;
    if (names.size() != want)
      throw std::runtime_error(names_file.string() + ": lists " + std::to_string(names.size()) + " class names, want " +
                               std::to_string(want));
    auto train = first(cifar::read_split(f.train, f.layout, classes), coarse, p.get<std::int64_t>("train_samples"));
    auto test = first(cifar::read_split(f.test, f.layout, classes), coarse, p.get<std::int64_t>("test_samples"));
    return {{"train", train}, {"test", test}};
  } catch (const std::exception& e) {
    p.fail("root", e.what());
  }
}

}  // namespace

/// CIFAR-`Classes`; the files are read by the first loader(), so validating or reporting needs no data.
template <int Classes>
class Cifar final : public Dataset {
 public:
  Cifar(const Params& p, const Context&)
      : coarse_(Classes == 100 && p.get<std::string>("labels") == "coarse"),
        splits_([p] { return load(p, Classes); }),
        augment_{p.get<bool>("augment") ? p.get<std::int64_t>("pad") : 0,
                 p.get<bool>("augment") && p.get<bool>("flip")} {
    if (!p.get<bool>("normalize")) norm_ = {{0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}};
    else if (Classes == 10) norm_ = {{0.49139968, 0.48215827, 0.44653124}, {0.24703233, 0.24348505, 0.26158768}};
    else norm_ = {{0.50705882, 0.48666667, 0.44078431}, {0.26745098, 0.25568627, 0.27607843}};
  }

  static Schema schema() {
    Schema s;
    const std::string n = std::to_string(Classes);
    s.string("root", "dataset/cifar" + n,
             "folder holding the cifar-" + std::string(Classes == 10 ? "10-batches-py" : "100-python") +
                 " (or binary) release, or that folder itself");
    s.choice("layout", "auto", {"auto", "python", "binary"}, "which release to read; auto: python, else binary");
    if (Classes == 100) s.choice("labels", "fine", {"fine", "coarse"}, "the 100 fine classes or the 20 superclasses");
    s.boolean("normalize", true, "standardise each channel with the CIFAR-" + n + " training set's mean and std");
    s.boolean("augment", true, "training augmentation: random crop after zero padding, and flips");
    s.integer("pad", 4, "augmentation: zero padding before the 32x32 random crop").min(0).max(16);
    s.boolean("flip", true, "augmentation: random horizontal flips");
    s.integer("train_samples", 0, "use only the first N training images; 0 = all 50000").min(0);
    s.integer("test_samples", 0, "use only the first N test images; 0 = all 10000").min(0);
    return s;
  }

  DataInfo info() const override {
    if (Classes == 10) return {{3, 32, 32}, 10, kCifar10Names};
    return coarse_ ? DataInfo{{3, 32, 32}, 20, kCifar100Coarse} : DataInfo{{3, 32, 32}, 100, kCifar100Fine};
  }

  std::vector<std::string> splits() const override { return {"train", "test"}; }

  std::unique_ptr<Loader> loader(const LoaderSpec& spec) const override {
    if (spec.split != "train" && spec.split != "test")
      throw std::invalid_argument("cifar" + std::to_string(Classes) + " has splits train and test, not '" +
                                  spec.split + "'");
    return make_tensor_loader(splits_.get(spec.split), spec, norm_, augment_);
  }

 private:
  bool coarse_;
  LazySplits splits_;
  Augment augment_;
  Normalize norm_;
};

}  // namespace saq::plugins

SAQ_PLUGIN("cifar", "1.0.0", "CIFAR-10 and CIFAR-100, python or binary release", reg) {
  reg.add<saq::plugins::Cifar<10>>("cifar10", "CIFAR-10: 32x32 RGB images, 10 classes (python or binary release)");
  reg.add<saq::plugins::Cifar<100>>("cifar100", "CIFAR-100: 32x32 RGB images, 100 classes (python or binary release)");
}

// ImageNet (ILSVRC-2012, 1000 classes) and the SAQ paper's ImageNet-100 from class folders of JPEG files:
// root/train/<wnid>/*.JPEG and root/val/<wnid>/*.JPEG, the layout the paper's README asks for. Training
// samples get torchvision's RandomResizedCrop and a flip, evaluation samples Resize + CenterCrop; both are
// decoded on worker threads (saq/prefetch_loader.hpp). Nothing touches the data until the first loader().
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <saq/prefetch_loader.hpp>
#include <saq/sdk.hpp>

#include "image_folder.hpp"
#include "imagenet100_classes.hpp"
#include "jpeg.hpp"
#include "transforms.hpp"

namespace saq::plugins::imagenet {

namespace {

struct Transform {
  bool train = true;
  int size = 224, resize = 256;
  double scale_lo = 0.08, scale_hi = 1.0, ratio_lo = 0.75, ratio_hi = 4.0 / 3.0;
  bool flip = true;
};

/// One split's files with one transform; read() runs on the loader's workers, on thread-local buffers.
class FolderSource final : public SampleSource {
 public:
  FolderSource(std::shared_ptr<const ImageFolder> folder, Transform t) : folder_(std::move(folder)), t_(t) {}

  std::int64_t size() const override { return folder_->size(); }
  std::vector<std::int64_t> shape() const override { return {3, t_.size, t_.size}; }
  std::int64_t label(std::int64_t index) const override { return folder_->labels[index]; }
  std::string name(std::int64_t index) const override { return folder_->path(index); }

  void read(std::int64_t index, SplitMix& rng, std::uint8_t* out) const override {
    thread_local std::vector<std::uint8_t> data;
    thread_local RgbImage image;
    read_file(folder_->path(index), data);
    int width = 0, height = 0;
    jpeg_size(data, width, height);
    // The geometry is drawn on full-size coordinates, so a sample is the same whatever scale decodes it.
    Box box, clip{0, 0, static_cast<double>(width), static_cast<double>(height)};
    bool flip = false;
    if (t_.train) {
      Crop c = random_resized_crop(width, height, t_.scale_lo, t_.scale_hi, t_.ratio_lo, t_.ratio_hi, rng);
      flip = t_.flip && (rng.next() & 1);
      box = clip = {static_cast<double>(c.left), static_cast<double>(c.top), static_cast<double>(c.left + c.width),
                    static_cast<double>(c.top + c.height)};
    } else {
      box = resize_center_crop(width, height, t_.resize, t_.size);
    }
    decode_jpeg(data, pick_scale(width, height, box.x1 - box.x0, box.y1 - box.y0, t_.size, t_.size), image);
    const double sx = static_cast<double>(image.width) / width, sy = static_cast<double>(image.height) / height;
    auto scaled = [&](const Box& b) { return Box{b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy}; };
    resample(image.pixels.data(), image.width, image.height, scaled(box), scaled(clip), t_.size, t_.size, flip, out);
  }

 private:
  std::shared_ptr<const ImageFolder> folder_;
  Transform t_;
};

std::string read_text(const Params& p, const std::string& key) {
  const std::string file = p.get<std::string>(key);
  std::ifstream in(file);
  if (!in) p.fail(key, file + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

/// Both data sets: `wanted` (sorted wnids) restricts the classes; empty = every folder, `num_classes` of them.
class ImageNetBase : public Dataset {
 public:
  ImageNetBase(const Params& p, const Context& ctx, std::string name, std::vector<std::string> wanted,
               std::int64_t num_classes)
      : name_(std::move(name)), root_(p.get<std::string>("root")), wanted_(std::move(wanted)),
        num_classes_(num_classes), log_(ctx.log) {
    dirs_ = {{"train", p.get<std::string>("train_dir")}, {"test", p.get<std::string>("test_dir")}};
    train_.size = eval_.size = static_cast<int>(p.get<std::int64_t>("image_size"));
    eval_.resize = static_cast<int>(p.get<std::int64_t>("resize_size"));
    if (eval_.resize < eval_.size)
      p.fail("resize_size",
             "must be >= image_size (" + std::to_string(eval_.size) + "), got " + std::to_string(eval_.resize));
    eval_.train = false;
    auto pair = [&](const std::string& key) {
      auto v = p.get<std::vector<double>>(key);
      if (v.size() != 2 || v[0] > v[1]) p.fail(key, "must be [lo, hi] with lo <= hi");
      return v;
    };
    auto scale = pair("scale"), ratio = pair("ratio");
    train_.scale_lo = scale[0], train_.scale_hi = scale[1], train_.ratio_lo = ratio[0], train_.ratio_hi = ratio[1];
    train_.flip = p.get<bool>("flip");
    norm_ = {p.get<std::vector<double>>("mean"), p.get<std::vector<double>>("std")};
    if (norm_.mean.size() != 3) p.fail("mean", "must hold 3 values (R, G, B)");
    if (norm_.std.size() != 3) p.fail("std", "must hold 3 values (R, G, B)");
    for (double s : norm_.std)
      if (s <= 0) p.fail("std", "values must be > 0");
    options_.workers = p.get<std::int64_t>("workers");
    options_.prefetch = p.get<std::int64_t>("prefetch");
    options_.skip_bad = p.get<std::string>("bad_files") == "skip";
  }

  /// The keys both share.
  static Schema common_schema() {
    Schema s;
    s.string("root", "", "folder holding <train_dir>/<wnid>/*.JPEG and <test_dir>/<wnid>/*.JPEG").required();
    s.string("train_dir", "train", "training split folder under root");
    s.string("test_dir", "val", "evaluation split folder under root (the 'test' split)");
    s.integer("image_size", 224, "side of the square crop given to the model").min(8).max(1024);
    s.integer("resize_size", 256, "evaluation: shorter side resized to this before the center crop").min(8).max(2048);
    s.reals("scale", {0.08, 1.0}, "RandomResizedCrop area fraction range (the paper: [0.2, 1] for MobileNetV2)")
        .above(0).max(1);
    s.reals("ratio", {3.0 / 4.0, 4.0 / 3.0}, "RandomResizedCrop aspect ratio range").above(0);
    s.boolean("flip", true, "training: random horizontal flips");
    s.reals("mean", {0.485, 0.456, 0.406}, "per-channel mean of pixel/255");
    s.reals("std", {0.229, 0.224, 0.225}, "per-channel std of pixel/255");
    s.integer("workers", 0, "decoding threads; 0 = one per hardware thread (they sleep when ahead)").min(0).max(256);
    s.integer("prefetch", 0, "batches decoded ahead (at least workers); 0 = 2 x workers").min(0).max(1024);
    s.choice("bad_files", "error", {"error", "skip"},
             "an unreadable or truncated JPEG: stop naming it, or leave it out of its batch with a warning");
    return s;
  }

  DataInfo info() const override { return {{3, train_.size, train_.size}, num_classes_, wanted_}; }
  std::vector<std::string> splits() const override { return {"train", "test"}; }

  std::unique_ptr<Loader> loader(const LoaderSpec& spec) const override {
    if (!dirs_.count(spec.split))
      throw std::invalid_argument(name_ + " has splits train and test, not '" + spec.split + "'");
    PrefetchOptions options = options_;
    if (options.skip_bad) {
      auto count = std::make_shared<std::atomic<std::int64_t>>(0);
      options.on_skip = [count, log = log_, name = name_](const std::string& message) {
        const std::int64_t n = ++*count;
        if (log) log->warn(name + ": skipped " + message + " (" + std::to_string(n) + " bad files in this loader)");
      };
    }
    auto source = std::make_shared<FolderSource>(scanned(spec.split), spec.train ? train_ : eval_);
    return make_prefetch_loader(std::move(source), spec, norm_, options);
  }

 private:
  /// The split's files, scanned at its first use.
  std::shared_ptr<const ImageFolder> scanned(const std::string& split) const {
    std::lock_guard<std::mutex> lk(mu_);
    auto& cached = folders_[split];
    if (cached) return cached;
    const std::string dir = (std::filesystem::path(root_) / dirs_.at(split)).string();
    ImageFolder f;
    try {
      f = scan_image_folder(dir, wanted_, num_classes_);
    } catch (const std::exception& e) {
      throw std::invalid_argument(name_ + ": " + e.what() + " (the layout is root/" + dirs_.at("train") +
                                  "/<wnid>/*.JPEG and root/" + dirs_.at("test") + "/<wnid>/*.JPEG)");
    }
    for (const auto& [other, folder] : folders_)
      if (folder && folder->classes != f.classes)
        throw std::invalid_argument(name_ + ": the class folders of " + dir + " differ from those of " + folder->dir);
    if (log_)
      log_->info(name_ + ": " + dir + ": " + std::to_string(f.size()) + " images in " +
                 std::to_string(f.classes.size()) + " classes" +
                 (f.ignored ? " (" + std::to_string(f.ignored) + " files ignored: not .JPEG/.jpg/.jpeg)" : ""));
    cached = std::make_shared<const ImageFolder>(std::move(f));
    return cached;
  }

  std::string name_, root_;
  std::map<std::string, std::string> dirs_;  // split -> folder under root
  std::vector<std::string> wanted_;
  std::int64_t num_classes_;
  const Log* log_;
  Transform train_, eval_;
  Normalize norm_;
  PrefetchOptions options_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const ImageFolder>> folders_;
};

class ImageNet final : public ImageNetBase {
 public:
  ImageNet(const Params& p, const Context& ctx)
      : ImageNetBase(p, ctx, "imagenet", {}, p.get<std::int64_t>("num_classes")) {}

  static Schema schema() {
    Schema s = common_schema();
    s.integer("num_classes", 1000, "class folders each split must hold (any ImageFolder tree works)").min(2);
    return s;
  }
};

class ImageNet100 final : public ImageNetBase {
 public:
  ImageNet100(const Params& p, const Context& ctx) : ImageNet100(p, ctx, classes(p)) {}

  static Schema schema() {
    Schema s = common_schema();
    s.string("classes_file", "", "wnids to keep, whitespace-separated; \"\" = the paper's sampled_classes.txt");
    return s;
  }

 private:
  ImageNet100(const Params& p, const Context& ctx, std::vector<std::string> wanted)
      : ImageNetBase(p, ctx, "imagenet100", wanted, static_cast<std::int64_t>(wanted.size())) {}

  /// The list is configuration, not data: it is read here, so info() knows the class count.
  static std::vector<std::string> classes(const Params& p) {
    if (p.get<std::string>("classes_file").empty())
      return parse_class_list(kImagenet100Classes, "imagenet100_classes.txt");
    const std::string file = p.get<std::string>("classes_file");
    const std::string text = read_text(p, "classes_file");
    try {
      return parse_class_list(text, file);
    } catch (const std::invalid_argument& e) {
      p.fail("classes_file", e.what());
    }
  }
};

}  // namespace saq::plugins::imagenet

SAQ_PLUGIN("imagenet", "1.0.0", "ImageNet and ImageNet-100 from class folders of JPEG files", reg) {
  reg.add<saq::plugins::imagenet::ImageNet>(
      "imagenet", "ImageNet class folders (root/train, root/val), JPEG decoded on worker threads; 1000 classes");
  reg.add<saq::plugins::imagenet::ImageNet100>(
      "imagenet100", "the SAQ paper's ImageNet-100: the imagenet reader restricted to its 100 listed classes");
}

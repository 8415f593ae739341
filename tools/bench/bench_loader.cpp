// Data loading speed. On an ImageNet-style tree: libjpeg-turbo's raw full-size decode rate (file read + decode
// to RGB, images/s over W threads), the imagenet training pipeline's rate with W workers (RandomResizedCrop +
// flip + normalise, batches handed out in order), their ratio (target >= 0.7), and the evaluation pipeline's
// rate (Resize 256 + CenterCrop 224). Files are read once before timing: the numbers are with the page cache warm.
//
//   build/tools/bench_loader                                   # a synthetic tree of 1024 JPEGs in a temp dir
//   build/tools/bench_loader imagenet ROOT [IMAGES] [WORKERS]  # ROOT/train, ROOT/val; default 1024, all cores
//   build/tools/bench_loader make-tree DIR [IMAGES] [CLASSES]  # writes the synthetic tree (train and val)
//   build/tools/bench_loader pipeline PIPELINE.toml [BATCHES]  # any pipeline's [data]: train and test loaders
//
// The synthetic images are 500x375 (some 375x500, 500x333, 640x480) photos-like fields: smooth colour
// gradients plus texture noise, JPEG quality 90, about the size and entropy of ImageNet's files.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

#include <saq/random.hpp>

#include "image_folder.hpp"
#include "jpeg.hpp"
#include "pipeline.hpp"
#include "plugin_host.hpp"
#include "registry.hpp"

using namespace saq;
namespace fs = std::filesystem;
namespace inet = saq::plugins::imagenet;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// CPU seconds of the whole process so far (every thread): rates per CPU-second hold still when other
/// processes share the cores, where wall-clock rates do not.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/// Images per wall-clock second and per CPU-second.
struct Rate {
  double wall = 0, cpu = 0;
};

std::ostream& operator<<(std::ostream& o, const Rate& r) {
  return o << r.wall << " images/s (" << r.cpu << " per CPU-second)";
}

inet::RgbImage synthetic_image(std::uint64_t seed) {
  static const int sizes[][2] = {{500, 375}, {500, 375}, {500, 375}, {375, 500}, {500, 333}, {640, 480}};
  SplitMix rng(seed);
  const auto* s = sizes[rng.below(6)];
  inet::RgbImage im;
  im.width = s[0], im.height = s[1];
  im.pixels.resize(static_cast<std::size_t>(im.width) * im.height * 3);
  double base[3], dx[3], dy[3];
  for (int c = 0; c < 3; ++c) {
    base[c] = 255 * rng.uniform();
    dx[c] = 2 * rng.uniform() - 1;
    dy[c] = 2 * rng.uniform() - 1;
  }
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      const double texture = 24 * std::sin(0.05 * x * (1 + y % 7)) + 40 * (rng.uniform() - 0.5);
      for (int c = 0; c < 3; ++c) {
        double v = base[c] + 0.4 * dx[c] * x + 0.4 * dy[c] * y + texture;
        v = std::fmod(std::fabs(v), 510.0);  // fold into [0, 255]: gradients bounce instead of saturating
        im.pixels[(static_cast<std::size_t>(y) * im.width + x) * 3 + c] =
            static_cast<std::uint8_t>(v > 255 ? 510 - v : v);
      }
    }
  return im;
}

/// DIR/train/cNNN/iNNNNN.JPEG and DIR/val/... (a quarter as many), on `threads` threads.
void make_tree(const fs::path& dir, std::int64_t images, std::int64_t classes, int threads) {
  std::atomic<std::int64_t> next{0};
  const std::int64_t val = std::max<std::int64_t>(classes, images / 4), total = images + val;
  auto work = [&] {
    for (std::int64_t i; (i = next++) < total;) {
      const bool train = i < images;
      const std::int64_t k = train ? i : i - images;
      char cls[32], name[32];
      std::snprintf(cls, sizeof cls, "c%03lld", static_cast<long long>(k % classes));
      std::snprintf(name, sizeof name, "i%06lld.JPEG", static_cast<long long>(k));
      fs::path folder = dir / (train ? "train" : "val") / cls;
      fs::create_directories(folder);
      auto bytes = inet::encode_jpeg(synthetic_image(static_cast<std::uint64_t>(i) + 1), 90);
      FILE* f = std::fopen((folder / name).c_str(), "wb");
      if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size())
        throw std::runtime_error((folder / name).string() + ": cannot write");
      std::fclose(f);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
}

/// Images/s of reading and fully decoding `files` (the first `n`) on `threads` threads.
Rate raw_decode_rate(const inet::ImageFolder& folder, std::int64_t n, int threads) {
  std::atomic<std::int64_t> next{0};
  auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      std::vector<std::uint8_t> data;
      inet::RgbImage image;
      for (std::int64_t i; (i = next++) < n;) {
        inet::read_file(folder.path(i), data);
        inet::decode_jpeg(data, {1, 1}, image);
      }
    });
  for (auto& t : pool) t.join();
  return {static_cast<double>(n) / seconds_since(t0), static_cast<double>(n) / (cpu_seconds() - c0)};
}

/// Images/s of the first `batches` batches (0 = the epoch) of a loader, from start_epoch to the last next().
Rate loader_rate(const Dataset& data, const std::string& split, bool train, std::int64_t batch_size,
                   std::int64_t batches) {
  LoaderSpec spec;
  spec.split = split;
  spec.train = train;
  spec.batch_size = batch_size;
  auto loader = data.loader(spec);  // the folder scan happens here, outside the timing
  std::int64_t images = 0, k = 0;
  Batch b;
  auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  loader->start_epoch(0);
  while ((batches == 0 || k < batches) && loader->next(b)) images += b.y.size(0), ++k;
  const double wall = seconds_since(t0), cpu = cpu_seconds() - c0;
  loader.reset();  // joins the workers
  return {static_cast<double>(images) / wall, static_cast<double>(images) / cpu};
}

std::shared_ptr<Dataset> dataset(const host::Registry& reg, const host::Pipeline& p) {
  Context ctx;
  return reg.make<Dataset>(reg.require(Kind::Dataset, p.data->use(), p.file), *p.data, ctx);
}

/// Removes a temporary file or folder, also when the benchmark fails.
struct Cleanup {
  fs::path path;
  ~Cleanup() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

host::Registry plugins() {
  host::Registry reg;
  host::load_plugins(reg, host::plugin_search_path({SAQ_BUILD_PLUGIN_DIR}));
  return reg;
}

int bench_imagenet(const fs::path& root, std::int64_t images, int workers) {
  inet::ImageFolder train = inet::scan_image_folder((root / "train").string(), {}, 0);
  images = std::min(images, train.size());
  std::vector<std::uint8_t> data;
  for (std::int64_t i = 0; i < images; ++i) inet::read_file(train.path(i), data);  // into the page cache
  const Rate raw = raw_decode_rate(train, images, workers);

  const fs::path toml = fs::temp_directory_path() / ("bench_loader_" + std::to_string(::getpid()) + ".toml");
  Cleanup remove_toml{toml};
  {
    std::ofstream out(toml);
    out << "[data]\nuse = \"imagenet\"\nroot = \"" << root.string() << "\"\nnum_classes = " << train.classes.size()
        << "\nworkers = " << workers << "\nbatch_size = 64\neval_batch_size = 64\n\n[model]\nuse = \"small_cnn\"\n\n"
        << "[[stage]]\nuse = \"eval\"\n";
  }
  host::Registry reg = plugins();
  host::Pipeline p = host::load_pipeline(toml.string(), {}, reg);
  auto ds = dataset(reg, p);
  const std::int64_t batches = (images + 63) / 64;
  const Rate train_rate = loader_rate(*ds, "train", true, 64, batches);
  const Rate eval_rate = loader_rate(*ds, "test", false, 64, batches);
  std::cout << "tree " << root.string() << ": " << train.size() << " training images in " << train.classes.size()
            << " classes; timing " << images << " images, " << workers << " threads, batch 64\n"
            << "raw decode (libjpeg-turbo, full size, RGB): " << raw << "\n"
            << "train pipeline (RandomResizedCrop 224 + flip + normalise): " << train_rate << "\n"
            << "ratio train/raw: " << train_rate.wall / raw.wall << " (target >= 0.7; per CPU-second "
            << train_rate.cpu / raw.cpu << ")\n"
            << "eval pipeline (Resize 256 + CenterCrop 224 + normalise): " << eval_rate << "\n";
  return 0;
}

int bench_pipeline(const std::string& file, std::int64_t batches) {
  host::Registry reg = plugins();
  host::Pipeline p = host::load_pipeline(file, {}, reg);
  auto ds = dataset(reg, p);
  const auto global = p.data->get<std::int64_t>("global_batch_size");  // one process: the whole global batch
  const auto bs = global > 0 ? global : p.data->get<std::int64_t>("batch_size"), ebs = p.data->get<std::int64_t>("eval_batch_size");
  std::cout << "pipeline " << file << " [data] use = \"" << p.data->use() << "\", " << batches << " batches\n"
            << "train loader: " << loader_rate(*ds, "train", true, bs, batches) << " (batch " << bs << ")\n"
            << "test loader: " << loader_rate(*ds, "test", false, ebs, batches) << " (batch " << ebs << ")\n";
  return 0;
}

int bench(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  auto arg = [&](int i, std::int64_t fallback) { return argc > i ? std::stoll(argv[i]) : fallback; };
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (mode == "make-tree" && argc > 2) {
    make_tree(argv[2], arg(3, 1024), arg(4, 10), cores);
    return 0;
  }
  if (mode == "imagenet" && argc > 2) return bench_imagenet(argv[2], arg(3, 1024), static_cast<int>(arg(4, cores)));
  if (mode == "pipeline" && argc > 2) return bench_pipeline(argv[2], arg(3, 20));
  if (!mode.empty()) {
    std::cerr << "usage: bench_loader [imagenet ROOT [IMAGES] [WORKERS] | make-tree DIR [IMAGES] [CLASSES] | "
                 "pipeline PIPELINE.toml [BATCHES]]\n";
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / ("bench_loader_tree_" + std::to_string(::getpid()));
  Cleanup cleanup{dir};
  auto t0 = Clock::now();
  make_tree(dir, 1024, 10, cores);
  std::cout << "synthetic tree in " << dir.string() << " (" << seconds_since(t0) << " s to write)\n";
  return bench_imagenet(dir, 1024, cores);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return bench(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_loader: " << e.what() << "\n";
    return 2;
  }
}

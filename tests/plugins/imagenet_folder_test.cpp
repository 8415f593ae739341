// imagenet and imagenet100 on small JPEG trees written here: class indices follow sorted folders, solid
// colours come out as the normalised colour, the data stays untouched until the first loader, and every
// broken tree or file is named.
#include "imagenet_tree.hpp"

#include <saq/random.hpp>

#include "host/saqhost_cli.hpp"

using namespace saq;
namespace fs = std::filesystem;

namespace {

const double kMean[3] = {0.485, 0.456, 0.406}, kStd[3] = {0.229, 0.224, 0.225};

std::shared_ptr<Dataset> dataset(const test::TempDir& dir, const std::string& data) {
  return test::make_dataset(test::eval_pipeline(dir, data));
}

LoaderSpec eval_spec(const std::string& split, std::int64_t batch_size = 5) {
  LoaderSpec spec;
  spec.split = split;
  spec.train = false;
  spec.batch_size = batch_size;
  return spec;
}

std::string loader_error(const Dataset& ds, const std::string& split = "train") {
  return test::error_of([&] {
    auto loader = ds.loader(eval_spec(split));
    for (Batch b; loader->next(b);) {
    }
  });
}

}  // namespace

TEST_CASE("imagenet: labels follow the sorted class folders; a solid image gives its normalised colour") {
  test::TempDir dir;
  test::write_tiny_tree(dir / "data");
  auto ds = dataset(dir, test::tiny_data(dir / "data"));
  for (const char* split : {"train", "test"}) {
    CAPTURE(split);
    Batch all = test::whole_split(*ds, split);
    REQUIRE(all.y.size(0) == 12);  // the .txt files are not images
    CHECK(all.x.sizes().vec() == std::vector<std::int64_t>{12, 3, 16, 16});
    // n001 -> 0, n002 -> 1, n003 -> 2, images sorted within a class
    CHECK(at::equal(all.y, at::tensor(std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2})));
    for (std::int64_t i = 0; i < 12; ++i) {
      const auto& cls = test::kTinyClasses[(all.y[i].item<std::int64_t>() + 1) % 3];  // n001 is written second
      const int rgb[3] = {cls.colour.r, cls.colour.g, cls.colour.b};
      for (int c = 0; c < 3; ++c) {
        // JPEG's YCbCr round trip moves a solid colour by at most 3 levels
        const double want = (rgb[c] / 255.0 - kMean[c]) / kStd[c], tolerance = 3 / 255.0 / kStd[c];
        at::Tensor plane = all.x[i][c];
        CHECK(plane.max().item<double>() <= want + tolerance);
        CHECK(plane.min().item<double>() >= want - tolerance);
      }
    }
  }
}

TEST_CASE("imagenet: info and report need no data; the folder scan waits for the first loader") {
  test::TempDir dir;
  auto ds = dataset(dir, "use = \"imagenet\"\nroot = \"" + (dir / "absent").string() + "\"");
  DataInfo info = ds->info();
  CHECK(info.input_shape == std::vector<std::int64_t>{3, 224, 224});
  CHECK(info.num_classes == 1000);
  CHECK(ds->splits() == std::vector<std::string>{"train", "test"});
  std::string msg = loader_error(*ds);
  CHECK(test::contains(msg, "imagenet: " + (dir / "absent" / "train").string() + ": no such folder"));
  CHECK(test::contains(loader_error(*ds, "test"), (dir / "absent" / "val").string() + ": no such folder"));
  CHECK(test::contains(test::error_of([&] { ds->loader(eval_spec("validation")); }), "not 'validation'"));

  auto ds100 = dataset(dir, "use = \"imagenet100\"\nroot = \"" + (dir / "absent").string() + "\"");
  info = ds100->info();
  CHECK(info.num_classes == 100);
  REQUIRE(info.class_names.size() == 100);
  CHECK(info.class_names.front() == "n01484850");  // the smallest wnid of the paper's list
  CHECK(info.class_names.back() == "n12057211");
  CHECK(std::is_sorted(info.class_names.begin(), info.class_names.end()));
}

TEST_CASE("imagenet: saqhost report works without the data; run exits 2 naming the missing folder") {
  test::TempDir dir;
  const std::string text = "[run]\nname = \"inet\"\nout_dir = \"" + (dir / "runs").string() +
                           "\"\n\n[data]\nuse = \"imagenet\"\nroot = \"" + (dir / "absent").string() +
                           "\"\nimage_size = 32\nresize_size = 32\neval_batch_size = 2\n\n[model]\nuse = "
                           "\"small_cnn\"\n\n[[stage]]\nuse = \"eval\"\n";
  test::CliResult report = test::saqhost_on(dir, text, "report");
  CHECK(report.status == 0);
  test::CliResult run = test::saqhost_on(dir, text, "run");
  CHECK(run.status == 2);
  CHECK(run.has((dir / "absent" / "val").string() + ": no such folder"));
}

TEST_CASE("imagenet: a wrong number of class folders, or splits with different classes, are refused") {
  test::TempDir dir;
  test::write_tiny_tree(dir / "data");
  auto four = dataset(dir, test::tiny_data(dir / "data", "", 4));
  CHECK(test::contains(loader_error(*four), (dir / "data" / "train").string() + ": holds 3 class folders, want 4"));
  fs::rename(dir / "data" / "val" / "n002", dir / "data" / "val" / "n000");
  auto ds = dataset(dir, test::tiny_data(dir / "data"));
  CHECK(loader_error(*ds, "train").empty());
  CHECK(test::contains(loader_error(*ds, "test"), "the class folders of " + (dir / "data" / "val").string() +
                                                      " differ from those of " + (dir / "data" / "train").string()));
  fs::create_directories(dir / "data" / "train" / "n004");  // a class without images
  fs::rename(dir / "data" / "train" / "n003", dir / "data" / "n003");
  auto empty_class = dataset(dir, test::tiny_data(dir / "data"));
  CHECK(test::contains(loader_error(*empty_class), (dir / "data" / "train" / "n004").string() + ": no .JPEG"));
}

TEST_CASE("imagenet: a truncated or non-JPEG file is named; bad_files = \"skip\" leaves it out") {
  test::TempDir dir;
  test::write_tiny_tree(dir / "data");
  const fs::path cut = dir / "data" / "val" / "n002" / "b.jpg", png = dir / "data" / "val" / "n003" / "c.jpeg";
  plugins::imagenet::RgbImage noise = test::solid(64, 48, {0, 0, 0});
  saq::SplitMix rng(5);
  for (auto& p : noise.pixels) p = static_cast<std::uint8_t>(rng.below(256));  // mostly entropy-coded data
  auto bytes = plugins::imagenet::encode_jpeg(noise, 95);
  bytes.resize(bytes.size() * 2 / 3);
  test::write_bytes(cut, bytes);
  test::write_bytes(png, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13});
  std::string msg = loader_error(*dataset(dir, test::tiny_data(dir / "data")), "test");
  INFO(msg);
  CHECK(test::contains(msg, cut.string() + ": corrupt or truncated JPEG: "));
  CHECK(test::contains(msg, "remature end"));
  fs::remove(cut);  // a fresh reader: the first one listed the file
  CHECK(test::contains(loader_error(*dataset(dir, test::tiny_data(dir / "data")), "test"),
                       png.string() + ": not a readable JPEG: "));

  test::write_bytes(cut, bytes);
  auto skipping = dataset(dir, test::tiny_data(dir / "data", "bad_files = \"skip\"\n"));
  Batch all = test::whole_split(*skipping, "test");
  CHECK(at::equal(all.y, at::tensor(std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1, 2, 2, 2})));
}

TEST_CASE("imagenet100: only the listed classes, indexed in sorted order; missing ones are listed") {
  test::TempDir dir;
  test::write_tiny_tree(dir / "data");
  test::write_file(dir / "two.txt", "# two of the three\nn003\n  n002  # trailing comment\n");
  const std::string root = "root = \"" + (dir / "data").string() + "\"\n";
  auto ds = dataset(dir, "use = \"imagenet100\"\n" + root + "image_size = 16\nresize_size = 16\nclasses_file = \"" +
                             (dir / "two.txt").string() + "\"");
  CHECK(ds->info().num_classes == 2);
  CHECK(ds->info().class_names == std::vector<std::string>{"n002", "n003"});
  Batch all = test::whole_split(*ds, "train");
  CHECK(at::equal(all.y, at::tensor(std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1, 1})));
  // n002 is blue, n003 red: the first image's blue channel is well above its red one
  CHECK(all.x[0][2].mean().item<double>() > all.x[0][0].mean().item<double>() + 1);
  CHECK(all.x[4][0].mean().item<double>() > all.x[4][2].mean().item<double>() + 1);

  test::write_file(dir / "four.txt", "n001 n009 n003 n007");
  auto missing =
      dataset(dir, "use = \"imagenet100\"\n" + root + "classes_file = \"" + (dir / "four.txt").string() + "\"");
  CHECK(test::contains(loader_error(*missing), (dir / "data" / "train").string() +
                                                   ": lacks 2 of the 4 listed classes: n007, n009"));
  // The paper's list against this tree: 100 missing, the first five (sorted) named.
  auto paper = dataset(dir, "use = \"imagenet100\"\n" + root);
  CHECK(test::contains(loader_error(*paper), "lacks 100 of the 100 listed classes: n01484850, n01622779, n01729322, "
                                             "n01737021, n01751748 and 95 more"));

  test::write_file(dir / "dup.txt", "n001 n002 n001");
  std::string dup = test::error_of([&] {
    dataset(dir, "use = \"imagenet100\"\nroot = \"x\"\nclasses_file = \"" + (dir / "dup.txt").string() + "\"");
  });
  CHECK(test::contains(dup, "classes_file: " + (dir / "dup.txt").string() + ": lists n001 twice"));
}

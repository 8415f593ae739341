// cifar10 / cifar100: the committed python fixture (written by numpy + pickle, tests/data/cifar) and binary
// releases written here give back their exact pixels, labels and class names; files are read lazily; missing,
// truncated and corrupt files are errors naming the file.
#include "plugin_test.hpp"

#include <filesystem>

#include "../../plugins/dataset/cifar/cifar_files.hpp"
#include "cifar_writer.hpp"

using namespace saq;
namespace fs = std::filesystem;

namespace {

fs::path fixture_root() { return fs::path(test::env("SAQ_SOURCE_ROOT")) / "tests/data/cifar"; }

std::shared_ptr<Dataset> cifar(const test::TempDir& dir, const std::string& use, const fs::path& root,
                               const std::string& extra = "") {
  return test::make_dataset(test::eval_pipeline(
      dir, "use = \"" + use + "\"\nnormalize = false\nroot = \"" + root.string() + "\"\n" + extra));
}

/// Pixels of a normalize = false batch back as bytes.
/// Images [first, first + n) of make_fixture.py and cifar_writer.hpp: byte j of image i is (7 i + 13 j) % 256.
at::Tensor pixels(std::int64_t first, std::int64_t n) {
  at::Tensor i = at::arange(first, first + n, at::kLong).mul(7).view({n, 1});
  return (i + at::arange(3072, at::kLong).mul(13).view({1, 3072})).remainder(256).to(at::kByte).view({n, 3, 32, 32});
}

at::Tensor longs(std::vector<std::int64_t> v) { return at::tensor(v); }

std::string load_error(const std::shared_ptr<Dataset>& ds) {
  return test::error_of([&] { test::whole_split(*ds, "train"); });
}

}  // namespace

TEST_CASE("cifar100: the python fixture gives its pixels, fine and coarse labels, from the folder or its parent") {
  for (const fs::path& root : {fixture_root(), fixture_root() / "cifar-100-python"}) {
    CAPTURE(root);
    test::TempDir dir;
    auto ds = cifar(dir, "cifar100", root);
    Batch train = test::whole_split(*ds, "train"), t = test::whole_split(*ds, "test");
    CHECK(at::equal(test::as_bytes(train.x), pixels(0, 10)));
    CHECK(at::equal(test::as_bytes(t.x), pixels(0, 4)));
    CHECK(at::equal(train.y, longs({0, 37, 74, 11, 48, 85, 22, 59, 96, 33})));  // (37 i) % 100
    CHECK(at::equal(t.y, longs({99, 98, 97, 96})));
    auto coarse = cifar(dir, "cifar100", root, "labels = \"coarse\"");
    CHECK(at::equal(test::whole_split(*coarse, "train").y, longs({0, 3, 6, 9, 12, 15, 18, 1, 4, 7})));
    CHECK(coarse->info().num_classes == 20);
  }
}

TEST_CASE("cifar100: the meta pickle's class names, and the names info() gives before any file is read") {
  const fs::path meta = fixture_root() / "cifar-100-python/meta";
  auto fine = plugins::cifar::read_python_names(meta, 100, false);
  auto coarse = plugins::cifar::read_python_names(meta, 100, true);
  REQUIRE(fine.size() == 100);
  REQUIRE(coarse.size() == 20);
  CHECK(fine[0] == "apple");
  CHECK(fine[99] == "worm");
  CHECK(coarse[12] == "medium_mammals");
  test::TempDir dir;
  DataInfo info = cifar(dir, "cifar100", dir / "absent")->info();
  CHECK(info.input_shape == std::vector<std::int64_t>{3, 32, 32});
  CHECK(info.class_names == fine);
  // Python 2's pickle of the same batch (BINSTRING everywhere) reads the same.
  auto py2 = plugins::cifar::read_python_batch(fixture_root() / "train_py2", 100);
  CHECK(at::equal(py2.images, pixels(0, 10)));
  CHECK(at::equal(py2.coarse, longs({0, 3, 6, 9, 12, 15, 18, 1, 4, 7})));
}

TEST_CASE("cifar: the binary releases of CIFAR-100 and CIFAR-10, written here") {
  test::TempDir dir;
  const fs::path b100 = dir / "cifar-100-binary";
  fs::create_directories(b100);
  test::write_file(b100 / "train.bin", test::cifar_binary_batch(100, 0, 6));
  test::write_file(b100 / "test.bin", test::cifar_binary_batch(100, 6, 3));
  std::string names;
  for (int k = 0; k < 100; ++k) names += "c" + std::to_string(k) + "\n";
  test::write_file(b100 / "fine_label_names.txt", names);
  test::write_file(b100 / "coarse_label_names.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\no\np\nq\nr\ns\nt\n\n");
  auto ds = cifar(dir, "cifar100", dir.path(), "layout = \"binary\"");
  Batch t = test::whole_split(*ds, "test");
  CHECK(at::equal(test::as_bytes(t.x), pixels(6, 3)));
  CHECK(at::equal(t.y, longs({18, 21, 24})));  // (3 i) % 100
  CHECK(at::equal(test::whole_split(*cifar(dir, "cifar100", b100, "labels = \"coarse\""), "train").y,
                  longs({0, 1, 2, 3, 4, 5})));
  CHECK(plugins::cifar::read_text_names(b100 / "coarse_label_names.txt").size() == 20);

  const fs::path b10 = dir / "cifar-10-batches-bin";
  fs::create_directories(b10);
  for (int k = 1; k <= 5; ++k)
    test::write_file(b10 / ("data_batch_" + std::to_string(k) + ".bin"), test::cifar_binary_batch(10, 2 * (k - 1), 2));
  test::write_file(b10 / "test_batch.bin", test::cifar_binary_batch(10, 10, 2));
  test::write_file(b10 / "batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
  auto c10 = cifar(dir, "cifar10", dir.path());
  Batch train = test::whole_split(*c10, "train");
  CHECK(at::equal(test::as_bytes(train.x), pixels(0, 10)));  // five batches in order
  CHECK(at::equal(train.y, longs({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})));
  CHECK(c10->info().class_names[9] == "truck");
}

TEST_CASE("cifar: nothing is read until the first loader; then a missing release names what was looked for") {
  test::TempDir dir;
  auto ds = cifar(dir, "cifar100", dir / "nothing");  // builds without touching the disk
  CHECK(ds->info().num_classes == 100);
  std::string msg = load_error(ds);
  CHECK(test::contains(msg, "data.root: " + (dir / "nothing").string() + ": no CIFAR-100 files (looked for " +
                                (dir / "nothing/cifar-100-python/train").string()));
  CHECK(test::contains(msg, (dir / "nothing/cifar-100-binary/train.bin").string()));
  CHECK(load_error(ds) == msg);  // a failed load is not cached as a success
  // A release missing one of its files names that file.
  fs::path py = test::write_cifar100_python(dir / "some", 4, 2);
  fs::remove(py / "test");
  CHECK(test::contains(load_error(cifar(dir, "cifar100", dir / "some")), (py / "test").string() + ": no such file"));
}

TEST_CASE("cifar: truncated and corrupt files of each layout are errors naming the file") {
  test::TempDir dir;
  fs::path py = test::write_cifar100_python(dir / "py", 4, 2);
  std::string whole = test::read_file(py / "train");
  test::write_file(py / "train", whole.substr(0, whole.size() - 100));
  std::string cut = load_error(cifar(dir, "cifar100", dir / "py"));
  CHECK(test::contains(cut, (py / "train").string() + ": truncated pickle"));
  CHECK(test::contains(cut, "at byte"));

  std::string bad = whole;
  bad[2] = 'i';  // an opcode the reader refuses, where the dict opens
  test::write_file(py / "train", bad);
  CHECK(test::contains(load_error(cifar(dir, "cifar100", dir / "py")),
                       (py / "train").string() + ": opcode 0x69 ('i') is not one this reader accepts at byte 2"));

  const fs::path bin = dir / "bin/cifar-100-binary";
  fs::create_directories(bin);
  test::write_file(bin / "train.bin", test::cifar_binary_batch(100, 0, 3).substr(0, 3 * 3074 - 10));
  test::write_file(bin / "test.bin", test::cifar_binary_batch(100, 0, 1));
  test::write_file(bin / "fine_label_names.txt", "x\n");
  std::string rec = load_error(cifar(dir, "cifar100", dir / "bin"));
  CHECK(test::contains(rec, (bin / "fine_label_names.txt").string() + ": lists 1 class names, want 100"));
  std::string names;
  for (int k = 0; k < 100; ++k) names += "c" + std::to_string(k) + "\n";
  test::write_file(bin / "fine_label_names.txt", names);
  rec = load_error(cifar(dir, "cifar100", dir / "bin"));
  CHECK(test::contains(rec, (bin / "train.bin").string() + ": truncated or not a CIFAR-100 binary batch: 9212 bytes"));
}

TEST_CASE("cifar: normalisation with the CIFAR-100 statistics, sample limits and the SAMQ sub-range") {
  test::TempDir dir;
  auto ds = test::make_dataset(test::eval_pipeline(dir, "use = \"cifar100\"\nroot = \"" + fixture_root().string() + "\""));
  Batch t = test::whole_split(*ds, "test");
  // Image 1 of the test batch, green plane (byte 1024), pixel 0: (7 + 13 * 1024) % 256 = 7; (7/255 - 0.48666667) / 0.25568627.
  CHECK(t.x[1][1][0][0].item<double>() == doctest::Approx((7.0 / 255 - 0.48666667) / 0.25568627).epsilon(1e-5));
  auto few = cifar(dir, "cifar100", fixture_root(), "train_samples = 6\ntest_samples = 2");
  CHECK(test::whole_split(*few, "train").y.size(0) == 6);
  CHECK(test::whole_split(*few, "test").y.size(0) == 2);
  LoaderSpec spec;  // the SAMQ split: a sub-range of the training images
  spec.train = false;
  spec.begin = 5;
  spec.end = 10;
  spec.batch_size = 100;
  Batch b;
  REQUIRE(cifar(dir, "cifar100", fixture_root())->loader(spec)->next(b));
  CHECK(at::equal(test::as_bytes(b.x), pixels(5, 5)));
}

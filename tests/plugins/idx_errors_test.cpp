// fashion_mnist on small IDX files written here, raw and gzipped: a valid set loads pixel for pixel, and every
// malformed file is refused with a message that names it and says what is wrong.
#include "plugin_test.hpp"

#include <zlib.h>

#include <cstdint>
#include <filesystem>

using namespace saq;
namespace fs = std::filesystem;

namespace {

const char* const kTrainImages = "train-images-idx3-ubyte";
const char* const kTrainLabels = "train-labels-idx1-ubyte";
const char* const kTestImages = "t10k-images-idx3-ubyte";
const char* const kTestLabels = "t10k-labels-idx1-ubyte";

/// An IDX file: magic 00 00 <type> <ndim>, the sizes as big-endian uint32, then the bytes.
std::string idx(const std::vector<std::uint32_t>& dims, const std::string& data, std::uint8_t type = 0x08) {
  std::string out{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((d >> shift) & 0xff);
  return out + data;
}

/// n images of 28x28 whose pixel k of image i is (i * 131 + k * 7) % 256: every byte value, no two images equal.
std::string pixels(std::int64_t n) {
  std::string out;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 0; k < 28 * 28; ++k) out += static_cast<char>((i * 131 + k * 7) % 256);
  return out;
}

std::string bytes(const std::vector<int>& values) { return std::string(values.begin(), values.end()); }

/// The four files of a valid set: 3 training images labelled 7 0 9, 2 test images labelled 1 2.
struct IdxSet {
  std::string train_images = idx({3, 28, 28}, pixels(3));
  std::string train_labels = idx({3}, bytes({7, 0, 9}));
  std::string test_images = idx({2, 28, 28}, pixels(2));
  std::string test_labels = idx({2}, bytes({1, 2}));
};

std::string gzip(const std::string& data) {
  test::TempDir tmp;
  const std::string path = (tmp / "x.gz").string();
  gzFile f = gzopen(path.c_str(), "wb9");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, data.data(), static_cast<unsigned>(data.size())) == static_cast<int>(data.size()));
  REQUIRE(gzclose(f) == Z_OK);
  return test::read_file(path);
}

/// Writes `set` into dir/idx, each file gzipped (name.gz) or raw (name); returns the folder.
fs::path write_set(const test::TempDir& dir, const IdxSet& set, bool gz) {
  const fs::path root = dir / "idx";
  auto put = [&](const char* name, const std::string& data) {
    if (gz) test::write_file(root / (std::string(name) + ".gz"), gzip(data));
    else test::write_file(root / name, data);
  };
  put(kTrainImages, set.train_images);
  put(kTrainLabels, set.train_labels);
  put(kTestImages, set.test_images);
  put(kTestLabels, set.test_labels);
  return root;
}

/// Builds the data set and reads its files (the first loader() does; building alone reads nothing).
std::shared_ptr<Dataset> load(const test::TempDir& dir, const fs::path& root) {
  auto ds = test::make_dataset(
      test::eval_pipeline(dir, "use = \"fashion_mnist\"\nnormalize = false\nroot = \"" + root.string() + "\""));
  LoaderSpec spec;
  spec.train = false;
  ds->loader(spec);
  return ds;
}

/// What loading the set in `root` throws (the host turns any exception of loader() into exit status 2).
std::string load_error(const test::TempDir& dir, const fs::path& root) {
  std::string msg;
  try {
    load(dir, root);
    FAIL("loading " << root.string() << " should have failed");
  } catch (const std::exception& e) {
    msg = e.what();
  }
  return msg;
}

at::Tensor expected_pixels(std::int64_t n) {
  std::string p = pixels(n);
  return at::from_blob(p.data(), {n, 1, 28, 28}, at::kByte).clone();
}

}  // namespace

TEST_CASE("idx: a tiny valid set loads with its pixels and labels, raw or gzipped") {
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    test::TempDir dir;
    auto ds = load(dir, write_set(dir, IdxSet{}, gz));
    Batch train = test::whole_split(*ds, "train");
    Batch t10k = test::whole_split(*ds, "test");
    CHECK(at::equal(train.y, at::tensor(std::vector<std::int64_t>{7, 0, 9})));
    CHECK(at::equal(t10k.y, at::tensor(std::vector<std::int64_t>{1, 2})));
    CHECK(at::equal(test::as_bytes(train.x), expected_pixels(3)));
    CHECK(at::equal(test::as_bytes(t10k.x), expected_pixels(2)));
    // Spot checks of the formula: image 1, pixel 0 is 131; image 2, pixel 783 is (262 + 5481) % 256 = 111.
    CHECK(train.x[1][0][0][0].item<float>() == doctest::Approx(131.0 / 255));
    CHECK(train.x[2][0][27][27].item<float>() == doctest::Approx(111.0 / 255));
  }
}

TEST_CASE("idx: a missing file is named, with the key that points at its folder") {
  test::TempDir dir;
  fs::path root = write_set(dir, IdxSet{}, false);
  fs::remove(root / kTestLabels);
  std::string msg = load_error(dir, root);
  CHECK(test::contains(msg, (root / kTestLabels).string()));
  CHECK(test::contains(msg, "data.root"));
  CHECK(test::contains(msg, "no such file"));
}

TEST_CASE("idx: building the data set reads nothing; the first loader reads, and fails, every time") {
  test::TempDir dir;
  auto ds = test::make_dataset(
      test::eval_pipeline(dir, "use = \"fashion_mnist\"\nroot = \"" + (dir / "none").string() + "\""));
  CHECK(ds->info().num_classes == 10);  // validate and report need no data
  LoaderSpec spec;
  std::string first = test::error_of([&] { ds->loader(spec); });
  CHECK(test::contains(first, (dir / "none" / (std::string(kTrainImages) + ".gz")).string() + ": no such file"));
  CHECK(test::error_of([&] { ds->loader(spec); }) == first);
  // Once the files are there, the same object loads them.
  fs::path root = write_set(dir, IdxSet{}, false);
  fs::rename(root, dir / "none");
  spec.train = false;
  CHECK(ds->loader(spec)->num_samples() == 3);
}

TEST_CASE("idx: an image file shorter than its header promises is truncated, with both sizes") {
  IdxSet set;
  set.train_images = idx({3, 28, 28}, pixels(3).substr(0, 2000));
  test::TempDir dir;
  fs::path root = write_set(dir, set, false);
  std::string msg = load_error(dir, root);
  CHECK(test::contains(msg, (root / kTrainImages).string()));
  CHECK(test::contains(msg, "truncated"));
  CHECK(test::contains(msg, "2352"));  // 3 * 28 * 28
  CHECK(test::contains(msg, "2000"));
}

TEST_CASE("idx: a gzip stream cut in the middle is refused, naming the file") {
  test::TempDir dir;
  fs::path root = write_set(dir, IdxSet{}, true);
  const fs::path file = root / (std::string(kTrainImages) + ".gz");
  std::string whole = test::read_file(file);
  REQUIRE(whole.size() > 100);
  test::write_file(file, whole.substr(0, whole.size() / 2));
  std::string msg = load_error(dir, root);
  CHECK(test::contains(msg, file.string()));
  CHECK(test::contains(msg, "truncated"));
}

TEST_CASE("idx: a gzip stream with a damaged byte fails its check, naming the file") {
  test::TempDir dir;
  fs::path root = write_set(dir, IdxSet{}, true);
  const fs::path file = root / (std::string(kTestLabels) + ".gz");
  std::string gz = test::read_file(file);
  // The gzip trailer is CRC-32 then the length, 4 bytes each; flipping the CRC's first byte must be noticed.
  gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 0xff);
  test::write_file(file, gz);
  std::string msg = load_error(dir, root);
  CHECK(test::contains(msg, file.string()));
  CHECK(test::contains(msg, "corrupt gzip"));
}

TEST_CASE("idx: a bad magic number or dimension count is refused, saying what was expected") {
  IdxSet set;
  set.train_labels = idx({3}, bytes({7, 0, 9}), 0x0d);  // 0x0d: IDX floats, not bytes
  test::TempDir dir;
  fs::path root = write_set(dir, set, false);
  std::string msg = load_error(dir, root);
  CHECK(test::contains(msg, (root / kTrainLabels).string()));
  CHECK(test::contains(msg, "magic 0 0 13, want 0 0 8"));

  IdxSet flat;
  flat.test_images = idx({2, 784}, pixels(2));  // two dimensions where images have three
  test::TempDir dir2;
  fs::path root2 = write_set(dir2, flat, true);
  msg = load_error(dir2, root2);
  CHECK(test::contains(msg, (root2 / kTestImages).string() + ".gz"));
  CHECK(test::contains(msg, "has 2 dimensions, want 3"));
}

TEST_CASE("idx: as many labels as images are needed, each at most 9, and images must be 28x28") {
  SUBCASE("3 images, 2 labels") {
    IdxSet set;
    set.train_labels = idx({2}, bytes({7, 0}));
    test::TempDir dir;
    fs::path root = write_set(dir, set, false);
    std::string msg = load_error(dir, root);
    CHECK(test::contains(msg, (root / kTrainImages).string() + " holds 3 images"));
    CHECK(test::contains(msg, (root / kTrainLabels).string() + " holds 2 labels"));
  }
  SUBCASE("a label of 10") {
    IdxSet set;
    set.test_labels = idx({2}, bytes({1, 10}));
    test::TempDir dir;
    fs::path root = write_set(dir, set, true);
    std::string msg = load_error(dir, root);
    CHECK(test::contains(msg, (root / kTestLabels).string() + ".gz"));
    CHECK(test::contains(msg, "above 9"));
  }
  SUBCASE("27x27 images") {
    IdxSet set;
    set.train_images = idx({3, 27, 27}, std::string(3 * 27 * 27, '\x10'));
    test::TempDir dir;
    fs::path root = write_set(dir, set, false);
    std::string msg = load_error(dir, root);
    CHECK(test::contains(msg, (root / kTrainImages).string()));
    CHECK(test::contains(msg, "27x27, want 28x28"));
  }
}

TEST_CASE("idx: bytes after the data the header promises are refused") {
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    IdxSet set;
    set.test_labels = idx({2}, bytes({1, 2, 3}));  // the header says 2 labels; 3 follow
    test::TempDir dir;
    fs::path root = write_set(dir, set, gz);
    std::string msg = load_error(dir, root);
    CHECK(test::contains(msg, (root / kTestLabels).string() + (gz ? ".gz" : "")));
    CHECK(test::contains(msg, "bytes past the 2"));
  }
}

TEST_CASE("idx: a zero size in the header is refused") {
  IdxSet set;
  set.test_images = idx({2, 0, 28}, "");
  test::TempDir dir;
  fs::path root = write_set(dir, set, false);
  std::string msg = load_error(dir, root);
  CHECK(test::contains(msg, (root / kTestImages).string()));
  CHECK(test::contains(msg, "implausible dimension 0"));
}

TEST_CASE("idx: a gzip file cut inside its CRC-32/length trailer is truncated, naming the file") {
  test::TempDir dir;
  fs::path root = write_set(dir, IdxSet{}, true);
  const fs::path file = root / (std::string(kTrainImages) + ".gz");
  std::string gz = test::read_file(file);
  test::write_file(file, gz.substr(0, gz.size() - 8));  // every data byte is there; the check is not
  std::string msg = load_error(dir, root);
  CHECK(test::contains(msg, file.string()));
  CHECK(test::contains(msg, "truncated"));
}

TEST_CASE("idx: a header promising more bytes than memory holds is refused, naming the file") {
  // 2^28 * 2^28 * 1 = 2^56 bytes; 2^28 cubed = 2^84 overflows int64.
  for (std::uint32_t last : {1u, 1u << 28}) {
    CAPTURE(last);
    IdxSet set;
    set.train_images = idx({1u << 28, 1u << 28, last}, "");
    test::TempDir dir;
    fs::path root = write_set(dir, set, false);
    std::string msg = load_error(dir, root);
    CHECK(test::contains(msg, (root / kTrainImages).string()));
    CHECK_FALSE(test::contains(msg, "frame #0"));  // a message, not a LibTorch stack trace
  }
}

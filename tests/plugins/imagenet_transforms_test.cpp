// The imagenet transforms: RandomResizedCrop's geometry against torchvision's rule, Resize + CenterCrop boxes
// and DCT scale choices computed by hand, crops and flips seen on two-colour images, and training batches that
// do not depend on the worker count or on where a run resumes.
#include "imagenet_tree.hpp"

#include <cmath>

#include "transforms.hpp"

using namespace saq;
using namespace saq::plugins::imagenet;
namespace fs = std::filesystem;

namespace {

/// torchvision's RandomResizedCrop.get_params, transcribed from its Python, on the same draws.
Crop torchvision_rule(int width, int height, double s0, double s1, double r0, double r1, SplitMix& rng) {
  const double area = width * height;
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target_area = area * (s0 + (s1 - s0) * rng.uniform());            // uniform_(scale[0], scale[1])
    double aspect = std::exp(std::log(r0) + (std::log(r1) - std::log(r0)) * rng.uniform());
    int w = static_cast<int>(std::nearbyint(std::sqrt(target_area * aspect)));  // int(round(...))
    int h = static_cast<int>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      int i = static_cast<int>(rng.below(height - h + 1));  // randint(0, height - h + 1)
      int j = static_cast<int>(rng.below(width - w + 1));
      return {i, j, h, w};
    }
  }
  return {-1, -1, -1, -1};  // the fallback is checked on its own below
}

LoaderSpec train_spec(std::int64_t batch_size, std::uint64_t seed = 3) {
  LoaderSpec spec;
  spec.batch_size = batch_size;
  spec.seed = seed;
  return spec;
}

std::vector<Batch> epoch_of(Loader& loader, std::int64_t epoch, std::int64_t first_batch = 0) {
  loader.start_epoch(epoch, first_batch);
  std::vector<Batch> out;
  for (Batch b; loader.next(b);) out.push_back(b);
  return out;
}

}  // namespace

TEST_CASE("RandomResizedCrop: torchvision's rule on the same draws; area and aspect within their ranges") {
  bool left_edge = false, right_edge = false;
  for (std::uint64_t seed = 0; seed < 2000; ++seed) {
    SplitMix a(seed), b(seed);
    Crop c = random_resized_crop(500, 375, 0.08, 1.0, 3.0 / 4, 4.0 / 3, a);
    Crop want = torchvision_rule(500, 375, 0.08, 1.0, 3.0 / 4, 4.0 / 3, b);
    if (want.width < 0) continue;  // ten rejections: a fallback
    REQUIRE(c.top == want.top);
    REQUIRE(c.left == want.left);
    REQUIRE(c.height == want.height);
    REQUIRE(c.width == want.width);
    CHECK(c.top + c.height <= 375);
    CHECK(c.left + c.width <= 500);
    // rounding w and h moves the area by under (w + h) / 2 + 1/4 pixels and the ratio by about 1/h + 1/w
    const double area = static_cast<double>(c.width) * c.height / (500.0 * 375.0);
    const double slack = (c.width + c.height) / (2 * 500.0 * 375.0) + 1e-5;
    CHECK(area >= 0.08 - slack);
    CHECK(area <= 1.0 + slack);
    const double ratio = static_cast<double>(c.width) / c.height;
    CHECK(ratio >= 0.75 * (1 - 1.0 / c.height - 1.0 / c.width));
    CHECK(ratio <= 4.0 / 3 * (1 + 1.0 / c.height + 1.0 / c.width));
    left_edge |= c.left == 0;
    right_edge |= c.left + c.width == 500;
  }
  CHECK(left_edge);
  CHECK(right_edge);
}

TEST_CASE("RandomResizedCrop: when no draw fits, a centred crop of the whole image clamped to the ratio") {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    SplitMix rng(seed);
    // 1000x10 is far wider than 4/3: h = 10, w = round(10 * 4/3) = 13, left = (1000 − 13) // 2 = 493
    Crop wide = random_resized_crop(1000, 10, 0.9, 1.0, 3.0 / 4, 4.0 / 3, rng);
    CHECK(wide.top == 0);
    CHECK(wide.left == 493);
    CHECK(wide.height == 10);
    CHECK(wide.width == 13);
    // 10x1000: w = 10, h = round(10 / (3/4)) = 13, top = 493
    Crop tall = random_resized_crop(10, 1000, 0.9, 1.0, 3.0 / 4, 4.0 / 3, rng);
    CHECK(tall.top == 493);
    CHECK(tall.left == 0);
    CHECK(tall.height == 13);
    CHECK(tall.width == 10);
  }
  // A square image with scale (1, 1): a draw fits only for a ratio within 1% of 1, so most seeds fall back to
  // the whole image (its ratio 1 lies inside [3/4, 4/3]); a fitting draw is at most a pixel smaller.
  int whole = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    SplitMix rng(seed);
    Crop c = random_resized_crop(100, 100, 1.0, 1.0, 3.0 / 4, 4.0 / 3, rng);
    CHECK(c.width >= 99);
    CHECK(c.height >= 99);
    whole += c.top == 0 && c.left == 0 && c.width == 100 && c.height == 100;
  }
  CHECK(whole > 100);
}

TEST_CASE("Resize + CenterCrop as a box, and the DCT scale chosen for it, computed by hand") {
  // 500x375 -> shorter side 256: 341x256 (341.33 truncated); crop 224 at left round(58.5) = 58 (half to even),
  // top 16; the box in the original is x in [58, 282) * 500/341, y in [16, 240) * 375/256.
  Box b = resize_center_crop(500, 375, 256, 224);
  CHECK(b.x0 == doctest::Approx(58 * 500.0 / 341));
  CHECK(b.x1 == doctest::Approx(282 * 500.0 / 341));
  CHECK(b.y0 == doctest::Approx(16 * 375.0 / 256));
  CHECK(b.y1 == doctest::Approx(240 * 375.0 / 256));
  // A portrait image: 375x500 -> 256x341, crop left 16, top 58.
  Box p = resize_center_crop(375, 500, 256, 224);
  CHECK(p.x0 == doctest::Approx(16 * 375.0 / 256));
  CHECK(p.y0 == doctest::Approx(58 * 500.0 / 341));
  // Only 1/2, 1/4 and 1/8 are used (libjpeg-turbo's 7/8 .. 3/8 decode slower than 1/1). That box is 328 x 328
  // source pixels: 1/2 would leave 164 < 224, so it decodes at full size; so does a whole 500x375 image (188).
  Scale s = pick_scale(500, 375, b.x1 - b.x0, b.y1 - b.y0, 224, 224);
  CHECK(s.num == s.denom);
  s = pick_scale(500, 375, 500, 375, 224, 224);
  CHECK(s.num == s.denom);
  // 1000x750 to 224: 1/2 leaves 375 rows, 1/4 only 188; 4000x3000: 1/8 leaves 375.
  s = pick_scale(1000, 750, 1000, 750, 224, 224);
  CHECK(s.num * 2 == s.denom);
  s = pick_scale(4000, 3000, 4000, 3000, 224, 224);
  CHECK(s.num * 8 == s.denom);
  // A crop of 500x400 pixels out of 4000x3000 to 224: 1/2 leaves 250x200 < 224 rows: full size.
  s = pick_scale(4000, 3000, 500, 400, 224, 224);
  CHECK(s.num == s.denom);
  // Upscaling never picks a factor above 1.
  s = pick_scale(100, 80, 100, 80, 224, 224);
  CHECK(s.num == s.denom);
}

TEST_CASE("resample: an unscaled box copies pixels; flips mirror; a shrink averages") {
  // 4x1 image, pixels 0, 100, 200, 250 (grey)
  const std::uint8_t src[] = {0, 0, 0, 100, 100, 100, 200, 200, 200, 250, 250, 250};
  std::uint8_t out[12];
  resample(src, 4, 1, {0, 0, 4, 1}, {0, 0, 4, 1}, 4, 1, false, out);
  CHECK(std::vector<int>(out, out + 4) == std::vector<int>{0, 100, 200, 250});
  resample(src, 4, 1, {0, 0, 4, 1}, {0, 0, 4, 1}, 4, 1, true, out);
  CHECK(std::vector<int>(out + 8, out + 12) == std::vector<int>{250, 200, 100, 0});  // blue plane
  resample(src, 4, 1, {1, 0, 3, 1}, {1, 0, 3, 1}, 2, 1, false, out);  // crop [1, 3) at scale 1
  CHECK(std::vector<int>(out, out + 2) == std::vector<int>{100, 200});
  // 4 -> 2: scale 2, a triangle of half-width 2 (Pillow's antialiased bilinear) around centres 1 and 3.
  resample(src, 4, 1, {0, 0, 4, 1}, {0, 0, 4, 1}, 2, 1, false, out);
  // centre 1.0: pixels 0..2 at distances 0.5, 0.5, 1.5 -> weights 0.75, 0.75, 0.25, normalised by 1.75
  CHECK(out[0] == static_cast<int>(std::lround((100 * 0.75 + 200 * 0.25) / 1.75)));
  // centre 3.0: pixels 1..3 at 1.5, 0.5, 0.5 -> 0.25, 0.75, 0.75
  CHECK(out[1] == static_cast<int>(std::lround((100 * 0.25 + 200 * 0.75 + 250 * 0.75) / 1.75)));
}

TEST_CASE("imagenet: the eval crop and a training crop of the whole image, seen on a two-colour image") {
  test::TempDir dir;
  // 64x48, black columns [0, 32), white [32, 64): the edge falls on a JPEG block boundary, so both sides decode
  // flat. Resize 48 keeps the image; CenterCrop 32 starts at column 16: output columns [0, 16) black.
  for (const char* split : {"train", "val"})
    for (const char* cls : {"n1", "n2"})
      for (const char* name : {"a.JPEG", "b.JPEG", "c.JPEG", "d.JPEG"})
        test::write_jpeg(dir / "data" / split / cls / name, test::two_colours(64, 48, {0, 0, 0}, {255, 255, 255}, 32));
  const std::string data = "use = \"imagenet\"\nroot = \"" + (dir / "data").string() +
                           "\"\nnum_classes = 2\nimage_size = 32\nresize_size = 48\nmean = [0.0, 0.0, 0.0]\n"
                           "std = [1.0, 1.0, 1.0]\n";
  auto ds = test::make_dataset(test::eval_pipeline(dir, data));
  Batch eval = test::whole_split(*ds, "test");
  REQUIRE(eval.x.sizes().vec() == std::vector<std::int64_t>{8, 3, 32, 32});
  CHECK(eval.x.narrow(3, 0, 16).max().item<double>() < 3 / 255.0);
  CHECK(eval.x.narrow(3, 16, 16).min().item<double>() > 252 / 255.0);

  // scale [1, 1] with ratio 4/3 on a 4:3 image: the crop is the whole image, shrunk to 32x32: columns [0, 15)
  // hold the left colour, [17, 32) the right, and the flip swaps them.
  auto train = test::make_dataset(test::eval_pipeline(
      dir, data + "scale = [1.0, 1.0]\nratio = [1.3333333333333333, 1.3333333333333333]\n"));
  auto loader = train->loader(train_spec(8));
  int flipped = 0, plain = 0;
  for (std::int64_t epoch = 0; epoch < 4; ++epoch)
    for (const Batch& b : epoch_of(*loader, epoch))
      for (std::int64_t i = 0; i < b.y.size(0); ++i) {
        const double left = b.x[i].narrow(2, 0, 15).mean().item<double>();
        const double right = b.x[i].narrow(2, 17, 15).mean().item<double>();
        plain += left < 3 / 255.0 && right > 252 / 255.0;
        flipped += right < 3 / 255.0 && left > 252 / 255.0;
      }
  CHECK(plain + flipped == 32);
  CHECK(plain > 4);  // each flip is a fair coin: 32 draws
  CHECK(flipped > 4);
  auto no_flip = test::make_dataset(test::eval_pipeline(dir, data + "scale = [1.0, 1.0]\nflip = false\n"));
  Batch b;
  auto nf = no_flip->loader(train_spec(8));
  REQUIRE(nf->next(b));
  CHECK(b.x.narrow(3, 0, 8).max().item<double>() < 3 / 255.0);
}

TEST_CASE("imagenet: training batches are the same with 1 or 3 workers, and from a resumed batch") {
  test::TempDir dir;
  // 3 classes x 4 images, each with a distinct edge so that crops differ visibly
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i)
      test::write_jpeg(dir / "data" / "train" / ("n" + std::to_string(c)) / ("i" + std::to_string(i) + ".JPEG"),
                       test::two_colours(64, 48, {40 * c, 200, 10 * i}, {250, 30 * i, 90}, 8 + 12 * i));
  const std::string data = "use = \"imagenet\"\nroot = \"" + (dir / "data").string() +
                           "\"\nnum_classes = 3\nimage_size = 24\nresize_size = 24\n";
  auto one = test::make_dataset(test::eval_pipeline(dir, data + "workers = 1\nprefetch = 1\n"));
  auto three = test::make_dataset(test::eval_pipeline(dir, data + "workers = 3\n"));
  auto a = one->loader(train_spec(5)), b = three->loader(train_spec(5));
  for (std::int64_t epoch : {0, 1}) {
    auto x = epoch_of(*a, epoch), y = epoch_of(*b, epoch);
    REQUIRE(x.size() == 3);
    REQUIRE(y.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) {
      CHECK(at::equal(x[k].x, y[k].x));
      CHECK(at::equal(x[k].y, y[k].y));
    }
  }
  auto full = epoch_of(*a, 1);
  auto tail = epoch_of(*b, 1, 2);
  REQUIRE(tail.size() == 1);
  CHECK(at::equal(tail[0].x, full[2].x));
  CHECK(!at::equal(epoch_of(*a, 0)[0].x, full[0].x));  // new crops each epoch
}

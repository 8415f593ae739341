#pragma once
/// Small JPEG class trees for the imagenet tests, written with the plugin's own TurboJPEG encoder.
#include "plugin_test.hpp"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "jpeg.hpp"

namespace saq::test {

using plugins::imagenet::RgbImage;

struct Rgb {
  int r, g, b;
};

/// A width x height image of colour `left` in columns [0, split) and `right` in the rest.
inline RgbImage two_colours(int width, int height, Rgb left, Rgb right, int split) {
  RgbImage im;
  im.width = width, im.height = height;
  im.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const Rgb& c = x < split ? left : right;
      std::uint8_t* p = im.pixels.data() + (static_cast<std::size_t>(y) * width + x) * 3;
      p[0] = static_cast<std::uint8_t>(c.r);
      p[1] = static_cast<std::uint8_t>(c.g);
      p[2] = static_cast<std::uint8_t>(c.b);
    }
  return im;
}

inline RgbImage solid(int width, int height, Rgb c) { return two_colours(width, height, c, c, width); }

inline void write_bytes(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
  std::filesystem::create_directories(path.parent_path());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error(path.string() + ": cannot write");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

inline void write_jpeg(const std::filesystem::path& path, const RgbImage& image, int quality = 95) {
  write_bytes(path, plugins::imagenet::encode_jpeg(image, quality));
}

/// The three classes of the tiny tree, written in this (unsorted) order: n003, n001, n002.
struct TinyClass {
  const char* wnid;
  Rgb colour;
};
inline const TinyClass kTinyClasses[] = {{"n003", {200, 40, 40}}, {"n001", {30, 160, 60}}, {"n002", {50, 80, 210}}};

/// root/{train,val}/<wnid>/ with 4 solid 64x48 images of the class colour each (named so that .JPEG, .jpg and
/// .jpeg all occur), plus a text file that the reader must ignore.
inline void write_tiny_tree(const std::filesystem::path& root) {
  for (const char* split : {"train", "val"})
    for (const auto& c : kTinyClasses) {
      const auto dir = root / split / c.wnid;
      for (const char* name : {"a.JPEG", "b.jpg", "c.jpeg", "d.JPEG"}) write_jpeg(dir / name, solid(64, 48, c.colour));
      write_bytes(dir / "notes.txt", {'h', 'i'});
    }
}

/// The [data] table of an imagenet reader of `root` with small crops.
inline std::string tiny_data(const std::filesystem::path& root, const std::string& extra = "", int classes = 3) {
  return "use = \"imagenet\"\nroot = \"" + root.string() + "\"\nnum_classes = " + std::to_string(classes) +
         "\nimage_size = 16\nresize_size = 16\nworkers = 2\n" + extra;
}

}  // namespace saq::test

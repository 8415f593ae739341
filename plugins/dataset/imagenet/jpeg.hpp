#pragma once
// JPEG files through libjpeg-turbo's TurboJPEG API: the header, a decode at a DCT scaling factor, and an
// encoder (for the synthetic trees of the tests and the benchmark). Each thread keeps its own handles.
#include <cstdint>
#include <string>
#include <vector>

namespace saq::plugins::imagenet {

/// Interleaved 8-bit RGB, row-major [height, width, 3].
struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;
};

/// A scaling factor num/denom that the decoder applies in the DCT domain.
struct Scale {
  int num = 1, denom = 1;
};

/// The whole file; throws std::runtime_error with the reason (the caller names the file).
void read_file(const std::string& path, std::vector<std::uint8_t>& out);

/// Width and height from the JPEG header; throws std::runtime_error with the decoder's reason.
void jpeg_size(const std::vector<std::uint8_t>& data, int& width, int& height);

/// The strongest reduction of 1/2, 1/4, 1/8 (or none) after which a box of box_w x box_h full-size pixels
/// still spans at least need_w x need_h pixels: resampling then only shrinks, as it would at full size.
Scale pick_scale(int width, int height, double box_w, double box_h, int need_w, int need_h);

/// Decodes to RGB at `scale` (grey and CMYK/YCCK files converted). Throws std::runtime_error on a corrupt or
/// truncated file ("premature end" warnings); other warnings (extraneous bytes) are accepted, as PIL does.
void decode_jpeg(const std::vector<std::uint8_t>& data, Scale scale, RgbImage& out);

/// A baseline JPEG of an RGB image at `quality` with 4:2:0 chroma subsampling.
std::vector<std::uint8_t> encode_jpeg(const RgbImage& image, int quality);

}  // namespace saq::plugins::imagenet

#pragma once
// The ImageNet transforms of torchvision, on interleaved RGB: RandomResizedCrop's geometry, Resize + CenterCrop
// as a box on the original image, and a bilinear resampler of any box (antialiased when shrinking, as
// Pillow's BILINEAR filter).
#include <cstdint>

#include <saq/random.hpp>

namespace saq::plugins::imagenet {

/// Rows [top, top + height) and columns [left, left + width) of an image, in its pixels.
struct Crop {
  int top = 0, left = 0, height = 0, width = 0;
};

/// A rectangle [x0, x1) x [y0, y1) in (possibly fractional) pixel coordinates.
struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// torchvision's RandomResizedCrop.get_params: up to 10 draws of area fraction s ~ U(scale) and log aspect
/// ratio ~ U(log ratio), w = round(sqrt(s·A·r)), h = round(sqrt(s·A/r)), accepted when it fits, then its
/// position uniformly; else a centred crop of the whole image clamped to the ratio range.
Crop random_resized_crop(int width, int height, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                         SplitMix& rng);

/// torchvision's Resize(resize) (shorter side to `resize`, the longer truncated) then CenterCrop(size), as the
/// box of the original image that the crop covers.
Box resize_center_crop(int width, int height, int resize, int size);

/// Resamples `box` of an RGB image (src: [height, width, 3]) to out_w x out_h, mirrored when `flip`, into
/// out: uint8 [3, out_h, out_w]. Taps are a triangle of half-width max(1, box/out) input pixels, kept inside
/// `clip` (the crop for crop-then-resize, the whole image for resize-then-crop).
void resample(const std::uint8_t* src, int width, int height, const Box& box, const Box& clip, int out_w, int out_h,
              bool flip, std::uint8_t* out);

}  // namespace saq::plugins::imagenet

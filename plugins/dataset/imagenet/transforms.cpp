#include "transforms.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace saq::plugins::imagenet {

namespace {

/// Python's round(): halves to even, as torchvision's int(round(x)) computes sizes.
int round_half_even(double x) { return static_cast<int>(std::nearbyint(x)); }

/// The taps of every output position along one axis: first input index, count, and normalised weights.
struct Taps {
  std::vector<int> first, count;
  std::vector<float> weights;  // count[i] weights at i * stride
  int stride = 0;
};

Taps make_taps(double b0, double b1, int out, double c0, double c1, int size) {
  const double scale = (b1 - b0) / out;
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // the bilinear (triangle) filter has support 1
  Taps t;
  t.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out);
  t.count.resize(out);
  t.weights.assign(static_cast<std::size_t>(out) * t.stride, 0.0f);
  const int lo = std::clamp(static_cast<int>(std::floor(c0)), 0, size - 1);
  const int hi = std::clamp(static_cast<int>(std::ceil(c1)), lo + 1, size);
  for (int i = 0; i < out; ++i) {
    const double center = b0 + (i + 0.5) * scale;
    int first = std::max(static_cast<int>(center - support + 0.5), lo);
    int last = std::min(static_cast<int>(center + support + 0.5), hi);
    last = std::min(last, first + t.stride);
    float* w = t.weights.data() + static_cast<std::size_t>(i) * t.stride;
    double sum = 0;
    for (int x = first; x < last; ++x) {
      double v = std::max(0.0, 1.0 - std::abs((x - center + 0.5) / filter_scale));
      w[x - first] = static_cast<float>(v);
      sum += v;
    }
    if (sum <= 0) {  // the centre falls outside the clip: take the nearest pixel inside it
      first = std::clamp(static_cast<int>(std::floor(center)), lo, hi - 1);
      last = first + 1;
      w[0] = 1.0f;
      sum = 1.0;
    }
    for (int x = first; x < last; ++x) w[x - first] = static_cast<float>(w[x - first] / sum);
    t.first[i] = first;
    t.count[i] = last - first;
  }
  return t;
}

/// Four floats in one SIMD register (GCC/Clang vector extension; plain scalar code where there is no SIMD).
typedef float Float4 __attribute__((vector_size(16)));

/// One row's horizontal pass: out_w RGB sums of `K` taps each (K = 0: taps.stride, known at run time only),
/// to three planes [3, out_w], mirrored when `flip`. A tap loads R, G, B and the next pixel's R as one vector
/// (the fourth lane is ignored). Taps past a position's count weigh 0 and read the row's zero tail, so every
/// position runs the same fixed-length loop.
template <int K>
void horizontal(const float* row, const Taps& t, int col0, int out_w, bool flip, float* planes) {
  const int taps = K ? K : t.stride;
  for (int x = 0; x < out_w; ++x) {
    const int i = flip ? out_w - 1 - x : x;
    const float* w = t.weights.data() + static_cast<std::size_t>(i) * t.stride;
    const float* p = row + (t.first[i] - col0) * 3;
    Float4 acc = {0, 0, 0, 0};
    for (int k = 0; k < taps; ++k) {
      Float4 v;
      std::memcpy(&v, p + 3 * k, sizeof v);
      acc += w[k] * v;
    }
    planes[x] = acc[0], planes[out_w + x] = acc[1], planes[2 * out_w + x] = acc[2];
  }
}

}  // namespace

Crop random_resized_crop(int width, int height, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                         SplitMix& rng) {
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(ratio_lo), log_hi = std::log(ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (scale_lo + (scale_hi - scale_lo) * rng.uniform());
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * rng.uniform());
    const int w = round_half_even(std::sqrt(target * aspect));
    const int h = round_half_even(std::sqrt(target / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int top = static_cast<int>(rng.below(static_cast<std::uint64_t>(height - h + 1)));
      const int left = static_cast<int>(rng.below(static_cast<std::uint64_t>(width - w + 1)));
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < std::min(ratio_lo, ratio_hi)) {
    h = round_half_even(w / std::min(ratio_lo, ratio_hi));
  } else if (in_ratio > std::max(ratio_lo, ratio_hi)) {
    w = round_half_even(h * std::max(ratio_lo, ratio_hi));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

Box resize_center_crop(int width, int height, int resize, int size) {
  const bool wide = width > height;
  const int short_side = wide ? height : width, long_side = wide ? width : height;
  const int new_long = static_cast<int>(static_cast<double>(resize) * long_side / short_side);
  const int new_w = wide ? new_long : resize, new_h = wide ? resize : new_long;
  const int top = round_half_even((new_h - size) / 2.0), left = round_half_even((new_w - size) / 2.0);
  const double sx = static_cast<double>(width) / new_w, sy = static_cast<double>(height) / new_h;
  return {left * sx, top * sy, (left + size) * sx, (top + size) * sy};
}

void resample(const std::uint8_t* src, int width, int height, const Box& box, const Box& clip, int out_w, int out_h,
              bool flip, std::uint8_t* out) {
  const Taps tx = make_taps(box.x0, box.x1, out_w, clip.x0, clip.x1, width);
  const Taps ty = make_taps(box.y0, box.y1, out_h, clip.y0, clip.y1, height);
  // Vertical pass first: its inner loop runs over contiguous interleaved columns and vectorises; the strided
  // horizontal pass then runs on out_h rows only. cols: the source columns any horizontal tap reads.
  const int col0 = tx.first.front(), col1 = tx.first.back() + tx.count.back();
  const int span = (col1 - col0) * 3;
  thread_local std::vector<float> row, planes;
  row.assign(static_cast<std::size_t>(span + 3 * tx.stride + 1), 0.0f);  // zero tail: `stride` taps + 1 lane
  planes.resize(static_cast<std::size_t>(out_w) * 3);
  const std::size_t plane = static_cast<std::size_t>(out_w) * out_h;
  for (int j = 0; j < out_h; ++j) {
    const float* wy = ty.weights.data() + static_cast<std::size_t>(j) * ty.stride;
    for (int k = 0; k < ty.count[j]; ++k) {
      const std::uint8_t* s = src + (static_cast<std::size_t>(ty.first[j] + k) * width + col0) * 3;
      const float w = wy[k];
      float* r = row.data();
      if (k == 0) {
        for (int q = 0; q < span; ++q) r[q] = w * static_cast<float>(s[q]);
      } else {
        for (int q = 0; q < span; ++q) r[q] += w * static_cast<float>(s[q]);
      }
    }
    switch (tx.stride) {
      case 3: horizontal<3>(row.data(), tx, col0, out_w, flip, planes.data()); break;
      case 5: horizontal<5>(row.data(), tx, col0, out_w, flip, planes.data()); break;
      case 7: horizontal<7>(row.data(), tx, col0, out_w, flip, planes.data()); break;
      default: horizontal<0>(row.data(), tx, col0, out_w, flip, planes.data());
    }
    for (int c = 0; c < 3; ++c) {
      const float* p = planes.data() + static_cast<std::size_t>(c) * out_w;
      std::uint8_t* o = out + c * plane + static_cast<std::size_t>(j) * out_w;
      for (int x = 0; x < out_w; ++x) {  // integer clamp: this loop vectorises
        const int v = static_cast<int>(p[x] + 0.5f);
        o[x] = static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
}

}  // namespace saq::plugins::imagenet

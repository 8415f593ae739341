#include "jpeg.hpp"

#include <turbojpeg.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace saq::plugins::imagenet {

namespace {

/// One TurboJPEG handle per thread and direction: a handle is not thread-safe, and creating one per image
/// would cost more than decoding a small one.
struct Handle {
  tjhandle h;
  explicit Handle(tjhandle handle) : h(handle) {}
  ~Handle() {
    if (h) tjDestroy(h);
  }
};

tjhandle decompressor() {
  thread_local Handle handle(tjInitDecompress());
  if (!handle.h) throw std::runtime_error(std::string("TurboJPEG: ") + tjGetErrorStr2(nullptr));
  return handle.h;
}

tjhandle compressor() {
  thread_local Handle handle(tjInitCompress());
  if (!handle.h) throw std::runtime_error(std::string("TurboJPEG: ") + tjGetErrorStr2(nullptr));
  return handle.h;
}

bool mentions_premature_end(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text.find("premature end") != std::string::npos;
}

}  // namespace

void read_file(const std::string& path, std::vector<std::uint8_t>& out) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw std::runtime_error(std::string("cannot open (") + std::strerror(errno) + ")");
  if (std::fseek(f.get(), 0, SEEK_END) != 0) throw std::runtime_error("cannot seek");
  long size = std::ftell(f.get());
  if (size < 0) throw std::runtime_error("cannot tell its size");
  std::rewind(f.get());
  out.resize(static_cast<std::size_t>(size));
  if (size > 0 && std::fread(out.data(), 1, out.size(), f.get()) != out.size())
    throw std::runtime_error(std::string("read error (") + std::strerror(errno) + ")");
}

void jpeg_size(const std::vector<std::uint8_t>& data, int& width, int& height) {
  tjhandle h = decompressor();
  int subsamp = 0, colorspace = 0;
  if (data.empty()) throw std::runtime_error("empty file");
  if (tjDecompressHeader3(h, data.data(), data.size(), &width, &height, &subsamp, &colorspace) != 0)
    throw std::runtime_error(std::string("not a readable JPEG: ") + tjGetErrorStr2(h));
  if (width <= 0 || height <= 0)
    throw std::runtime_error("JPEG header gives " + std::to_string(width) + "x" + std::to_string(height));
}

Scale pick_scale(int width, int height, double box_w, double box_h, int need_w, int need_h) {
  int n = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&n);
  Scale best;
  for (int i = 0; factors && i < n; ++i) {
    const tjscalingfactor f = factors[i];
    // 1/2, 1/4, 1/8 only: libjpeg-turbo's other reduced IDCTs (7/8 .. 3/8) are slower than a full decode
    if (f.num != 1 || f.denom == 1 || f.denom <= best.denom) continue;
    const double sx = static_cast<double>(TJSCALED(width, f)) / width;
    const double sy = static_cast<double>(TJSCALED(height, f)) / height;
    if (box_w * sx >= need_w && box_h * sy >= need_h) best = {f.num, f.denom};
  }
  return best;
}

void decode_jpeg(const std::vector<std::uint8_t>& data, Scale scale, RgbImage& out) {
  tjhandle h = decompressor();
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (data.empty()) throw std::runtime_error("empty file");
  if (tjDecompressHeader3(h, data.data(), data.size(), &width, &height, &subsamp, &colorspace) != 0)
    throw std::runtime_error(std::string("not a readable JPEG: ") + tjGetErrorStr2(h));
  const tjscalingfactor f{scale.num, scale.denom};
  out.width = TJSCALED(width, f);
  out.height = TJSCALED(height, f);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;  // TurboJPEG has no CMYK -> RGB path
  const int channels = cmyk ? 4 : 3;
  thread_local std::vector<std::uint8_t> cmyk_buffer;
  std::vector<std::uint8_t>& target = cmyk ? cmyk_buffer : out.pixels;
  target.resize(static_cast<std::size_t>(out.width) * out.height * channels);
  if (tjDecompress2(h, data.data(), data.size(), target.data(), out.width, 0, out.height,
                    cmyk ? TJPF_CMYK : TJPF_RGB, 0) != 0) {
    const std::string reason = tjGetErrorStr2(h);
    if (tjGetErrorCode(h) == TJERR_FATAL || mentions_premature_end(reason))
      throw std::runtime_error("corrupt or truncated JPEG: " + reason);
  }
  if (!cmyk) return;
  // JPEG CMYK is stored inverted (Adobe): a stored value is 255 − ink, so R = C·K/255 (as Pillow converts).
  out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  for (std::size_t p = 0, n = static_cast<std::size_t>(out.width) * out.height; p < n; ++p) {
    const std::uint8_t* s = cmyk_buffer.data() + 4 * p;
    for (int c = 0; c < 3; ++c) out.pixels[3 * p + c] = static_cast<std::uint8_t>((s[c] * s[3] + 127) / 255);
  }
}

std::vector<std::uint8_t> encode_jpeg(const RgbImage& image, int quality) {
  tjhandle h = compressor();
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  if (tjCompress2(h, image.pixels.data(), image.width, 0, image.height, TJPF_RGB, &buffer, &size, TJSAMP_420, quality,
                  TJFLAG_ACCURATEDCT) != 0) {
    tjFree(buffer);
    throw std::runtime_error(std::string("JPEG encoding failed: ") + tjGetErrorStr2(h));
  }
  std::vector<std::uint8_t> out(buffer, buffer + size);
  tjFree(buffer);
  return out;
}

}  // namespace saq::plugins::imagenet

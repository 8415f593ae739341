#include "idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>
#include <stdexcept>

#include <ATen/ATen.h>

namespace saq::plugins {

namespace {

constexpr std::int64_t kMaxBytes = std::int64_t{1} << 34;  // 16 GiB, far above any IDX data set

struct GzFile {
  gzFile f;
  ~GzFile() {
    if (f) gzclose(f);
  }
};

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw std::runtime_error(path + ": " + why);
}

/// Reads exactly n bytes; returns how many it got before the end of the stream.
std::int64_t read_some(GzFile& in, const std::string& path, std::uint8_t* dst, std::int64_t n) {
  std::int64_t got = 0;
  while (got < n) {
    unsigned chunk = static_cast<unsigned>(std::min<std::int64_t>(n - got, 1 << 30));
    int r = gzread(in.f, dst + got, chunk);
    if (r < 0) {
      int code = 0;
      const char* msg = gzerror(in.f, &code);
      bad(path, std::string("corrupt gzip data (") + (msg ? msg : "?") + ")");
    }
    if (r == 0) {
      int code = 0;
      const char* msg = gzerror(in.f, &code);
      // Z_BUF_ERROR here is zlib's "unexpected end of file": the stream (or its CRC trailer) was cut short.
      if (code == Z_BUF_ERROR) bad(path, std::string("truncated gzip stream (") + (msg ? msg : "?") + ")");
      if (code != Z_OK) bad(path, std::string("corrupt gzip data (") + (msg ? msg : "?") + ")");
      break;
    }
    got += r;
  }
  return got;
}

}  // namespace

at::Tensor read_idx_u8(const std::string& path, std::int64_t want_ndim) {
  GzFile in{gzopen(path.c_str(), "rb")};
  if (!in.f) bad(path, "cannot open");
  std::uint8_t magic[4];
  if (read_some(in, path, magic, 4) != 4) bad(path, "truncated: shorter than the 4-byte IDX magic");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08)
    bad(path, "not an IDX file of unsigned bytes (magic " + std::to_string(magic[0]) + " " + std::to_string(magic[1]) +
                  " " + std::to_string(magic[2]) + ", want 0 0 8)");
  if (magic[3] != want_ndim)
    bad(path, "has " + std::to_string(magic[3]) + " dimensions, want " + std::to_string(want_ndim));
  std::vector<std::int64_t> dims(want_ndim);
  std::int64_t total = 1;
  for (auto& d : dims) {
    std::uint8_t b[4];
    if (read_some(in, path, b, 4) != 4) bad(path, "truncated inside the IDX header");
    d = (std::int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    if (d <= 0 || d > (1 << 28)) bad(path, "implausible dimension " + std::to_string(d) + " in the header");
    if (total > kMaxBytes / d)
      bad(path, "the header promises more than " + std::to_string(kMaxBytes) + " bytes: not a data set this reader loads");
    total *= d;
  }
  // The buffer grows with the data actually read: a corrupt header promising gigabytes costs no more memory
  // than the file holds.
  std::vector<std::uint8_t> data;
  std::int64_t got = 0;
  while (got < total) {
    const std::int64_t want = std::min(total, std::max<std::int64_t>(2 * got, std::int64_t{1} << 24));
    data.resize(static_cast<std::size_t>(want));
    got += read_some(in, path, data.data() + got, want - got);
    if (got < want) break;
  }
  if (got != total)
    bad(path, "truncated: the header promises " + std::to_string(total) + " data bytes, the file holds " +
                  std::to_string(got));
  std::uint8_t extra;
  if (read_some(in, path, &extra, 1) != 0) bad(path, "has bytes past the " + std::to_string(total) + " the header promises");
  at::Tensor out = at::empty(dims, at::kByte);
  std::memcpy(out.data_ptr<std::uint8_t>(), data.data(), static_cast<std::size_t>(total));
  return out;
}

}  // namespace saq::plugins

#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace saq::plugins {

/// Reads an IDX file of unsigned bytes, gzipped or not (zlib reads both): magic 00 00 08 <ndim>, ndim
/// big-endian uint32 sizes, then the data. Throws std::runtime_error naming the file on a bad magic,
/// `ndim` other than `want_ndim`, a short read, trailing bytes, or a corrupt gzip stream.
at::Tensor read_idx_u8(const std::string& path, std::int64_t want_ndim);

}  // namespace saq::plugins

#pragma once
/// CRC-32C (Castagnoli), the checksum of TFRecord files: reflected polynomial 0x82F63B78, table-driven.
#include <cstddef>
#include <cstdint>

namespace saq::host {

/// CRC-32C of `n` bytes at `data`, continuing from `crc` (the result of an earlier call; 0 to start).
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);

/// TFRecord's masked form of a CRC, so that a CRC stored inside checksummed data does not checksum to itself:
/// ((crc >> 15) | (crc << 17)) + 0xa282ead8.
inline std::uint32_t mask_crc32c(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace saq::host

#include "zip_check.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <stdexcept>

namespace saq::detail {

namespace {

std::uint32_t u32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (std::uint32_t{p[3]} << 24); }
std::uint16_t u16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

void check_archive_sizes(const std::string& path) {
  auto corrupt = [](const std::string& why) { throw std::runtime_error(why); };
  std::ifstream in(path, std::ios::binary);
  if (!in) corrupt("cannot open");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB, at the end of the file.
  const std::uint64_t tail = std::min<std::uint64_t>(size, 22 + 65535);
  std::string buf(tail, '\0');
  in.seekg(static_cast<std::streamoff>(size - tail));
  in.read(buf.data(), static_cast<std::streamsize>(tail));
  const auto* t = reinterpret_cast<const unsigned char*>(buf.data());
  std::int64_t eocd = -1;
  for (std::int64_t i = static_cast<std::int64_t>(tail) - 22; i >= 0 && eocd < 0; --i)
    if (u32(t + i) == 0x06054b50) eocd = i;
  if (eocd < 0) corrupt("no zip directory");
  const std::uint32_t cd_size = u32(t + eocd + 12), cd_offset = u32(t + eocd + 16);
  const std::uint16_t entries = u16(t + eocd + 10);
  if (cd_offset == 0xffffffffu) return;  // zip64 (archives past 4 GiB): left to LibTorch
  if (std::uint64_t{cd_offset} + cd_size > size) corrupt("its zip directory lies past the end of the file");
  std::string cd(cd_size, '\0');
  in.seekg(cd_offset);
  in.read(cd.data(), cd_size);
  const auto* c = reinterpret_cast<const unsigned char*>(cd.data());
  std::uint64_t at = 0;
  for (std::uint16_t i = 0; i < entries; ++i) {
    if (at + 46 > cd_size || u32(c + at) != 0x02014b50) corrupt("a damaged zip directory entry");
    const std::uint16_t method = u16(c + at + 10);
    const std::uint32_t packed = u32(c + at + 20), unpacked = u32(c + at + 24), local = u32(c + at + 42);
    const std::uint64_t next = at + 46 + u16(c + at + 28) + u16(c + at + 30) + u16(c + at + 32);
    const std::string name(cd.data() + at + 46, std::min<std::uint64_t>(u16(c + at + 28), cd_size - at - 46));
    // Stored entries hold exactly their bytes; deflate expands at most 1032:1.
    const bool plausible = packed <= size && local < size &&
                           (method == 0 ? unpacked == packed : std::uint64_t{unpacked} <= 1032ull * packed + 1024);
    if (packed != 0xffffffffu && unpacked != 0xffffffffu && !plausible)
      corrupt("zip entry " + name + " declares " + std::to_string(unpacked) + " bytes in a " + std::to_string(size) +
              "-byte file");
    at = next;
  }
}

}  // namespace saq::detail

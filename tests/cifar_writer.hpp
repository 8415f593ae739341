#pragma once
/// Writes CIFAR releases for tests: the python layout as pickle bytes assembled opcode by opcode (the sequence
/// numpy's ndarray.__reduce__ and pickle protocol 3 produce for a dict of an array and lists), and the binary one.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support.hpp"

namespace saq::test {

/// Byte j of image i: (7 i + 13 j + seed) mod 256, in the CIFAR order (R plane, G plane, B plane, row-major).
inline std::uint8_t cifar_pixel(std::int64_t i, std::int64_t j, std::int64_t seed = 0) {
  return static_cast<std::uint8_t>((7 * i + 13 * j + seed) % 256);
}

namespace pickle_bytes {
inline std::string u32(std::uint32_t v) {
  return {static_cast<char>(v & 255), static_cast<char>((v >> 8) & 255), static_cast<char>((v >> 16) & 255),
          static_cast<char>(v >> 24)};
}
inline std::string str(const std::string& s) { return "X" + u32(static_cast<std::uint32_t>(s.size())) + s; }
inline std::string integer(std::int64_t v) { return "J" + u32(static_cast<std::uint32_t>(static_cast<std::int32_t>(v))); }
inline std::string int_list(const std::vector<std::int64_t>& v) {
  std::string out = "](";
  for (auto x : v) out += integer(x);
  return out + "e";
}
inline std::string str_list(const std::vector<std::string>& v) {
  std::string out = "](";
  for (const auto& x : v) out += str(x);
  return out + "e";
}
/// numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b') + BUILD (1, (n, 3072), dtype('u1'), False, data)
inline std::string uint8_array(std::int64_t n, const std::string& data) {
  using namespace std::string_literals;  // the opcodes hold NUL bytes
  return "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"s + "C\x01" "b" "\x87R"s + "(K\x01"s +
         integer(n) + "M\x00\x0c\x86"s + "cnumpy\ndtype\n\x8c\x02u1\x89\x88\x87R"s +
         "(K\x03\x8c\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"s + "\x89"s + "B"s +
         u32(static_cast<std::uint32_t>(data.size())) + data + "tb"s;
}
}  // namespace pickle_bytes

/// A CIFAR-100 python batch of images [first, first + n) with fine label (i * 3) % 100 and coarse (i % 20).
inline std::string cifar100_python_batch(std::int64_t first, std::int64_t n) {
  using namespace pickle_bytes;
  std::string data;
  std::vector<std::int64_t> fine, coarse;
  for (std::int64_t i = first; i < first + n; ++i) {
    for (std::int64_t j = 0; j < 3072; ++j) data += static_cast<char>(cifar_pixel(i, j));
    fine.push_back((i * 3) % 100);
    coarse.push_back(i % 20);
  }
  return std::string("\x80\x03}(") + str("batch_label") + str("batch") + str("fine_labels") + int_list(fine) +
         str("coarse_labels") + int_list(coarse) + str("data") + uint8_array(n, data) + "u.";
}

/// CIFAR-100 meta: 100 fine names "fine_k" and 20 coarse names "coarse_k".
inline std::string cifar100_python_meta() {
  using namespace pickle_bytes;
  std::vector<std::string> fine, coarse;
  for (int k = 0; k < 100; ++k) fine.push_back("fine_" + std::to_string(k));
  for (int k = 0; k < 20; ++k) coarse.push_back("coarse_" + std::to_string(k));
  return std::string("\x80\x03}(") + str("fine_label_names") + str_list(fine) + str("coarse_label_names") +
         str_list(coarse) + "u.";
}

/// <root>/cifar-100-python/{train,test,meta} with `train` and `test` images; returns the release folder.
inline std::filesystem::path write_cifar100_python(const std::filesystem::path& root, std::int64_t train,
                                                   std::int64_t test) {
  const std::filesystem::path dir = root / "cifar-100-python";
  std::filesystem::create_directories(dir);
  write_file(dir / "train", cifar100_python_batch(0, train));
  write_file(dir / "test", cifar100_python_batch(train, test));
  write_file(dir / "meta", cifar100_python_meta());
  return dir;
}

/// Binary records of images [first, first + n): CIFAR-100 <coarse i % 20><fine (i * 3) % 100><3072>, CIFAR-10
/// <label i % 10><3072>.
inline std::string cifar_binary_batch(int classes, std::int64_t first, std::int64_t n) {
  std::string out;
  for (std::int64_t i = first; i < first + n; ++i) {
    if (classes == 100) out += static_cast<char>(i % 20);
    out += static_cast<char>(classes == 100 ? (i * 3) % 100 : i % 10);
    for (std::int64_t j = 0; j < 3072; ++j) out += static_cast<char>(cifar_pixel(i, j));
  }
  return out;
}

}  // namespace saq::test

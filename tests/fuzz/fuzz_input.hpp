#pragma once
// What every fuzz target shares: the input written to a file (the readers under test take paths), and the rule
// that a reader may refuse an input only with an exception — a crash, a hang or a sanitizer report is a bug.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace saq::fuzz {

/// The fuzz input as a file, rewritten for every input; `suffix` gives it the extension a reader expects.
inline const std::string& as_file(const std::uint8_t* data, std::size_t size, const char* suffix) {
  static const std::string path = std::string("/tmp/saq-fuzz-") + std::to_string(::getpid()) + suffix;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

}  // namespace saq::fuzz

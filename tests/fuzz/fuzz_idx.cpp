// Fashion-MNIST's IDX reader (gzipped or not) on arbitrary bytes.
#include <stdexcept>

#include "fuzz_input.hpp"
#include "idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& file = saq::fuzz::as_file(data, size, ".idx");
  for (std::int64_t dims : {1, 3}) {
    try {
      saq::plugins::read_idx_u8(file, dims);
    } catch (const std::exception&) {
    }
  }
  return 0;
}

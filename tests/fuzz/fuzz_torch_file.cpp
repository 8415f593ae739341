// PyTorch state_dict files (zip container + restricted unpickler) on arbitrary bytes.
#include <stdexcept>

#include <saq/torch_file.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& file = saq::fuzz::as_file(data, size, ".pth");
  try {
    saq::read_state_dict(file);
  } catch (const std::exception&) {
  }
  return 0;
}

// Every kind of file saqhost writes for itself (stage and final checkpoints, resume checkpoints, a samq search
// state) on arbitrary bytes, read as a StateDict by saq's restricted reader. Seeds: corpus/checkpoint, real
// files made by tests/fuzz/corpus/make_checkpoints.sh.
#include <stdexcept>

#include <saq/torch_file.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& file = saq::fuzz::as_file(data, size, ".pt");
  try {
    saq::read_state(file);
  } catch (const std::exception&) {
  }
  return 0;
}

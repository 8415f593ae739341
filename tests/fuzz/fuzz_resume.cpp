// saqhost checkpoints (resume.pt, stage .pt files) on arbitrary bytes: the zip-directory check that runs before
// LibTorch sees a file. LibTorch's own TorchScript archive reader is not fuzzed here: it crashes on corrupt
// archives in ways this project cannot fix (see libtorch_findings/README.md).
#include <stdexcept>

#include "checkpoint.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& file = saq::fuzz::as_file(data, size, ".pt");
  try {
    saq::host::check_archive_sizes(file);
  } catch (const std::exception&) {
  }
  return 0;
}

// saqhost resume checkpoints on arbitrary bytes: saq's restricted reader (zip directory check, pickle VM with
// its limits, storage bounds) and the resume point's typed reads. Seeds: a real resume.pt of each kind of
// stage (corpus/resume, made by tests/fuzz/corpus/make_checkpoints.sh).
#include <stdexcept>

#include "fuzz_input.hpp"
#include "resume.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& file = saq::fuzz::as_file(data, size, ".pt");
  try {
    saq::host::ResumeFile resume(file);
  } catch (const std::exception&) {
  }
  return 0;
}

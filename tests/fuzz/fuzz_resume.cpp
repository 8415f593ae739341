// saqhost's resume checkpoints on arbitrary bytes: reading one, then restoring it into a small model.
#include <stdexcept>

#include <saq/layers.hpp>

#include "fuzz_input.hpp"
#include "resume.hpp"

namespace {
struct Tiny : torch::nn::Module {
  Tiny() { fc = saq::linear(*this, "fc", 4, 2); }
  std::shared_ptr<saq::LinearLayer> fc;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& file = saq::fuzz::as_file(data, size, ".pt");
  try {
    saq::host::ResumeFile resume(file);
    Tiny model;
    resume.restore_model(model);
  } catch (const std::exception&) {
  }
  return 0;
}

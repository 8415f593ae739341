// The CIFAR readers (python pickle batches, binary batches, label-name files) on arbitrary bytes.
#include <stdexcept>

#include "cifar_files.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace cifar = saq::plugins::cifar;
  const std::string& file = saq::fuzz::as_file(data, size, ".cifar");
  auto quietly = [](auto&& f) {
    try {
      f();
    } catch (const std::exception&) {
    }
  };
  for (int classes : {10, 100}) {
    quietly([&] { cifar::read_python_batch(file, classes); });
    quietly([&] { cifar::read_binary_batch(file, classes); });
    quietly([&] { cifar::read_python_names(file, classes, classes == 100); });
  }
  quietly([&] { cifar::read_text_names(file); });
  return 0;
}

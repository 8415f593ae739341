// The restricted unpickler on arbitrary bytes, with the globals the CIFAR and PyTorch readers allow.
#include <stdexcept>

#include <saq/pickle.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const saq::pickle::Options options = [] {
    saq::pickle::Options o;
    o.source = "fuzz";
    o.globals = saq::pickle::numpy_globals();
    for (auto& [name, g] : saq::pickle::ordered_dict_globals()) o.globals.emplace(name, g);
    return o;
  }();
  try {
    saq::pickle::load(data, size, options);
  } catch (const std::exception&) {
  }
  return 0;
}

// The pipeline loader on arbitrary bytes: every problem must be an InputError (exit 2 with a message); any other
// exception would make saqhost exit 1 for bad input, and a crash is a crash.
#include <cstdlib>

#include "errors.hpp"
#include "fuzz_input.hpp"
#include "pipeline.hpp"
#include "plugin_host.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const saq::host::Registry* registry = [] {
    auto* r = new saq::host::Registry;  // the plugins' components stay loaded for the whole run
    saq::host::load_plugins(*r, saq::host::plugin_search_path({}));
    return r;
  }();
  const std::string& file = saq::fuzz::as_file(data, size, ".toml");
  try {
    saq::host::load_pipeline(file, {}, *registry);
  } catch (const saq::host::InputError&) {
  }
  return 0;
}

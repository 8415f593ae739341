#pragma once
/// The one C entry point of a plugin library, and the build fingerprint the host checks before using it.
#include <cstddef>
#include <cstdint>

#include <torch/version.h>

/// Bump on ANY change to a struct layout, a virtual function or an inline function in sdk/.
/// The host accepts a plugin only when this number, the LibTorch version and the C++11 string ABI all match.
#define SAQ_ABI_VERSION 6

#define SAQ_EXPORT extern "C" __attribute__((visibility("default")))
#define SAQ_VISIBLE __attribute__((visibility("default")))

namespace saq {

class Registrar;

/// Stamped into a plugin when it is compiled; compared field by field by the host.
struct BuildInfo {
  std::uint32_t abi;
  const char* torch_version;
  std::int32_t cxx11_abi;
};

/// What `saq_plugin_info` returns. `build` and `name` come first and never move, so a host of any ABI version
/// can read them and name both versions when it refuses a library.
struct PluginInfo {
  BuildInfo build;
  const char* name;
  const char* version;
  const char* description;
  void (*register_components)(Registrar&);
};

static_assert(sizeof(BuildInfo) == 24 && offsetof(BuildInfo, torch_version) == 8, "BuildInfo layout is frozen");
static_assert(offsetof(PluginInfo, name) == 24, "the PluginInfo prefix is frozen");

/// The fingerprint of the code including this header.
constexpr BuildInfo this_build() { return {SAQ_ABI_VERSION, TORCH_VERSION, _GLIBCXX_USE_CXX11_ABI}; }

}  // namespace saq

/// Defines the plugin's entry point; the block that follows registers its components:
///   SAQ_PLUGIN("my_plugin", "1.0.0", "what it offers", reg) { reg.add<MyQuantizer>("mine", "doc"); }
#define SAQ_PLUGIN(NAME, VERSION, DESCRIPTION, REG)                                                    \
  static void saq_register_components_(::saq::Registrar&);                                             \
  SAQ_EXPORT const ::saq::PluginInfo* saq_plugin_info() noexcept {                                    \
    static const ::saq::PluginInfo info{::saq::this_build(), NAME, VERSION, DESCRIPTION,              \
                                        &saq_register_components_};                                    \
    return &info;                                                                                      \
  }                                                                                                    \
  static void saq_register_components_(::saq::Registrar& REG)

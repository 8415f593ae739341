#pragma once
/// Finds plugin libraries, checks their build fingerprint, and lets them register into the Registry.
#include <filesystem>
#include <string>
#include <vector>

#include "registry.hpp"

namespace saq::host {

/// Where plugins are looked for, in order (the first library to register a name wins):
/// each --plugin-path, then $SAQ_PLUGIN_PATH (':'-separated), then — unless $SAQ_NO_DEFAULT_PLUGINS is set —
/// the build tree's plugins/ beside the executable and the install prefix's lib/saq/plugins.
std::vector<std::filesystem::path> plugin_search_path(const std::vector<std::string>& cli_paths);

/// Loads every plugin library found under `paths` (folders are searched recursively for *.so; a path that
/// names a file is loaded as given). A bad library found in a folder is recorded in registry.skipped; a bad
/// library named as a file is an InputError.
void load_plugins(Registry& registry, const std::vector<std::filesystem::path>& paths);

/// Loads one library. Returns "" on success, else why it was refused.
std::string load_plugin(Registry& registry, const std::filesystem::path& file);

}  // namespace saq::host

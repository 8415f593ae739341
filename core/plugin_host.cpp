#include "plugin_host.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include "errors.hpp"

#ifndef SAQ_INSTALL_PLUGIN_DIR
#define SAQ_INSTALL_PLUGIN_DIR "lib/saq/plugins"
#endif

namespace saq::host {

namespace fs = std::filesystem;

std::vector<fs::path> plugin_search_path(const std::vector<std::string>& cli_paths) {
  std::vector<fs::path> out(cli_paths.begin(), cli_paths.end());
  if (const char* env = std::getenv("SAQ_PLUGIN_PATH")) {
    std::stringstream ss(env);
    for (std::string item; std::getline(ss, item, ':');)
      if (!item.empty()) out.emplace_back(item);
  }
  if (std::getenv("SAQ_NO_DEFAULT_PLUGINS")) return out;
  fs::path exe_dir = boost::dll::program_location().parent_path().string();
  if (fs::is_directory(exe_dir / "plugins")) out.push_back(exe_dir / "plugins");  // the build tree
  fs::path installed = SAQ_INSTALL_PLUGIN_DIR;  // relative to the prefix, or absolute
  if (installed.is_relative()) installed = exe_dir.parent_path() / installed;
  if (fs::is_directory(installed)) out.push_back(installed);
  return out;
}

namespace {

std::string describe(const BuildInfo& b) {
  return "SAQ ABI " + std::to_string(b.abi) + ", LibTorch " + (b.torch_version ? b.torch_version : "?") +
         ", cxx11-abi " + std::to_string(b.cxx11_abi);
}

std::string fingerprint_mismatch(const BuildInfo& got) {
  BuildInfo want = this_build();
  bool same = got.abi == want.abi && got.cxx11_abi == want.cxx11_abi && got.torch_version &&
              std::strcmp(got.torch_version, want.torch_version) == 0;
  if (same) return "";
  return "built for " + describe(got) + "; this host is " + describe(want) + ": rebuild the plugin against this SDK";
}

}  // namespace

std::string load_plugin(Registry& registry, const fs::path& file) {
  namespace dll = boost::dll;
  auto mode = dll::load_mode::rtld_now | dll::load_mode::rtld_local |
              static_cast<dll::load_mode::type>(RTLD_NODELETE);  // never unmapped: see plugin-lifetime notes
  boost::dll::fs::error_code ec;
  auto lib = std::make_shared<dll::shared_library>(file.string(), mode, ec);
  if (ec) {
    const char* why = dlerror();
    return "cannot be opened: " + std::string(why ? why : ec.message());
  }
  if (!lib->has("saq_plugin_info")) return "not a saq plugin (no saq_plugin_info symbol)";
  auto info_fn = lib->get<const PluginInfo*() noexcept>("saq_plugin_info");
  const PluginInfo* info = info_fn();
  if (!info) return "saq_plugin_info returned null";
  std::string mismatch = fingerprint_mismatch(info->build);
  if (!mismatch.empty()) return "plugin '" + std::string(info->name ? info->name : "?") + "' " + mismatch;

  auto record = std::make_shared<PluginRecord>();
  record->path = file.string();
  record->name = info->name ? info->name : "";
  record->version = info->version ? info->version : "";
  record->description = info->description ? info->description : "";
  record->handle = lib;
  registry.begin_plugin(record);
  try {
    info->register_components(registry);
  } catch (const std::exception& e) {
    registry.drop_plugin(record.get());
    return "registration failed: " + std::string(e.what());
  }
  return "";
}

void load_plugins(Registry& registry, const std::vector<fs::path>& paths) {
  std::set<fs::path> seen;
  auto try_load = [&](const fs::path& file, bool named) {
    fs::path canonical = fs::weakly_canonical(file);
    if (!seen.insert(canonical).second) return;
    std::string why = load_plugin(registry, canonical);
    if (why.empty()) return;
    if (named) throw InputError("plugin library " + canonical.string() + ": " + why);
    registry.skipped.push_back({canonical.string(), why});
  };
  for (const auto& p : paths) {
    if (fs::is_regular_file(p)) {
      try_load(p, true);
      continue;
    }
    if (!fs::is_directory(p)) {
      registry.warnings.push_back("plugin path " + p.string() + " does not exist");
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied))
      if (e.is_regular_file() && e.path().extension() == ".so") files.push_back(e.path());
    std::sort(files.begin(), files.end());  // a stable order makes "first one wins" predictable
    for (const auto& f : files) try_load(f, false);
  }
}

}  // namespace saq::host

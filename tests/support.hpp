#pragma once
/// Helpers shared by the test executables.
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline.hpp"
#include "registry.hpp"

namespace saq::test {

/// The registry of this build tree's plugins (loaded once, from $SAQ_PLUGIN_PATH).
const host::Registry& registry();

/// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);

/// Validates a pipeline written from `text` into a temp file named `name`.
host::Pipeline pipeline_from_text(const TempDir& dir, const std::string& text,
                                  const std::vector<std::string>& overrides = {},
                                  const std::string& name = "pipeline.toml");

/// The message of the InputError that loading `text` throws, or "" when it loads.
std::string pipeline_error(const TempDir& dir, const std::string& text, const std::vector<std::string>& overrides = {});

/// Whether `part` occurs in `text`.
inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
/// The part of `text` from `from` up to the next `to` after it (to the end when `to` is empty or absent); empty
/// when `from` is absent. For output that tells several files one after another, each under its own heading.
inline std::string between(const std::string& text, const std::string& from, const std::string& to = "") {
  const auto at = text.find(from);
  if (at == std::string::npos) return "";
  const auto end = to.empty() ? std::string::npos : text.find(to, at + from.size());
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

/// An environment variable the test suite sets (see tests/meson.build).
std::string env(const char* name);

/// Runs a shell command, capturing stdout+stderr; returns the exit status.
int run_command(const std::string& command, std::string& output);

}  // namespace saq::test

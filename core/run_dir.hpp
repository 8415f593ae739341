#pragma once
/// The run directory: resolved pipeline, log, metrics.jsonl, summary.json, checkpoints.
#include <filesystem>
#include <functional>
#include <cstdint>
#include <fstream>
#include <string>

namespace saq::host {

/// Writes `path` all or nothing: `write` fills a temporary file beside it, which is flushed to disk and renamed
/// over `path`, so a crash leaves either the old file or the new one. Throws RunError naming the path.
void write_atomically(const std::filesystem::path& path, const std::function<void(const std::filesystem::path&)>& write);
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

class RunDir {
 public:
  /// Creates <out_dir>/<name>, or <name>.1, <name>.2, … when it exists: an earlier run is never overwritten.
  RunDir(const std::filesystem::path& out_dir, const std::string& name);
  /// Reopens the run directory `existing` to resume it: metrics.jsonl is cut back to its first `metrics_bytes`
  /// bytes, the lines a killed run wrote after its last checkpoint (the resumed run writes them again).
  RunDir(const std::filesystem::path& existing, std::uint64_t metrics_bytes);
  /// The run directory as a data-parallel rank other than 0 sees it: it names `path` and writes nothing.
  static RunDir observer(const std::filesystem::path& path);
  /// False for an observer.
  bool writes() const { return writes_; }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path checkpoint(const std::string& name) const { return path_ / "checkpoints" / name; }
  /// Appends one line to metrics.jsonl, flushed at once.
  void metrics(const std::string& json_line);
  /// Bytes in metrics.jsonl so far (a resume checkpoint records it).
  std::uint64_t metrics_bytes() const { return metrics_bytes_; }

 private:
  std::filesystem::path path_;
  std::ofstream metrics_;
  std::uint64_t metrics_bytes_ = 0;
  bool writes_ = true;
  RunDir() = default;
};

}  // namespace saq::host

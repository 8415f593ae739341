#include "run_dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.hpp"

namespace saq::host {

namespace fs = std::filesystem;

namespace {
void sync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) throw RunError(p.string() + ": cannot open to sync: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw RunError(p.string() + ": fsync failed: " + std::strerror(err));
}
}  // namespace

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  fs::path tmp = path;
  tmp += ".tmp";
  errno = 0;
  try {
    write(tmp);
    sync_path(tmp, false);
    fs::rename(tmp, path);
  } catch (const std::exception& e) {
    const int err = errno;  // LibTorch's writer reports "file write failed" without the cause
    std::error_code ec;
    fs::remove(tmp, ec);
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    if (err != 0 && what.find(std::strerror(err)) == std::string::npos) what += std::string(" (") + std::strerror(err) + ")";
    throw RunError("cannot write " + path.string() + " (the previous version, if any, is intact): " + what);
  }
  // The new file is in place; syncing its folder makes the rename itself durable.
  sync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path(), true);
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error(std::string("write failed: ") + std::strerror(errno));
  });
}

RunDir::RunDir(const fs::path& out_dir, const std::string& name) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw InputError("run.out_dir: cannot create " + out_dir.string() + ": " + ec.message());
  path_ = out_dir / name;
  for (int i = 1; fs::exists(path_); ++i) path_ = out_dir / (name + "." + std::to_string(i));
  fs::create_directories(path_ / "checkpoints", ec);
  if (ec) throw InputError("run.out_dir: cannot create " + path_.string() + ": " + ec.message());
  metrics_.open(path_ / "metrics.jsonl", std::ios::app);
  if (!metrics_) throw InputError("run.out_dir: cannot write in " + path_.string());
}

RunDir::RunDir(const fs::path& existing, std::uint64_t metrics_bytes) : path_(existing), metrics_bytes_(metrics_bytes) {
  const fs::path file = path_ / "metrics.jsonl";
  std::error_code ec;
  if (!fs::exists(file)) throw InputError(file.string() + ": missing; cannot resume this run");
  if (fs::file_size(file) < metrics_bytes)
    throw InputError(file.string() + ": shorter than its checkpoint records (" + std::to_string(metrics_bytes) +
                     " bytes); cannot resume this run");
  fs::resize_file(file, metrics_bytes, ec);
  if (ec) throw InputError(file.string() + ": cannot truncate to resume: " + ec.message());
  metrics_.open(file, std::ios::app);
  if (!metrics_) throw InputError("cannot write in " + path_.string());
}

RunDir RunDir::observer(const fs::path& path) {
  RunDir d;
  d.path_ = path;
  d.writes_ = false;
  return d;
}

void RunDir::metrics(const std::string& json_line) {
  if (!writes_) return;
  metrics_ << json_line << '\n';
  metrics_bytes_ += json_line.size() + 1;
  metrics_.flush();
  if (!metrics_) throw RunError((path_ / "metrics.jsonl").string() + ": write failed: " + std::strerror(errno));
}

}  // namespace saq::host

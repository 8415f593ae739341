// The run directory never overwrites an earlier run, and atomic writes leave the old file or the new one.
#include "unit.hpp"

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

#include "errors.hpp"
#include "run_dir.hpp"

namespace saq::host {

namespace fs = std::filesystem;

namespace {
std::string run_error(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  try {
    write_atomically(path, write);
  } catch (const RunError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("RunDir takes name, then name.1, name.2: an earlier run is never overwritten") {
  test::TempDir tmp;
  const fs::path out = tmp / "runs";  // created on demand
  RunDir a(out, "exp");
  RunDir b(out, "exp");
  RunDir c(out, "exp");
  CHECK(a.path() == out / "exp");
  CHECK(b.path() == out / "exp.1");
  CHECK(c.path() == out / "exp.2");
  CHECK(fs::is_directory(c.checkpoint("x").parent_path()));
  CHECK(c.checkpoint("stage0.pt") == out / "exp.2" / "checkpoints" / "stage0.pt");
}

TEST_CASE("metrics() appends one line per call") {
  test::TempDir tmp;
  RunDir dir(tmp.path(), "exp");
  dir.metrics("{\"a\":1}");
  dir.metrics("{\"b\":2}");
  CHECK(test::read_file(dir.path() / "metrics.jsonl") == "{\"a\":1}\n{\"b\":2}\n");
}

TEST_CASE("write_text_atomically creates, then replaces the whole content, leaving no .tmp") {
  test::TempDir tmp;
  const fs::path file = tmp / "summary.json";
  write_text_atomically(file, "a long first version\n");
  CHECK(test::read_file(file) == "a long first version\n");
  write_text_atomically(file, "short\n");
  CHECK(test::read_file(file) == "short\n");
  CHECK_FALSE(fs::exists(tmp / "summary.json.tmp"));
}

TEST_CASE("when the write fails half way, the previous file is intact and no .tmp is left") {
  test::TempDir tmp;
  const fs::path file = tmp / "model.pt";
  write_text_atomically(file, "old");
  std::string msg = run_error(file, [](const fs::path& t) {
    test::write_file(t, "half of the new");
    throw std::runtime_error("disk full");
  });
  CHECK(msg == "cannot write " + file.string() + " (the previous version, if any, is intact): disk full");
  CHECK(test::read_file(file) == "old");
  CHECK_FALSE(fs::exists(tmp / "model.pt.tmp"));
}

TEST_CASE("a path that cannot be written gives a RunError naming it") {
  test::TempDir tmp;
  // A parent that is a regular file stops root too, who ignores permissions.
  test::write_file(tmp / "plain", "x");
  const fs::path under_file = tmp / "plain" / "out.json";
  CHECK_THROWS_WITH_AS(write_text_atomically(under_file, "new"),
                       doctest::Contains(("cannot write " + under_file.string()).c_str()), RunError);

  // A directory in the way of the rename: it is left as it was.
  fs::create_directories(tmp / "busy");
  CHECK_THROWS_WITH_AS(write_text_atomically(tmp / "busy", "new"), doctest::Contains((tmp / "busy").string().c_str()),
                       RunError);
  CHECK(fs::is_directory(tmp / "busy"));
  CHECK_FALSE(fs::exists(tmp / "busy.tmp"));

  if (::geteuid() != 0) {  // permissions bind only non-root users
    const fs::path locked = tmp / "locked";
    fs::create_directories(locked);
    write_text_atomically(locked / "f.txt", "old");
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    CHECK_THROWS_WITH_AS(write_text_atomically(locked / "f.txt", "new"),
                         doctest::Contains((locked / "f.txt").string().c_str()), RunError);
    fs::permissions(locked, fs::perms::owner_all);
    CHECK(test::read_file(locked / "f.txt") == "old");
  }
}

}  // namespace saq::host

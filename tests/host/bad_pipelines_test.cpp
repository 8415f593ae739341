// Every malformed pipeline of tests/data/bad_pipelines (see its README.md): saqhost exits 2 with the expected
// message, naming the file (and the line and column where the file says so), and never crashes or hangs.
#include "unit.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support.hpp"

extern char** environ;

namespace fs = std::filesystem;
using saq::test::TempDir;

namespace {

struct Case {
  fs::path file;
  std::string expect, at, command = "validate";
  pid_t pid = -1;
  int status = -1;  ///< exit status, or 128 + signal
  std::string err;  ///< stderr
};

/// Reads the "# expect: ...", "# at: L:C" and "# command: ..." header of a corpus file.
Case read_case(const fs::path& file) {
  Case c;
  c.file = file;
  std::ifstream in(file, std::ios::binary);
  for (std::string line; std::getline(in, line) && line.rfind("# ", 0) == 0;) {
    auto field = [&](const std::string& name, std::string& out) {
      if (line.rfind("# " + name + ": ", 0) == 0) out = line.substr(name.size() + 4);
    };
    field("expect", c.expect);
    field("at", c.at);
    field("command", c.command);
  }
  return c;
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

/// Starts saqhost on the case in its own folder under `root` (relative paths in a pipeline resolve there).
void start(Case& c, const fs::path& root) {
  const fs::path dir = root / c.file.stem();
  fs::create_directories(dir);
  const std::string out = c.command == "run" ? " --set run.out_dir=" + quoted(dir / "runs") : "";
  const std::string cmd = "cd " + quoted(dir) + " && exec timeout 60 " + saq::test::env("SAQHOST") + " " + c.command +
                          " " + quoted(c.file) + out + " >/dev/null 2>stderr.txt";
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  REQUIRE(::posix_spawn(&c.pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
}

void finish(Case& c, const fs::path& root) {
  int st = 0;
  REQUIRE(::waitpid(c.pid, &st, 0) == c.pid);
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  c.err = saq::test::read_file(root / c.file.stem() / "stderr.txt");
}

}  // namespace

TEST_CASE("every malformed pipeline exits 2 with its expected message, naming the file, without crashing") {
  const fs::path folder = fs::path(saq::test::env("SAQ_SOURCE_ROOT")) / "tests/data/bad_pipelines";
  std::vector<Case> cases;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.path().extension() == ".toml") cases.push_back(read_case(e.path()));
  std::sort(cases.begin(), cases.end(), [](const Case& a, const Case& b) { return a.file < b.file; });
  REQUIRE(cases.size() >= 40);

  // saqhost spends ~0.3 s starting LibTorch: run a few at a time.
  TempDir tmp;
  const size_t width = std::clamp<size_t>(std::thread::hardware_concurrency(), 2, 8);
  for (size_t first = 0; first < cases.size(); first += width) {
    const size_t last = std::min(cases.size(), first + width);
    for (size_t i = first; i < last; ++i) start(cases[i], tmp.path());
    for (size_t i = first; i < last; ++i) finish(cases[i], tmp.path());
  }

  for (const Case& c : cases) {
    const std::string name = c.file.filename().string();
    INFO(name << " (" << c.command << "), stderr:\n" << c.err);
    REQUIRE_FALSE(c.expect.empty());  // the file's first line is "# expect: ..."
    CHECK(c.status == 2);            // 124: hung (killed after 60 s); > 128: killed by a signal
    CHECK(c.err.find("saqhost: error: ") != std::string::npos);
    CHECK(c.err.find(c.expect) != std::string::npos);
    CHECK(c.err.find(name) != std::string::npos);
    if (!c.at.empty()) CHECK(c.err.find(name + ":" + c.at + ":") != std::string::npos);
    for (const char* crash : {"terminate called", "Sanitizer", "runtime error:", "Segmentation fault", "frame #"})
      CHECK(c.err.find(crash) == std::string::npos);
  }
}

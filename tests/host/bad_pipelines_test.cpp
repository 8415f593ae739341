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
  int status = -1;  ///< saqhost's exit status, or 128 + signal
  std::string err;  ///< what saqhost told of this file
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

/// One saqhost process in its own folder `dir` (relative paths in a pipeline resolve there), stderr kept there.
struct Process {
  explicit Process(fs::path folder) : dir(std::move(folder)) {}
  fs::path dir;
  pid_t pid = -1;
  int status = -1;  ///< exit status, or 128 + signal
  std::string err;

  void start(const std::string& args) {
    fs::create_directories(dir);
    const std::string cmd = "cd " + quoted(dir) + " && exec timeout 60 " + saq::test::env("SAQHOST") + " " + args +
                            " >/dev/null 2>stderr.txt";
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    REQUIRE(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
  }
  void finish() {
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    err = saq::test::read_file(dir / "stderr.txt");
  }
};

/// The stderr of `saqhost validate A B ...` cut at each "saqhost: error: ", one piece per bad file, in order.
std::vector<std::string> error_blocks(const std::string& err) {
  const std::string mark = "saqhost: error: ";
  std::vector<std::string> blocks;
  for (std::size_t at = err.find(mark); at != std::string::npos;) {
    const std::size_t next = err.find(mark, at + mark.size());
    blocks.push_back(err.substr(at, next == std::string::npos ? std::string::npos : next - at));
    at = next;
  }
  return blocks;
}

}  // namespace

TEST_CASE("every malformed pipeline exits 2 with its expected message, naming the file, without crashing") {
  const fs::path folder = fs::path(saq::test::env("SAQ_SOURCE_ROOT")) / "tests/data/bad_pipelines";
  std::vector<Case> cases;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.path().extension() == ".toml") cases.push_back(read_case(e.path()));
  std::sort(cases.begin(), cases.end(), [](const Case& a, const Case& b) { return a.file < b.file; });
  REQUIRE(cases.size() >= 40);

  // saqhost spends ~0.5 s (~1 s under ASan) starting LibTorch: the validate cases go to a few processes of many
  // files each (validate checks each file on its own and tells one error per bad file), the run cases one each.
  TempDir tmp;
  const size_t width = std::clamp<size_t>(std::thread::hardware_concurrency(), 2, 8);
  std::vector<std::vector<Case*>> groups(width);
  std::vector<Case*> runs;
  size_t n_validate = 0;
  for (Case& c : cases)
    if (c.command == "validate") groups[n_validate++ % width].push_back(&c);
    else runs.push_back(&c);
  std::vector<Process> procs;
  for (size_t g = 0; g < width; ++g) {
    procs.emplace_back(tmp.path() / ("validate" + std::to_string(g)));
    std::string files;
    for (const Case* c : groups[g]) files += " " + quoted(c->file);
    procs.back().start("validate" + files);
  }
  for (Process& p : procs) p.finish();
  for (size_t g = 0; g < width; ++g) {
    const std::vector<std::string> blocks = error_blocks(procs[g].err);
    INFO("saqhost validate of " << groups[g].size() << " files, stderr:\n" << procs[g].err);
    REQUIRE(blocks.size() == groups[g].size());  // one error per file, none accepted
    for (size_t i = 0; i < blocks.size(); ++i) {
      groups[g][i]->status = procs[g].status;
      groups[g][i]->err = blocks[i];
    }
    for (const char* crash : {"terminate called", "Sanitizer", "runtime error:", "Segmentation fault", "frame #"})
      CHECK(procs[g].err.find(crash) == std::string::npos);
  }
  for (Case* c : runs) {
    Process p(tmp.path() / c->file.stem());
    p.start(c->command + " " + quoted(c->file) + (c->command == "run" ? " --set run.out_dir=" + quoted(p.dir / "runs") : ""));
    p.finish();
    c->status = p.status;
    c->err = p.err;
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

#include "support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "errors.hpp"
#include "plugin_host.hpp"

namespace saq::test {

namespace fs = std::filesystem;

const host::Registry& registry() {
  static host::Registry* reg = [] {
    auto* r = new host::Registry();  // never destroyed: plugin objects may outlive static destruction order
    host::load_plugins(*r, host::plugin_search_path({}));
    return r;
  }();
  return *reg;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("saq-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

host::Pipeline pipeline_from_text(const TempDir& dir, const std::string& text, const std::vector<std::string>& overrides,
                                  const std::string& name) {
  write_file(dir / name, text);
  return host::load_pipeline((dir / name).string(), overrides, registry());
}

std::string pipeline_error(const TempDir& dir, const std::string& text, const std::vector<std::string>& overrides) {
  try {
    pipeline_from_text(dir, text, overrides);
  } catch (const host::InputError& e) {
    return e.what();
  }
  return "";
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (!v) throw std::runtime_error(std::string("$") + name + " is not set: run the tests with `meson test`");
  return v;
}

int run_command(const std::string& command, std::string& output) {
  output.clear();
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace saq::test

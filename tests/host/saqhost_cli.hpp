#pragma once
/// Running the saqhost binary ($SAQHOST) from a test, on a pipeline written into a temp folder.
#include <string>

#include "support.hpp"

namespace saq::test {

struct CliResult {
  int status;
  std::string output;  ///< stdout and stderr together
  bool has(const std::string& s) const { return output.find(s) != std::string::npos; }
};

inline CliResult saqhost(const std::string& args) {
  CliResult r;
  r.status = run_command(env("SAQHOST") + " " + args, r.output);
  return r;
}

/// How many times `what` occurs in `text`.
inline std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// `saqhost <args>` with extra environment assignments ("A=1 B=2").
inline CliResult saqhost_cmd(const std::string& env_assignments, const std::string& args) {
  CliResult r;
  r.status = run_command(env_assignments + " " + env("SAQHOST") + " " + args, r.output);
  return r;
}

/// Writes `text` to <dir>/p.toml and runs `saqhost <command> <dir>/p.toml <extra>`.
inline CliResult saqhost_on(const TempDir& dir, const std::string& text, const std::string& command = "validate",
                            const std::string& extra = "") {
  write_file(dir / "p.toml", text);
  return saqhost(command + " " + (dir / "p.toml").string() + " " + extra);
}

}  // namespace saq::test

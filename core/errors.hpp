#pragma once
/// Host-side error kinds; they decide the exit status. Plugins throw standard exceptions only.
#include <stdexcept>
#include <string>
#include <vector>

namespace saq::host {

/// Bad input: a pipeline, a key, a plugin library, a data file. Exit status 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Training cannot go on (a non-finite loss, say). Exit status 1.
struct RunError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The run stopped at a signal (SIGINT, SIGTERM) after saving a checkpoint it can resume from.
/// Exit status 128 + signal, as a shell reports a process killed by it.
struct Interrupted : std::runtime_error {
  Interrupted(const std::string& what, int signal) : std::runtime_error(what), signal(signal) {}
  int signal;
};

/// "did you mean 'x'?" for the candidate closest to `word` by edit distance, or "" when none is close.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
/// "a, b, c"
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

}  // namespace saq::host

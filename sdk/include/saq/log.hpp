#pragma once
/// The host's logger as plugins see it: one virtual, so plugins never depend on spdlog.
#include <string>

#include <saq/abi.hpp>

namespace saq {

enum class LogLevel { Debug, Info, Warn, Error };

class SAQ_VISIBLE Log {
 public:
  virtual void write(LogLevel level, const std::string& message) const = 0;
  void debug(const std::string& m) const { write(LogLevel::Debug, m); }
  void info(const std::string& m) const { write(LogLevel::Info, m); }
  void warn(const std::string& m) const { write(LogLevel::Warn, m); }

 protected:
  ~Log() = default;
};

}  // namespace saq

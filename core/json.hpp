#pragma once
/// A one-level JSON object writer: enough for metrics lines and summaries. Non-finite numbers become null.
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <sstream>
#include <string>

namespace saq::host {

class JsonObject {
 public:
  JsonObject& add(const std::string& key, double v) {
    if (!std::isfinite(v)) return raw(key, "null");
    std::ostringstream s;
    s.precision(10);
    s << v;
    return raw(key, s.str());
  }
  JsonObject& add(const std::string& key, std::int64_t v) { return raw(key, std::to_string(v)); }
  JsonObject& add(const std::string& key, int v) { return raw(key, std::to_string(v)); }
  JsonObject& add(const std::string& key, bool v) { return raw(key, v ? "true" : "false"); }
  JsonObject& add(const std::string& key, const std::string& v) { return raw(key, quote(v)); }
  JsonObject& add(const std::string& key, const char* v) { return raw(key, quote(v)); }
  /// `json` must already be valid JSON (a nested object, say).
  JsonObject& raw(const std::string& key, const std::string& json) {
    body_ += (body_.empty() ? "" : ", ") + quote(key) + ": " + json;
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }

  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
      else if (c == '\n') out += "\\n";
      else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else out += static_cast<char>(c);
    }
    return out + "\"";
  }

 private:
  std::string body_;
};

}  // namespace saq::host

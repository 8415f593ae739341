#pragma once
/// Typed, validated component parameters: the schema a component declares, and the values the host hands it.
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <saq/abi.hpp>

namespace saq {

/// The plugin kinds; each pipeline section picks one component of its kind with `use = "name"`.
enum class Kind { Dataset, Model, Optimizer, Quantizer, Search };
const char* kind_name(Kind kind);

class Params;
using ParamsPtr = std::shared_ptr<const Params>;

enum class ParamType { Bool, Int, Float, String, IntList, FloatList, StringList, Component, TableList };
const char* type_name(ParamType type);

class Schema;

/// A parameter value. Component-valued parameters (`base = { use = "sgd", lr = 0.1 }`) hold their own Params;
/// table lists (`[[stage.group]]`, `[[quantizer.rule]]`) hold one Params per table.
using Value = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
                           std::vector<double>, std::vector<std::string>, ParamsPtr, std::vector<ParamsPtr>>;

/// One declared parameter: name, type, default (none = required), allowed range or choices, and its doc line.
struct SAQ_VISIBLE ParamSpec {
  std::string name;
  ParamType type = ParamType::Float;
  std::optional<Value> fallback;
  std::string doc;
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  std::vector<std::string> choices;
  Kind component_kind = Kind::Optimizer;
  std::shared_ptr<const Schema> item_schema;  ///< TableList: the schema of each table
  bool is_optional = false;                   ///< no default, yet not required: Params::has() tells


  ParamSpec& min(double v) { lo = v; lo_open = false; return *this; }
  ParamSpec& max(double v) { hi = v; hi_open = false; return *this; }
  ParamSpec& above(double v) { lo = v; lo_open = true; return *this; }
  ParamSpec& below(double v) { hi = v; hi_open = true; return *this; }
  ParamSpec& required() { fallback.reset(); is_optional = false; return *this; }
  ParamSpec& optional() { fallback.reset(); is_optional = true; return *this; }
  /// "[0, inf)", "(0, 1]", or "" when unbounded.
  std::string range_text() const;
  /// The range/choice violation of a number or string, or "" when it is allowed.
  std::string check(double v) const;
  std::string check(const std::string& s) const;
};

/// The parameters a component accepts. Keys outside the schema are rejected by the host, with a suggestion.
class SAQ_VISIBLE Schema {
 public:
  ParamSpec& boolean(std::string name, bool fallback, std::string doc);
  ParamSpec& integer(std::string name, std::int64_t fallback, std::string doc);
  ParamSpec& real(std::string name, double fallback, std::string doc);
  ParamSpec& string(std::string name, std::string fallback, std::string doc);
  ParamSpec& choice(std::string name, std::string fallback, std::vector<std::string> choices, std::string doc);
  ParamSpec& integers(std::string name, std::vector<std::int64_t> fallback, std::string doc);
  ParamSpec& reals(std::string name, std::vector<double> fallback, std::string doc);
  ParamSpec& strings(std::string name, std::vector<std::string> fallback, std::string doc);
  /// A nested component of `kind`, given as an inline table with its own `use`.
  ParamSpec& component(std::string name, Kind kind, std::string default_use, std::string doc);
  /// An ordered list of tables, each checked against `item` (default: empty).
  ParamSpec& tables(std::string name, Schema item, std::string doc);

  const ParamSpec* find(const std::string& name) const;
  const std::deque<ParamSpec>& specs() const { return specs_; }
  /// Adds every spec of `other` (host keys shared by a section, say).
  Schema& merge(const Schema& other);

 private:
  ParamSpec& add(std::string name, ParamType type, std::optional<Value> fallback, std::string doc);
  std::deque<ParamSpec> specs_;  // a deque: the references add() hands out stay valid
};

/// The validated values of one pipeline section, every default filled in. Built by the host.
class SAQ_VISIBLE Params {
 public:
  /// Where a value came from: "file.toml:12:5", "--set", or "default".
  struct Entry {
    Value value;
    std::string origin;
  };

  Params(std::string section, std::string use, std::string origin)
      : section_(std::move(section)), use_(std::move(use)), origin_(std::move(origin)) {}

  /// The typed value of `key`. T: bool, int, std::int64_t, double, std::string, or a vector of those.
  template <class T>
  T get(const std::string& key) const;
  /// The parameters of a component-valued key.
  const Params& child(const std::string& key) const;
  /// The tables of a table-list key, in file order.
  const std::vector<ParamsPtr>& tables(const std::string& key) const;
  bool has(const std::string& key) const { return entries_.count(key) != 0; }

  /// Throws std::invalid_argument as "origin: section.key: message" (what the host prints).
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  const std::string& section() const { return section_; }  ///< e.g. "optimizer" or "optimizer.base"
  const std::string& use() const { return use_; }          ///< the component name
  const std::string& origin() const { return origin_; }    ///< where the section itself was written
  const std::map<std::string, Entry>& entries() const { return entries_; }
  void set(const std::string& key, Value value, std::string origin);

 private:
  const Entry& entry(const std::string& key) const;
  std::string section_, use_, origin_;
  std::map<std::string, Entry> entries_;
};

template <> bool Params::get<bool>(const std::string&) const;
template <> std::int64_t Params::get<std::int64_t>(const std::string&) const;
template <> int Params::get<int>(const std::string&) const;
template <> double Params::get<double>(const std::string&) const;
template <> std::string Params::get<std::string>(const std::string&) const;
template <> std::vector<std::int64_t> Params::get<std::vector<std::int64_t>>(const std::string&) const;
template <> std::vector<double> Params::get<std::vector<double>>(const std::string&) const;
template <> std::vector<std::string> Params::get<std::vector<std::string>>(const std::string&) const;

/// A value as TOML writes it ("0.1", "[80, 120]", "\"sgd\"").
std::string to_toml(const Value& value);

}  // namespace saq

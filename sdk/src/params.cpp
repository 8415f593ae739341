#include <saq/params.hpp>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace saq {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::Dataset: return "dataset";
    case Kind::Model: return "model";
    case Kind::Optimizer: return "optimizer";
    case Kind::Quantizer: return "quantizer";
    case Kind::Search: return "search";
  }
  return "?";
}

const char* type_name(ParamType type) {
  switch (type) {
    case ParamType::Bool: return "bool";
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::String: return "string";
    case ParamType::IntList: return "int list";
    case ParamType::FloatList: return "float list";
    case ParamType::StringList: return "string list";
    case ParamType::Component: return "component";
    case ParamType::TableList: return "table list";
  }
  return "?";
}

namespace {
std::string number_text(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}
}  // namespace

std::string ParamSpec::range_text() const {
  if (std::isinf(lo) && std::isinf(hi)) return "";
  return std::string(lo_open || std::isinf(lo) ? "(" : "[") + number_text(lo) + ", " + number_text(hi) +
         (hi_open || std::isinf(hi) ? ")" : "]");
}

std::string ParamSpec::check(double v) const {
  bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi) && !std::isnan(v);
  if (ok) return "";
  std::string range = range_text();
  return (range.empty() ? std::string("must be a number") : "must be in " + range) + ", got " + number_text(v);
}

std::string ParamSpec::check(const std::string& s) const {
  if (choices.empty()) return "";
  for (const auto& c : choices)
    if (c == s) return "";
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + ("\"" + c + "\"");
  return "must be one of " + list + ", got \"" + s + "\"";
}

ParamSpec& Schema::add(std::string name, ParamType type, std::optional<Value> fallback, std::string doc) {
  for (auto& s : specs_)
    if (s.name == name) throw std::logic_error("schema declares '" + name + "' twice");
  ParamSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.fallback = std::move(fallback);
  spec.doc = std::move(doc);
  return specs_.emplace_back(std::move(spec));
}

ParamSpec& Schema::boolean(std::string n, bool f, std::string d) { return add(std::move(n), ParamType::Bool, f, std::move(d)); }
ParamSpec& Schema::integer(std::string n, std::int64_t f, std::string d) {
  return add(std::move(n), ParamType::Int, f, std::move(d));
}
ParamSpec& Schema::real(std::string n, double f, std::string d) { return add(std::move(n), ParamType::Float, f, std::move(d)); }
ParamSpec& Schema::string(std::string n, std::string f, std::string d) {
  return add(std::move(n), ParamType::String, std::move(f), std::move(d));
}
ParamSpec& Schema::choice(std::string n, std::string f, std::vector<std::string> c, std::string d) {
  auto& s = add(std::move(n), ParamType::String, std::move(f), std::move(d));
  s.choices = std::move(c);
  return s;
}
ParamSpec& Schema::integers(std::string n, std::vector<std::int64_t> f, std::string d) {
  return add(std::move(n), ParamType::IntList, std::move(f), std::move(d));
}
ParamSpec& Schema::reals(std::string n, std::vector<double> f, std::string d) {
  return add(std::move(n), ParamType::FloatList, std::move(f), std::move(d));
}
ParamSpec& Schema::strings(std::string n, std::vector<std::string> f, std::string d) {
  return add(std::move(n), ParamType::StringList, std::move(f), std::move(d));
}
ParamSpec& Schema::component(std::string n, Kind kind, std::string use, std::string d) {
  auto defaults = std::make_shared<Params>("", use, "default");
  auto& s = add(std::move(n), ParamType::Component, ParamsPtr(defaults), std::move(d));
  s.component_kind = kind;
  return s;
}

ParamSpec& Schema::tables(std::string n, Schema item, std::string d) {
  auto& s = add(std::move(n), ParamType::TableList, std::vector<ParamsPtr>{}, std::move(d));
  s.item_schema = std::make_shared<const Schema>(std::move(item));
  return s;
}

const ParamSpec* Schema::find(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

Schema& Schema::merge(const Schema& other) {
  for (const auto& s : other.specs_) {
    if (find(s.name)) throw std::logic_error("schema declares '" + s.name + "' twice");
    specs_.push_back(s);
  }
  return *this;
}

void Params::set(const std::string& key, Value value, std::string origin) {
  entries_[key] = Entry{std::move(value), std::move(origin)};
}

const Params::Entry& Params::entry(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end())
    throw std::logic_error(section_ + "." + key + ": read but not declared in the schema of '" + use_ + "'");
  return it->second;
}

void Params::fail(const std::string& key, const std::string& message) const {
  auto it = entries_.find(key);
  const std::string& where = it != entries_.end() && it->second.origin != "default" ? it->second.origin : origin_;
  std::string path = section_.empty() ? key : section_ + "." + key;
  throw std::invalid_argument((where.empty() ? "" : where + ": ") + path + ": " + message);
}

namespace {
template <class T>
const T& as(const Params& p, const std::string& key, const Value& v) {
  if (auto x = std::get_if<T>(&v)) return *x;
  p.fail(key, "has the wrong type for this read");
}
}  // namespace

template <> bool Params::get<bool>(const std::string& k) const { return as<bool>(*this, k, entry(k).value); }
template <> std::int64_t Params::get<std::int64_t>(const std::string& k) const {
  return as<std::int64_t>(*this, k, entry(k).value);
}
template <> int Params::get<int>(const std::string& k) const {
  std::int64_t v = get<std::int64_t>(k);
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
    fail(k, "does not fit in an int, got " + std::to_string(v));
  return static_cast<int>(v);
}
template <> double Params::get<double>(const std::string& k) const {
  const Value& v = entry(k).value;
  if (auto i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return as<double>(*this, k, v);
}
template <> std::string Params::get<std::string>(const std::string& k) const {
  return as<std::string>(*this, k, entry(k).value);
}
template <> std::vector<std::int64_t> Params::get<std::vector<std::int64_t>>(const std::string& k) const {
  return as<std::vector<std::int64_t>>(*this, k, entry(k).value);
}
template <> std::vector<double> Params::get<std::vector<double>>(const std::string& k) const {
  return as<std::vector<double>>(*this, k, entry(k).value);
}
template <> std::vector<std::string> Params::get<std::vector<std::string>>(const std::string& k) const {
  return as<std::vector<std::string>>(*this, k, entry(k).value);
}

const Params& Params::child(const std::string& key) const { return *as<ParamsPtr>(*this, key, entry(key).value); }

const std::vector<ParamsPtr>& Params::tables(const std::string& key) const {
  return as<std::vector<ParamsPtr>>(*this, key, entry(key).value);
}

namespace {
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {  // TOML forbids raw control characters in basic strings
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}
std::string real_text(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  std::string t;
  for (int digits = 15; digits <= 17; ++digits) {  // the shortest text that reads back as the same double
    std::ostringstream s;
    s.precision(digits);
    s << v;
    t = s.str();
    if (std::stod(t) == v) break;
  }
  if (t.find_first_of(".eE") == std::string::npos) t += ".0";
  return t;
}
template <class T, class F>
std::string list(const std::vector<T>& xs, F f) {
  std::string out = "[";
  for (size_t i = 0; i < xs.size(); ++i) out += (i ? ", " : "") + f(xs[i]);
  return out + "]";
}
}  // namespace

std::string to_toml(const Value& value) {
  struct Visit {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return real_text(d); }
    std::string operator()(const std::string& s) const { return quote(s); }
    std::string operator()(const std::vector<std::int64_t>& v) const {
      return list(v, [](std::int64_t i) { return std::to_string(i); });
    }
    std::string operator()(const std::vector<double>& v) const { return list(v, real_text); }
    std::string operator()(const std::vector<std::string>& v) const { return list(v, quote); }
    std::string operator()(const ParamsPtr& p) const {
      std::string out;
      if (!p->use().empty()) out = "use = " + quote(p->use());
      for (const auto& [k, e] : p->entries()) out += (out.empty() ? "" : ", ") + k + " = " + to_toml(e.value);
      return "{ " + out + " }";
    }
    std::string operator()(const std::vector<ParamsPtr>& v) const {
      return list(v, [this](const ParamsPtr& p) { return (*this)(p); });
    }
  };
  return std::visit(Visit{}, value);
}

}  // namespace saq

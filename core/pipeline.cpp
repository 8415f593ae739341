#include "pipeline.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <toml++/toml.h>

#include "errors.hpp"
#include "host_schema.hpp"
#include "quantize.hpp"

namespace saq::host {

namespace {

const char* node_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "bool";
    default: return "date/time";
  }
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
  return out;
}

/// Sets `path` (split at dots) in `node` to `value`, creating tables as needed; `*` walks every array element.
/// Records each concrete dotted path it sets ("stage.1.epochs") in `set`.
void set_path(toml::node& node, const std::vector<std::string>& path, size_t i, const std::string& at,
              const toml::node& value, const std::string& text, std::map<std::string, std::string>& set) {
  const std::string& key = path[i];
  bool last = i + 1 == path.size();
  auto child_at = [&](const std::string& k) { return at.empty() ? k : at + "." + k; };
  if (auto* arr = node.as_array()) {
    std::vector<size_t> targets;
    if (key == "*") {
      for (size_t k = 0; k < arr->size(); ++k) targets.push_back(k);
    } else {
      size_t idx = 0;
      try {
        idx = std::stoul(key);
      } catch (...) {
        throw InputError("--set " + text + ": '" + key + "' is not an index into an array (use 0, 1, ... or *)");
      }
      if (idx >= arr->size())
        throw InputError("--set " + text + ": index " + key + " is past the end (" + std::to_string(arr->size()) +
                         " elements)");
      targets.push_back(idx);
    }
    for (size_t t : targets) {
      if (last) {
        arr->replace(arr->cbegin() + static_cast<std::ptrdiff_t>(t), value);
        set[child_at(std::to_string(t))] = text;
      } else {
        set_path(*arr->get(t), path, i + 1, child_at(std::to_string(t)), value, text, set);
      }
    }
    return;
  }
  auto* tbl = node.as_table();
  if (!tbl) throw InputError("--set " + text + ": '" + key + "' is inside a value that is not a table");
  if (last) {
    tbl->insert_or_assign(key, value);
    set[child_at(key)] = text;
    return;
  }
  if (!tbl->contains(key)) tbl->insert(key, toml::table{});
  set_path(*tbl->get(key), path, i + 1, child_at(key), value, text, set);
}

void apply_override(toml::table& root, const std::string& text, std::map<std::string, std::string>& overridden) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) throw InputError("--set " + text + ": expected section.key=value");
  std::string key = text.substr(0, eq), raw = text.substr(eq + 1);
  auto path = split(key, '.');
  for (const auto& p : path)
    if (p.empty()) throw InputError("--set " + text + ": empty name in '" + key + "'");
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + raw);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", raw}};  // a bare word: a string
  }
  set_path(root, path, 0, "", *parsed.get("v"), text, overridden);
}

/// What toml++'s message leaves the reader to guess, from the text at the error.
std::string syntax_hint(const toml::parse_error& e, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::string line;
  for (auto n = e.source().begin.line; n > 0 && std::getline(in, line);) --n;
  const size_t col = e.source().begin.column ? e.source().begin.column - 1 : 0;
  const char at = col < line.size() ? line[col] : '\n';
  const std::string what(e.description());
  auto has = [&](const char* s) { return what.find(s) != std::string::npos; };
  if (has("parsing string") && has("control characters") && at == '\n')
    return " (the string has no closing quote on this line)";
  if (has("inline table") && at == '\n') return " (an inline table { ... } must close on the line it opens)";
  if (has("could not determine value type") && std::isalpha(static_cast<unsigned char>(at)))
    return " (a string needs quotes: \"...\")";
  return "";
}

class Checker {
 public:
  Checker(std::string file, const Registry& reg, std::map<std::string, std::string> overridden)
      : file_(std::move(file)), reg_(reg), overridden_(std::move(overridden)) {}

  /// "file:line:col", or "--set" for values that came from an override.
  std::string where(const toml::node& n, const std::string& norm_path) const {
    auto o = overridden_.find(norm_path);
    if (o != overridden_.end()) return "--set " + o->second;
    const auto& src = n.source();
    if (src.begin.line == 0) return file_;
    return file_ + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
  }

  /// A component section: `use` picks it from the registry; keys are checked against host_keys + its schema.
  ParamsPtr component(const toml::node& node, const std::string& path, const std::string& norm, Kind kind,
                      const Schema* host_keys) const {
    const toml::table* t = node.as_table();
    if (!t) throw InputError(where(node, norm) + ": " + path + ": expected a table, got " + node_type_name(node));
    const toml::node* use = t->get("use");
    std::string what = std::string("which ") + kind_name(kind) + " to use";
    if (!use)
      throw InputError(where(node, norm) + ": " + path + ": missing 'use' (" + what + "; available: " +
                       join(reg_.names(kind)) + ")");
    if (!use->is_string())
      throw InputError(where(*use, norm + ".use") + ": " + path + ".use: expected a string, got " + node_type_name(*use));
    std::string name = use->value<std::string>().value();
    const Component& c = reg_.require(kind, name, where(*use, norm + ".use") + ": " + path + ".use");
    Schema schema = host_keys ? *host_keys : Schema();
    schema.merge(c.desc.schema);
    auto params = std::make_shared<Params>(path, name, where(node, norm));
    fill(*params, *t, path, norm, schema, std::string(kind_name(kind)) + " '" + name + "'");
    return params;
  }

  /// Checks every key of `t` against `schema` and fills `out`, defaults included.
  void fill(Params& out, const toml::table& t, const std::string& path, const std::string& norm, const Schema& schema,
            const std::string& owner) const {
    std::vector<std::string> accepted;
    for (const auto& s : schema.specs()) accepted.push_back(s.name);
    for (const auto& [k, node] : t) {
      std::string key(k.str());
      if (key == "use") continue;
      std::string kpath = path + "." + key, knorm = norm + "." + key;
      const ParamSpec* spec = schema.find(key);
      if (!spec) {
        std::string at = file_ + ":" + std::to_string(k.source().begin.line) + ":" + std::to_string(k.source().begin.column);
        std::string msg = (k.source().begin.line ? at : where(node, knorm)) + ": " + kpath + ": unknown key for " + owner;
        std::string hint = did_you_mean(key, accepted);
        if (!hint.empty()) msg += "; " + hint;
        msg += accepted.empty() ? " (it takes no parameters)" : " (accepted: " + join(accepted) + ")";
        throw InputError(msg);
      }
      out.set(key, convert(node, *spec, kpath, knorm), where(node, knorm));
    }
    for (const auto& s : schema.specs()) {
      if (out.has(s.name)) continue;
      if (s.is_optional) continue;
      if (s.type == ParamType::Component && s.fallback) {  // the default component, its own defaults filled in
        toml::table dflt{{"use", std::get<ParamsPtr>(*s.fallback)->use()}};
        out.set(s.name, component(dflt, path + "." + s.name, norm + "." + s.name, s.component_kind, nullptr), "default");
        continue;
      }
      if (!s.fallback)
        throw InputError(where(t, norm) + ": " + path + ": missing required key '" + s.name + "' (" + s.doc + ")");
      out.set(s.name, *s.fallback, "default");
    }
  }

 private:
  [[noreturn]] void type_error(const toml::node& n, const std::string& path, const std::string& norm,
                               const std::string& want) const {
    throw InputError(where(n, norm) + ": " + path + ": expected " + want + ", got " + node_type_name(n));
  }

  double number(const toml::node& n, const ParamSpec& spec, const std::string& path, const std::string& norm) const {
    double v = n.is_integer() ? static_cast<double>(n.value<std::int64_t>().value()) : n.value<double>().value();
    std::string bad = std::isfinite(v) ? spec.check(v) : "must be a finite number, got " + std::string(v > 0 ? "inf" : v < 0 ? "-inf" : "nan");
    if (!bad.empty() && n.is_integer())  // the schema prints a double ("1e+11"); name the integer as written
      bad = bad.substr(0, bad.rfind(", got ")) + ", got " + std::to_string(n.value<std::int64_t>().value());
    if (!bad.empty()) throw InputError(where(n, norm) + ": " + path + ": " + bad);
    return v;
  }

  template <class T, class Pred, class Get>
  std::vector<T> list(const toml::node& n, const std::string& path, const std::string& norm, const std::string& want,
                      Pred ok, Get get) const {
    const toml::array* a = n.as_array();
    if (!a) type_error(n, path, norm, want);
    std::vector<T> out;
    for (const auto& e : *a) {
      if (!ok(e)) type_error(e, path, norm, want);
      out.push_back(get(e));
    }
    return out;
  }

  Value convert(const toml::node& n, const ParamSpec& spec, const std::string& path, const std::string& norm) const {
    switch (spec.type) {
      case ParamType::Bool:
        if (!n.is_boolean()) type_error(n, path, norm, "a bool (true/false)");
        return n.value<bool>().value();
      case ParamType::Int: {
        if (!n.is_integer()) type_error(n, path, norm, "an integer");
        return static_cast<std::int64_t>(number(n, spec, path, norm));
      }
      case ParamType::Float:
        if (!n.is_number()) type_error(n, path, norm, "a number");
        return number(n, spec, path, norm);
      case ParamType::String: {
        if (!n.is_string()) type_error(n, path, norm, "a string");
        std::string s = n.value<std::string>().value();
        std::string bad = spec.check(s);
        if (!bad.empty()) throw InputError(where(n, norm) + ": " + path + ": " + bad);
        return s;
      }
      case ParamType::IntList:
        return list<std::int64_t>(n, path, norm, "an array of integers", [](const toml::node& e) { return e.is_integer(); },
                                  [&](const toml::node& e) { return static_cast<std::int64_t>(number(e, spec, path, norm)); });
      case ParamType::FloatList:
        return list<double>(n, path, norm, "an array of numbers", [](const toml::node& e) { return e.is_number(); },
                            [&](const toml::node& e) { return number(e, spec, path, norm); });
      case ParamType::StringList:
        return list<std::string>(n, path, norm, "an array of strings", [](const toml::node& e) { return e.is_string(); },
                                 [](const toml::node& e) { return e.value<std::string>().value(); });
      case ParamType::Component:
        return component(n, path, norm, spec.component_kind, nullptr);
      case ParamType::TableList: {
        const toml::array* a = n.as_array();
        if (!a) type_error(n, path, norm, "an array of tables ([[" + path + "]])");
        std::vector<ParamsPtr> out;
        for (size_t i = 0; i < a->size(); ++i) {
          const toml::node& e = *a->get(i);
          std::string ipath = path + "[" + std::to_string(i) + "]", inorm = norm + "." + std::to_string(i);
          if (!e.is_table()) type_error(e, ipath, inorm, "a table");
          auto item = std::make_shared<Params>(ipath, "", where(e, inorm));
          fill(*item, *e.as_table(), ipath, inorm, *spec.item_schema, path);
          out.push_back(item);
        }
        return out;
      }
    }
    type_error(n, path, norm, type_name(spec.type));
  }

  std::string file_;
  const Registry& reg_;
  std::map<std::string, std::string> overridden_;
};

ParamsPtr host_section(const Checker& check, const toml::table& root, const std::string& name, const Schema& schema,
                       const std::string& file) {
  auto params = std::make_shared<Params>(name, name, file);
  static const toml::table empty;
  const toml::node* node = root.get(name);
  if (node && !node->is_table())
    throw InputError(check.where(*node, name) + ": " + name + ": expected a table, got " + node_type_name(*node));
  check.fill(*params, node ? *node->as_table() : empty, name, name, schema, "[" + name + "]");
  return params;
}

}  // namespace

Pipeline load_pipeline(const std::string& file, const std::vector<std::string>& overrides, const Registry& registry) {
  if (!std::filesystem::is_regular_file(file)) throw InputError(file + ": no such pipeline file");
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw InputError(file + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                     ": TOML syntax error: " + std::string(e.description()) + syntax_hint(e, file));
  }
  if (root.empty())
    throw InputError(file + ": empty pipeline: it needs at least [data], [model] and one [[stage]]");
  std::map<std::string, std::string> overridden;
  for (const auto& o : overrides) apply_override(root, o, overridden);
  Checker check(file, registry, overridden);

  const std::vector<std::string> sections = {"run", "data", "model", "quantizer", "optimizer", "stage"};
  for (const auto& [k, node] : root) {
    std::string key(k.str());
    if (std::find(sections.begin(), sections.end(), key) != sections.end()) continue;
    std::string hint = did_you_mean(key, sections);
    throw InputError(check.where(node, key) + ": " + key + ": unknown section" + (hint.empty() ? "" : "; " + hint) +
                     " (sections: " + join(sections) + ")");
  }

  Pipeline p;
  p.file = file;
  p.run = host_section(check, root, "run", run_schema(), file);
  if (p.run->get<std::string>("name").empty())
    std::const_pointer_cast<Params>(p.run)->set("name", std::filesystem::path(file).stem().string(), "default");

  auto need = [&](const std::string& name, Kind kind, const Schema* host) -> ParamsPtr {
    const toml::node* n = root.get(name);
    if (!n)
      throw InputError(file + ": missing section [" + name + "] (which " + kind_name(kind) + " to use; available: " +
                       join(registry.names(kind)) + ")");
    return check.component(*n, name, name, kind, host);
  };
  Schema data_host = data_host_schema();
  p.data = need("data", Kind::Dataset, &data_host);
  p.model = need("model", Kind::Model, nullptr);
  if (const toml::node* q = root.get("quantizer")) {
    Schema host = quantizer_host_schema();
    p.quantizer = check.component(*q, "quantizer", "quantizer", Kind::Quantizer, &host);
    try {
      check_bits(*p.quantizer);
    } catch (const std::invalid_argument& e) {
      throw InputError(e.what());
    }
  }

  const toml::node* stages = root.get("stage");
  if (!stages) throw InputError(file + ": no [[stage]]: add at least one (use = \"train\" or \"eval\")");
  const toml::array* arr = stages->as_array();
  if (!arr) throw InputError(check.where(*stages, "stage") + ": stage: expected [[stage]] tables");
  bool trains = false;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& n = *arr->get(i);
    std::string path = "stage[" + std::to_string(i) + "]";
    const toml::table* t = n.as_table();
    const std::string norm = "stage." + std::to_string(i);
    if (!t) throw InputError(check.where(n, norm) + ": " + path + ": expected a table");
    const toml::node* use = t->get("use");
    auto kinds = stage_kinds();
    std::string kind = use && use->is_string() ? use->value<std::string>().value() : "";
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
      std::string hint = did_you_mean(kind, kinds);
      throw InputError(check.where(use ? *use : n, norm + ".use") + ": " + path + ".use: " +
                       (kind.empty() ? "missing or not a string" : "unknown stage '" + kind + "'") +
                       (hint.empty() ? "" : "; " + hint) + " (stages: " + join(kinds) + ")");
    }
    auto params = std::make_shared<Params>(path, kind, check.where(n, norm));
    check.fill(*params, *t, path, norm, stage_schema(kind), "stage '" + kind + "'");
    p.stages.push_back(params);
    try {
      check_stage_init(p.stages, i);
      const toml::node* q = t->get("quantized");
      if (!p.quantizer && q && q->value<bool>().value_or(false))
        params->fail("quantized", "true, but the pipeline has no [quantizer] to quantize with (add one, or drop this key)");
      if (!p.quantizer && !q) params->set("quantized", false, "default");  // what runs, as config.resolved.toml says
      if (params->has("group"))
        for (const auto& g : params->tables("group")) check_glob(*g, "match");
    } catch (const std::invalid_argument& e) {
      throw InputError(e.what());
    }
    trains = trains || ((kind == "train" || kind == "search") && !params->has("optimizer"));
  }
  if (trains) p.optimizer = need("optimizer", Kind::Optimizer, nullptr);
  else if (root.get("optimizer")) p.optimizer = check.component(*root.get("optimizer"), "optimizer", "optimizer", Kind::Optimizer, nullptr);
  return p;
}

std::string Pipeline::resolved_toml() const {
  std::ostringstream out;
  auto section = [&](const std::string& header, const ParamsPtr& p, bool with_use) {
    if (!p) return;
    out << header << "\n";
    if (with_use) out << "use = " << to_toml(p->use()) << "\n";
    for (const auto& [k, e] : p->entries()) {
      // a defaulted batch_size under global_batch_size is left out: written, it would read back as given, and
      // the two keys are exclusive (the run directory's copy must load as the pipeline did)
      if (p == data && k == "batch_size" && e.origin == "default" && p->get<std::int64_t>("global_batch_size") != 0) {
        out << "# batch_size: unused, global_batch_size decides\n";
        continue;
      }
      out << k << " = " << to_toml(e.value) << "\n";
    }
    out << "\n";
  };
  out << "# " << file << " with every default filled in\n\n";
  section("[run]", run, false);
  section("[data]", data, true);
  section("[model]", model, true);
  section("[quantizer]", quantizer, true);
  section("[optimizer]", optimizer, true);
  for (const auto& s : stages) section("[[stage]]", s, true);
  return out.str();
}

}  // namespace saq::host

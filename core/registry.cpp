#include "registry.hpp"

#include "errors.hpp"

namespace saq::host {

const Component* Registry::find(Kind kind, const std::string& name) const {
  auto it = components_.find({kind, name});
  return it == components_.end() ? nullptr : &it->second;
}

const Component& Registry::require(Kind kind, const std::string& name, const std::string& where) const {
  if (const Component* c = find(kind, name)) return *c;
  auto known = names(kind);
  std::string msg = where + ": unknown " + kind_name(kind) + " '" + name + "'";
  std::string hint = did_you_mean(name, known);
  if (!hint.empty()) msg += "; " + hint;
  msg += known.empty() ? std::string("; no ") + kind_name(kind) + " plugins are loaded"
                       : std::string("; available: ") + join(known);
  for (const auto& s : skipped) msg += "\n  note: skipped " + s.path + ": " + s.reason;
  throw InputError(msg);
}

void Registry::drop_plugin(const PluginRecord* plugin) {
  for (auto it = components_.begin(); it != components_.end();)
    it = it->second.plugin.get() == plugin ? components_.erase(it) : std::next(it);
}

std::vector<const Component*> Registry::all() const {
  std::vector<const Component*> out;
  for (const auto& [key, c] : components_) out.push_back(&c);
  return out;
}

std::vector<std::string> Registry::names(Kind kind) const {
  std::vector<std::string> out;
  for (const auto& [key, c] : components_)
    if (key.first == kind) out.push_back(key.second);
  return out;
}

std::string Registry::describe_failure(const Component& c, const std::exception& e) const {
  return std::string(kind_name(c.desc.kind)) + " '" + c.desc.name + "' (" + c.plugin->path + ") failed: " + e.what();
}

}  // namespace saq::host

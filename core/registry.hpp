#pragma once
/// The components the loaded plugins registered, by (kind, name), each tied to the library that made it.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <saq/registrar.hpp>

namespace saq::host {

/// A loaded plugin library. Objects it made hold a reference, so it outlives them (and it is opened
/// RTLD_NODELETE, so its code stays mapped even after the last reference).
struct PluginRecord {
  std::string path, name, version, description;
  std::shared_ptr<void> handle;
};
using PluginRef = std::shared_ptr<const PluginRecord>;

struct Component {
  ComponentDesc desc;
  PluginRef plugin;
  std::variant<Factory<Dataset>, Factory<Model>, Factory<Optimizer>, Factory<Quantizer>,
               Factory<Search>>
      make;
};

/// A library that was found but not loaded, and why.
struct Skipped {
  std::string path, reason;
};

class Registry final : public Registrar {
 public:
  /// Components put() from now on belong to `plugin`.
  void begin_plugin(PluginRef plugin) { current_ = std::move(plugin); }
  /// Forgets every component of `plugin` (its registration failed half way).
  void drop_plugin(const PluginRecord* plugin);
  const Component* find(Kind kind, const std::string& name) const;
  /// The component, or an InputError naming `where`, the closest name, what exists and any skipped library.
  const Component& require(Kind kind, const std::string& name, const std::string& where) const;
  std::vector<const Component*> all() const;
  std::vector<std::string> names(Kind kind) const;

  /// Builds a component; the object keeps its plugin record alive. Factory exceptions get the component's name.
  template <class I>
  std::shared_ptr<I> make(const Component& c, const Params& params, const Context& ctx) const;

  std::vector<Skipped> skipped;
  std::vector<std::string> warnings;

 protected:
  void put(ComponentDesc desc, Factory<Dataset> make) override { add(std::move(desc), make); }
  void put(ComponentDesc desc, Factory<Model> make) override { add(std::move(desc), make); }
  void put(ComponentDesc desc, Factory<Optimizer> make) override { add(std::move(desc), make); }
  void put(ComponentDesc desc, Factory<Quantizer> make) override { add(std::move(desc), make); }
  void put(ComponentDesc desc, Factory<Search> make) override { add(std::move(desc), make); }

 private:
  template <class F>
  void add(ComponentDesc desc, F make);
  std::string describe_failure(const Component& c, const std::exception& e) const;
  std::map<std::pair<Kind, std::string>, Component> components_;
  PluginRef current_;
};

template <class F>
void Registry::add(ComponentDesc desc, F make) {
  auto key = std::make_pair(desc.kind, desc.name);
  auto it = components_.find(key);
  if (it != components_.end()) {
    warnings.push_back(std::string(kind_name(desc.kind)) + " '" + desc.name + "' from " + current_->path +
                       " ignored: already provided by " + it->second.plugin->path);
    return;
  }
  components_.emplace(key, Component{std::move(desc), current_, make});
}

template <class I>
std::shared_ptr<I> Registry::make(const Component& c, const Params& params, const Context& ctx) const {
  std::unique_ptr<I> object;
  try {
    object = std::get<Factory<I>>(c.make)(params, ctx);
  } catch (const std::exception& e) {
    throw std::runtime_error(describe_failure(c, e));
  }
  PluginRef keep = c.plugin;
  return std::shared_ptr<I>(object.release(), [keep](I* p) { delete p; });
}

}  // namespace saq::host

#include "commands.hpp"

#include <algorithm>
#include <iostream>

#include <saq/abi.hpp>

#include "engine.hpp"
#include "errors.hpp"
#include "host_schema.hpp"
#include "pipeline.hpp"
#include "plugin_host.hpp"

#ifndef SAQ_VERSION
#define SAQ_VERSION "0"
#endif

namespace saq::host {

std::string version_text() {
  return std::string("saqhost ") + SAQ_VERSION + " (SDK ABI " + std::to_string(SAQ_ABI_VERSION) + ", LibTorch " +
         TORCH_VERSION + ")";
}

namespace {

void print_schema(const Schema& schema) {
  for (const auto& s : schema.specs()) {
    std::string def = s.fallback ? to_toml(*s.fallback) : "(required)";
    std::cout << "  " << s.name << " : " << type_name(s.type);
    if (s.type == ParamType::Component) std::cout << " (" << kind_name(s.component_kind) << ")";
    std::cout << " = " << def;
    std::string range = s.range_text();
    if (!range.empty()) std::cout << "  range " << range;
    if (!s.choices.empty()) std::cout << "  one of " << join(s.choices, " | ");
    std::cout << "\n      " << s.doc << "\n";
  }
}

int plugins(const Registry& reg, const std::string& describe) {
  if (!describe.empty()) {
    bool found = false;
    for (const Component* c : reg.all()) {
      if (c->desc.name != describe) continue;
      found = true;
      std::cout << kind_name(c->desc.kind) << " '" << c->desc.name << "' — " << c->desc.description << "\n"
                << "  from " << c->plugin->path << " (plugin " << c->plugin->name << " " << c->plugin->version
                << ")\nparameters:\n";
      print_schema(c->desc.schema);
    }
    for (const auto& kind : stage_kinds()) {
      if (kind != describe) continue;
      found = true;
      std::cout << "stage '" << kind << "' (built into saqhost)\nparameters:\n";
      print_schema(stage_schema(kind));
    }
    if (describe == "run") {
      found = true;
      std::cout << "[run] (built into saqhost)\nparameters:\n";
      print_schema(run_schema());
    }
    if (!found) {
      std::vector<std::string> names;
      for (const Component* c : reg.all()) names.push_back(c->desc.name);
      std::string hint = did_you_mean(describe, names);
      throw InputError("--describe: no component '" + describe + "'" + (hint.empty() ? "" : "; " + hint));
    }
    return 0;
  }
  for (const Component* c : reg.all())
    std::cout << kind_name(c->desc.kind) << "\t" << c->desc.name << "\t" << c->desc.description << "\n";
  for (const auto& s : reg.skipped) std::cout << "skipped\t" << s.path << "\t" << s.reason << "\n";
  return 0;
}

}  // namespace

int run_command(const CommandLine& cl, std::shared_ptr<spdlog::logger> log) {
  const std::vector<std::string> commands = {"run", "validate", "report", "plugins"};
  if (std::find(commands.begin(), commands.end(), cl.command) == commands.end()) {
    std::string hint = did_you_mean(cl.command, commands);
    throw InputError("unknown command '" + cl.command + "'" + (hint.empty() ? "" : "; " + hint) + " (commands: " +
                     join(commands) + ")");
  }
  Registry registry;
  load_plugins(registry, plugin_search_path(cl.plugin_paths));
  for (const auto& w : registry.warnings) log->warn("{}", w);
  if (cl.command == "plugins") return plugins(registry, cl.describe);
  for (const auto& s : registry.skipped) log->warn("skipped plugin library {}: {}", s.path, s.reason);

  if (cl.pipeline.empty()) throw InputError(cl.command + ": which pipeline? (saqhost " + cl.command + " PIPELINE.toml)");
  Pipeline pipeline = load_pipeline(cl.pipeline, cl.overrides, registry);
  if (cl.command == "validate") {
    std::cout << pipeline.resolved_toml();
    log->info("{} is valid", cl.pipeline);
    return 0;
  }
  if (cl.command == "report") {
    std::cout << report_pipeline(pipeline, registry, log);
    return 0;
  }
  run_pipeline(pipeline, registry, log);
  return 0;
}

}  // namespace saq::host

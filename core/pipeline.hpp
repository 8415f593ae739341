#pragma once
/// A pipeline file read, overridden with --set, checked against every schema, and resolved: every section
/// picks its component with `use`, every key is known and typed, every default is filled in.
#include <string>
#include <vector>

#include <saq/params.hpp>

#include "registry.hpp"

namespace saq::host {

struct Pipeline {
  std::string file;
  ParamsPtr run, data, model, optimizer;  ///< optimizer is null when no stage trains
  ParamsPtr quantizer;                    ///< null when the pipeline quantizes nothing
  std::vector<ParamsPtr> stages;          ///< use() is the stage kind
  /// The pipeline as TOML with every default written out (config.resolved.toml).
  std::string resolved_toml() const;
};

/// Reads and validates `file`. Every problem is an InputError that names the file, line and `section.key`.
/// Overrides are "section.key=value" with a TOML value (bare words are strings); array elements are
/// addressed by index or `*` for all ("stage.*.epochs=1").
Pipeline load_pipeline(const std::string& file, const std::vector<std::string>& overrides, const Registry& registry);

}  // namespace saq::host

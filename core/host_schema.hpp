#pragma once
/// The schemas of what the host itself reads: [run], the host keys of [data], and each stage kind.
#include <string>
#include <vector>

#include <saq/params.hpp>

namespace saq::host {

Schema run_schema();
/// Keys of [data] that the host reads (batch sizes) besides the dataset plugin's own.
Schema data_host_schema();
/// The stage kinds ("train", "eval") and their schemas.
std::vector<std::string> stage_kinds();
Schema stage_schema(const std::string& kind);
/// Fails (Params::fail) when stage `i`'s `init = "stageN"` names no earlier train stage: N must have run, and
/// written its checkpoint, before stage i starts. Any other init is a file, checked when the stage starts.
void check_stage_init(const std::vector<ParamsPtr>& stages, size_t i);
/// Fails (Params::fail) when `p`'s glob `key` is empty or has a '[' that never closes: fnmatch would take the
/// bracket literally and the rule or group would silently match nothing.
void check_glob(const Params& p, const std::string& key);

}  // namespace saq::host

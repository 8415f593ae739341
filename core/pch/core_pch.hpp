// Precompiled for every host source (meson's cpp_pch, added with -include): the LibTorch, spdlog, fmt and
// TOML++ headers nearly every file of core/ reaches through the SDK, parsed once instead of once per file
// (~6 s of a file's 8-14 s here). Nothing in core/ relies on it: each file still includes what it uses.
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

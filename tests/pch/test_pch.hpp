// Precompiled once for every test executable (tests/pch/meson.build): the LibTorch and spdlog headers nearly every
// test file reaches, parsed once per executable instead of once per file (a test file compiles in ~4 s instead of
// ~12 s here). glog's CHECK macros come in with LibTorch, as they do through tests/unit.hpp, which undefines them
// before doctest defines its own.
#include <c10/util/Logging.h>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>
#include <torch/optim/sgd.h>

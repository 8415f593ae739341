// Precompiled for the SDK's sources (meson's cpp_pch, added with -include): the LibTorch headers they share,
// parsed once instead of once per file. Not installed; each source still includes what it uses.
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

// Precompiled once for every plugin (plugins/pch/meson.build) and added to each plugin's sources with -include:
// the SDK and the LibTorch headers under it, parsed once instead of once per plugin file. Nothing relies on it:
// each plugin file still includes what it uses.
#include <ATen/ATen.h>
#include <saq/sdk.hpp>

#include <cmath>
#include <string>
#include <vector>

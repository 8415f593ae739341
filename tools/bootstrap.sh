#!/usr/bin/env bash
# Installs what saq needs from Debian (only what is missing), then configures and builds it in build/.
# usage: tools/bootstrap.sh [--deps-only] [--sanitizers]   (--sanitizers: also clang and its sanitizer and
#        libFuzzer runtimes, for tools/sanitize.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# cmake: meson finds Debian's doctest-dev through its CMake config files only (it ships no .pc file).
# ccache: meson uses it when present, so a second build of a checkout is fast.
packages=(g++ meson ninja-build cmake ccache pkg-config python3 binutils libtorch-dev libboost-dev libboost-filesystem-dev
          libboost-program-options-dev libtomlplusplus-dev libspdlog-dev libfmt-dev doctest-dev zlib1g-dev libturbojpeg0-dev
          libopenblas0-pthread dataset-fashion-mnist
          libgloo-dev python3-torch    # gloo: c10d data parallel; python3-torch: torchrun and torch.load for tests
          python3-onnx                 # the export tests: onnx's checker and shape inference
          chromium)                    # the analyze test renders its page headless
command -v npm >/dev/null || packages+=(nodejs npm)  # ONNX Runtime for the export check comes from npm
deps_only=0
for arg in "$@"; do
  case $arg in
    --deps-only) deps_only=1 ;;
    --sanitizers) packages+=(clang libclang-rt-14-dev) ;;
    *) echo "usage: tools/bootstrap.sh [--deps-only] [--sanitizers]" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# ONNX Runtime (CPU) for tools/check_onnx.sh and its test: onnxruntime-node, pinned by tools/onnx/package-lock.json;
# its install script would download CUDA provider libraries, which the CPU runtime does not need
if [ ! -f tools/onnx/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1 ]; then
  (cd tools/onnx && ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
# ccache caches compiles that use a precompiled header (every source here) only with these sloppiness flags:
# __TIME__ and #define changes are invisible through a PCH, and the PCH is newer than the compile that reads it.
# Set in the user's ccache config when nothing is set there yet.
if command -v ccache >/dev/null && [ -z "$(ccache --get-config sloppiness 2>/dev/null)" ]; then
  ccache --set-config sloppiness=pch_defines,time_macros,include_file_mtime,include_file_ctime
fi
[ "$deps_only" = 1 ] && exit 0
[ -f build/build.ninja ] || meson setup build
ninja -C build

#!/usr/bin/env bash
# Build times, so that a change that slows the build shows up: a fresh `meson setup && ninja` of the whole tree
# (tests included), the same without tests (-Dtests=false: what the quick start needs), and the rebuild after
# touching one plugin source. ccache is disabled throughout (CCACHE_DISABLE=1): these are empty-cache figures.
# Builds in temporary folders beside nothing else; takes ~20 min on 2 cores.
# usage: tools/bench_build.sh [PLUGIN_SOURCE]     (default plugins/optimizer/sam/sam.cpp)
set -euo pipefail
cd "$(dirname "$0")/.."
touched=${1:-plugins/optimizer/sam/sam.cpp}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CCACHE_DISABLE=1
seconds() { local t0=$SECONDS; "$@" > "$work/log" 2>&1 || { tail -20 "$work/log"; exit 1; }; echo $((SECONDS - t0)); }
full=$(seconds bash -c "meson setup '$work/full' >/dev/null && ninja -C '$work/full'")
echo "fresh build, tests included: ${full} s"
bare=$(seconds bash -c "meson setup '$work/bare' -Dtests=false >/dev/null && ninja -C '$work/bare'")
echo "fresh build, no tests:       ${bare} s"
touch "$touched"
one=$(seconds ninja -C "$work/full")
echo "after touching $touched: ${one} s"

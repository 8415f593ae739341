#!/usr/bin/env bash
# Exports a run with saqhost and checks the graph in ONNX Runtime against saqhost's own eval of the same
# checkpoint (tools/onnx/check_onnx.mjs says what is compared). N test samples, 0 (default) for all of them.
# usage: tools/check_onnx.sh RUN_DIR [N] [saqhost export options...]    needs: node, `npm ci` in tools/onnx
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: tools/check_onnx.sh RUN_DIR [N] [export options]" >&2; exit 2; }
run=$1
n=${2:-0}
shift $(( $# >= 2 ? 2 : 1 ))
saqhost=${SAQHOST:-$root/build/saqhost}
[ -d "$root/tools/onnx/node_modules/onnxruntime-node" ] ||
  { echo "onnxruntime-node is missing: (cd tools/onnx && ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$saqhost" export "$run" -o "$out/model.onnx" --reference "$n" -q "$@"
summary=""
if [ "$n" = 0 ] && [ -f "$run/summary.json" ]; then
  summary=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("test_top1", ""))' "$run/summary.json")
fi
node "$root/tools/onnx/check_onnx.mjs" "$out/model.onnx" "$out/model.reference" $summary

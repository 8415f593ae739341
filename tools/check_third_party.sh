#!/usr/bin/env bash
# The third-party path, end to end: install saq to a temporary prefix, build tools/plugin-template out of tree
# with nothing but `pkg-config saq-sdk`, run the template's own test, and run pipelines that use its model and
# its quantizer with the installed saqhost.
# usage: check_third_party.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1") src=$(realpath "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pc=$(find "$tmp/root" -name saq-sdk.pc | head -n1)
host=$(find "$tmp/root" -path '*/bin/saqhost' -type f | head -n1)
[ -n "$pc" ] && [ -n "$host" ] || { echo "install lacks saq-sdk.pc or bin/saqhost"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
echo "SDK flags: $(pkg-config --cflags --libs saq-sdk)"

cp -r "$src/tools/plugin-template" "$tmp/template"
meson setup "$tmp/template/build" "$tmp/template" >/dev/null
ninja -C "$tmp/template/build" >/dev/null
meson test -C "$tmp/template/build" --print-errorlogs >/dev/null || { echo "the template's own test failed"; exit 1; }

# The installed host, with its installed plugins and nothing from the build tree.
unset SAQ_PLUGIN_PATH SAQ_NO_DEFAULT_PLUGINS
# train_with PIPELINE KIND NAME MIN_TOP1: the component is listed, the pipeline trains with it, and its test
# top-1 reaches MIN_TOP1 (chance is 10%)
train_with() {
  "$host" plugins --plugin-path "$tmp/template/build" | grep -q "^$2"$'\t'"$3"$'\t'
  "$host" run "$tmp/template/$1.toml" --plugin-path "$tmp/template/build" \
    --set run.out_dir="$tmp/runs" --set data.train_samples=512 --set data.test_samples=128 -q
  local summary="$tmp/runs/$1/summary.json" top1
  grep -q "\"$2\": \"$3\"" "$summary"
  top1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_top1"])' "$summary")
  echo "$1 with the out-of-tree $2 '$3': test top-1 $top1%"
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$top1" "$4"
}
train_with pipeline model tiny_mlp 90
train_with quantized_pipeline quantizer ternary 50
# a quantizer refuses bits it cannot do before the first stage, naming the layer
set +e
refused=$("$host" run "$tmp/template/quantized_pipeline.toml" --plugin-path "$tmp/template/build" \
  --set run.out_dir="$tmp/runs" --set quantizer.weight_bits=4 -q 2>&1)
status=$?
set -e
[ $status -eq 2 ] && grep -q "quantizer 'ternary' cannot quantize layer fc2 at w4a4 (set by default): ternary weights take 2 bits" <<<"$refused" ||
  { echo "expected the ternary quantizer to refuse 4-bit weights, got status $status: $refused"; exit 1; }
# ... and so does `saqhost validate`, which builds the components without running anything
set +e
refused=$("$host" validate "$tmp/template/quantized_pipeline.toml" --plugin-path "$tmp/template/build" \
  --set quantizer.weight_bits=4 -q 2>&1)
status=$?
set -e
[ $status -eq 2 ] && grep -q "quantizer 'ternary' cannot quantize layer fc2 at w4a4" <<<"$refused" ||
  { echo "expected validate to refuse 4-bit ternary weights, got status $status: $refused"; exit 1; }
# report.md names the quantizer and the run's test top-1 (the summary's, to the hundredth)
report="$tmp/runs/quantized_pipeline/report.md"
top1=$(python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["test_top1"])' \
  "$tmp/runs/quantized_pipeline/summary.json")
grep -q "^Quantizer: \`ternary\`" "$report" && grep -q "^Test top-1: $top1% " "$report" ||
  { echo "report.md lacks the quantizer or the test top-1 $top1%:"; cat "$report"; exit 1; }
# the out-of-tree quantizer exports (its grid(): ternary codes −1, 0, +1 and PACT's 0..n) and ONNX Runtime runs the
# graph as the installed saqhost evaluates the same checkpoint
SAQHOST="$host" "$src/tools/check_onnx.sh" "$tmp/runs/quantized_pipeline" 128 --plugin-path "$tmp/template/build"
"$host" export "$tmp/runs/quantized_pipeline" --plugin-path "$tmp/template/build" -q
codes=$(/usr/bin/python3 -c '
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
print(sorted({int(v) for t in m.graph.initializer if t.name == "fc2.weight_codes" for v in numpy_helper.to_array(t).reshape(-1)}))
' "$tmp/runs/quantized_pipeline/export/model.onnx")
[ "$codes" = "[-1, 0, 1]" ] || { echo "expected fc2's exported ternary codes to be [-1, 0, 1], got $codes"; exit 1; }
echo "the out-of-tree quantizer exports: fc2's codes $codes, ONNX Runtime agrees with saqhost"

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
"$host" plugins --plugin-path "$tmp/template/build" | grep -q $'^model\ttiny_mlp\t'
"$host" run "$tmp/template/pipeline.toml" --plugin-path "$tmp/template/build" \
  --set run.out_dir="$tmp/runs" --set data.train_samples=512 --set data.test_samples=128 -q
summary="$tmp/runs/pipeline/summary.json"
grep -q '"model": "tiny_mlp"' "$summary"
top1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_top1"])' "$summary")
echo "tiny_mlp from the out-of-tree build: test top-1 $top1%"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 90 else 1)' "$top1"

# The template's quantizer: ternary weights count as ternary, training still learns (chance is 10%)
"$host" plugins --plugin-path "$tmp/template/build" | grep -q $'^quantizer\tternary\t'
"$host" run "$tmp/template/quantized_pipeline.toml" --plugin-path "$tmp/template/build" \
  --set run.out_dir="$tmp/runs" --set data.train_samples=512 --set data.test_samples=128 -q
summary="$tmp/runs/quantized_pipeline/summary.json"
grep -q '"quantizer": "ternary"' "$summary"
top1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_top1"])' "$summary")
echo "tiny_mlp with the out-of-tree ternary quantizer: test top-1 $top1%"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 50 else 1)' "$top1"
# a quantizer refuses bits it cannot do before the first stage, naming the layer
set +e
refused=$("$host" run "$tmp/template/quantized_pipeline.toml" --plugin-path "$tmp/template/build" \
  --set run.out_dir="$tmp/runs" --set quantizer.weight_bits=4 -q 2>&1)
status=$?
set -e
[ $status -eq 2 ] && grep -q "quantizer 'ternary' cannot quantize layer fc2 at w4a4 (set by default): ternary weights take 2 bits" <<<"$refused" ||
  { echo "expected the ternary quantizer to refuse 4-bit weights, got status $status: $refused"; exit 1; }

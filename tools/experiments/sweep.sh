# Sourced by the sweep scripts of this folder: what they share. Needs $host (saqhost) and $out (the sweep's folder).
# run NAME PIPELINE ARGS...: trains run NAME into $out unless it already has a summary (so a sweep resumes), and
# prints its test top-1.
run() {
  local name=$1 pipeline=$2
  shift 2
  [ -f "$out/$name/summary.json" ] && return 0
  rm -rf "$out/$name"
  "$host" run "$pipeline" -q --set run.out_dir="$out" --set run.name="$name" "$@"
  echo "$name: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_top1"])' "$out/$name/summary.json")"
}

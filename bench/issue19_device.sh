#!/usr/bin/env bash
# Issue 19 on the device, across 10-minute calls (carry .devdata and .ref):
#   bash bench/issue19_device.sh start WAIT_S [SECONDS]   first call: tokenize, start the pipeline detached, wait
#   bash bench/issue19_device.sh poll WAIT_S              later calls: wait, report (a fresh machine: say so, stop)
# Each call copies the logs and JSON to $OUT (results.tgz) and prints the tables last.
set -u
mode=$1 wait=$2 secs=${3:-300}
W=/tmp/i19
if [ "$mode" = poll ] && [ ! -d "$W" ]; then echo "FRESH MACHINE: no $W; not restarting"; exit 3; fi
source bench/device_setup.sh
source bench/device_detached.sh
mkdir -p "$W"
if [ "$mode" = start ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv | tee "$W/gpu.txt"
  cp /tmp/deb/manifest.json "$W/dataset_manifest.json"
  [ -f "$W/done" ] || start_detached "$W/pid" "$W/pipeline.log" bash bench/issue19_pipeline.sh "$W" "$secs"
fi
[ -f "$W/done" ] || wait_detached "$W/pid" "$wait"
tar_small "$W" "$OUT/results.tgz"
echo "== stages"; cat "$W/stages" 2>/dev/null
for f in compare/reference/stdout.txt compare/golflab_stdout.txt lab.log probe_eager/train.log; do
  [ -f "$W/$f" ] && { echo "== tail $f"; tail -n 4 "$W/$f"; }
done
echo; echo "==== tables"
[ -f "$W/compare/compare.json" ] && python3 bench/compare_reference.py --out "$W/compare" --table
[ -f "$W/lab_share.txt" ] && { echo; cat "$W/lab_share.txt"; }
if [ -f "$W/probe_eager/result.json" ] && [ -f "$W/compare/golflab/result.json" ]; then
  python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
e = json.load(open(f"{w}/probe_eager/result.json"))
c = json.load(open(f"{w}/compare/golflab/result.json"))
print(f"\nstep-time probe golf-baseline: compiled {c['ms_per_step']:.1f} ms/step ({c['steps']} steps, 300 s), "
      f"eager (train.compile=off) {e['ms_per_step']:.1f} ms/step ({e['steps']} steps, 30 s): "
      f"compiled/eager {c['ms_per_step'] / e['ms_per_step']:.3f}")
PY
fi

#!/usr/bin/env bash
# Issue 19 on the device, across 10-minute calls (carry .devdata and .ref):
#   bash bench/issue19_device.sh start WAIT_S [SECONDS [STAGE ...]]   tokenize, start the pipeline detached, wait
#   bash bench/issue19_device.sh poll WAIT_S                          later calls: wait, report
# (a poll on a fresh machine says so and stops). Stages: bench/issue19_pipeline.sh. Each call copies the
# logs and JSON to $OUT (results.tgz) and prints the tables last.
set -u
mode=$1 wait=$2 secs=${3:-300}
shift $(( $# < 3 ? $# : 3 ))
W=/tmp/i19
if [ "$mode" = poll ] && [ ! -d "$W" ]; then echo "FRESH MACHINE: no $W; not restarting"; exit 3; fi
source bench/device_setup.sh
source bench/device_detached.sh
mkdir -p "$W"
if [ "$mode" = start ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv | tee "$W/gpu.txt"
  if [ -f .devdata/tokenizer_sp8192.model ] && [ ! -f /tmp/deb8k/manifest.json ]; then  # golf-frontier's vocab
    python3 -m golflab prepare text .devdata/train.txt.xz .devdata/val.txt.xz --out /tmp/deb8k \
      --tokenizer .devdata/tokenizer_sp8192.model --workers 16 --test-frac 0.02 > /tmp/prepare8k.log 2>&1 \
      || tail -5 /tmp/prepare8k.log
  fi
  cp /tmp/deb/manifest.json "$W/dataset_manifest.json"
  [ -f /tmp/deb8k/manifest.json ] && cp /tmp/deb8k/manifest.json "$W/dataset8k_manifest.json"
  [ -f "$W/done" ] || start_detached "$W/pid" "$W/pipeline.log" bash bench/issue19_pipeline.sh "$W" "$secs" "$@"
fi
[ -f "$W/done" ] || wait_detached "$W/pid" "$wait"
tar_small "$W" "$OUT/results.tgz"
echo "== stages"; cat "$W/stages" 2>/dev/null
for f in compare/reference/stdout.txt compare/golflab_stdout.txt frontier.log lab.log; do
  [ -f "$W/$f" ] && { echo "== tail $f"; tail -n 4 "$W/$f"; }
done
echo; echo "==== tables"
[ -f "$W/compare/compare.json" ] && python3 bench/compare_reference.py --out "$W/compare" --table
for f in probe.log kernels.log flexdocs.log; do [ -f "$W/$f" ] && { echo; grep -v '^{' "$W/$f" | tail -n 8; }; done
if [ -f "$W/frontier/result.json" ]; then
  python3 - "$W/frontier/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
keys = ("status", "steps", "ms_per_step", "train_seconds", "val_bpb", "artifact_val_bpb", "artifact_bytes",
        "artifact_fits", "peak_mem_gb", "eval_seconds")
print("\ngolf-frontier:", ", ".join(f"{k}={r.get(k)}" for k in keys if k in r))
a = r.get("artifact") or {}
print("golf-frontier artifact:", ", ".join(f"{k}={v}" for k, v in a.items() if not isinstance(v, (dict, list))))
PY
fi
[ -f "$W/lab_share.txt" ] && { echo; cat "$W/lab_share.txt"; }
true

#!/usr/bin/env bash
# Issue 7's GPU session: `golflab auto` on golf-baseline, ~90 s runs, a 30-minute wallclock budget,
# across 10-minute device calls (see bench/device_detached.sh). Run the same command every call; on a
# fresh machine carry .labstate/ with the last auto.sqlite snapshot copied to .labstate/auto/.
# With PLAN and STORE, the detached job first finishes that lab (bench/lab_on_device.sh's job), then
# starts the search, so one machine does both without idling between calls.
# usage: bash bench/auto_on_device.sh [WAIT_S] [HOURS] [PLAN STORE]
set -u
source bench/device_setup.sh
source bench/device_detached.sh
wait=${1:-540} hours=${2:-0.5} plan=${3:-} store=${4:-} out=.labstate/auto
mkdir -p "$out"
lab=":"
if [ -n "$plan" ]; then lab="python3 -m golflab lab run $plan --data /tmp/deb --store $store --gpus 0 --quiet"; fi
start_detached "$out.pid" "$out.log" bash -c "$lab; exec python3 -m golflab auto --space spaces/golf.toml \
  --preset golf-baseline --budget 90s --set eval.stride=0 --data /tmp/deb --gpus 0 --hours $hours \
  --max-experiments 100 --out $out"
wait_detached "$out.pid" "$wait"
if [ -n "$plan" ]; then
  snapshot_sqlite "$store" "$OUT/$(basename "$store")"
  python3 -m golflab lab status "$plan" --data /tmp/deb --store "$store" > "$OUT/status.txt" 2>&1
  python3 -m golflab lab report "$plan" --data /tmp/deb --store "$store" --out "$OUT/report" > /dev/null 2>&1
  tar_small "${store%.sqlite}" "$OUT/runs.tgz"
  cat "$OUT/status.txt"
fi
[ -f "$out/auto.sqlite" ] && snapshot_sqlite "$out/auto.sqlite" "$OUT/auto.sqlite"
for f in results.tsv report.md progress.png; do [ -f "$out/$f" ] && cp "$out/$f" "$OUT/"; done
tail -25 "$out.log"

#!/usr/bin/env bash
# Issue 7's GPU session: `golflab auto` on golf-baseline, ~90 s runs, a 30-minute wallclock budget,
# across 10-minute device calls (see bench/device_detached.sh). Run the same command every call; on a
# fresh machine carry .labstate/ with the last auto.sqlite snapshot copied to .labstate/auto/.
# usage: bash bench/auto_on_device.sh [WAIT_S] [HOURS]
set -u
source bench/device_setup.sh
source bench/device_detached.sh
wait=${1:-540} hours=${2:-0.5} out=.labstate/auto
mkdir -p "$out"
start_detached "$out.pid" "$out.log" \
  python3 -m golflab auto --space spaces/golf.toml --preset golf-baseline --budget 90s --set eval.stride=0 \
    --data /tmp/deb --gpus 0 --hours "$hours" --max-experiments 100 --out "$out"
wait_detached "$out.pid" "$wait"
snapshot_sqlite "$out/auto.sqlite" "$OUT/auto.sqlite"
for f in results.tsv report.md progress.png; do [ -f "$out/$f" ] && cp "$out/$f" "$OUT/"; done
tail -25 "$out.log"

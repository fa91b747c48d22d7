#!/usr/bin/env bash
# Run a lab on the device machine across 10-minute calls (see bench/device_detached.sh): each call
# (re)starts the lab if needed, waits up to WAIT seconds, then copies the store, the status, the report
# and the runs' small files to $OUT. On a fresh machine, carry .labstate/ holding the last snapshot.
# usage: bash bench/lab_on_device.sh PLAN STORE [WAIT_S]
set -u
source bench/device_setup.sh
source bench/device_detached.sh
plan=$1 store=$2 wait=${3:-540}
mkdir -p "$(dirname "$store")"
start_detached "$store.pid" "$store.log" \
  python3 -m golflab lab run "$plan" --data /tmp/deb --store "$store" --gpus 0 --quiet
wait_detached "$store.pid" "$wait"
snapshot_sqlite "$store" "$OUT/$(basename "$store")"
python3 -m golflab lab status "$plan" --data /tmp/deb --store "$store" > "$OUT/status.txt" 2>&1
python3 -m golflab lab report "$plan" --data /tmp/deb --store "$store" --out "$OUT/report" > /dev/null 2>&1
tar_small "${store%.sqlite}" "$OUT/runs.tgz"
cat "$OUT/status.txt"

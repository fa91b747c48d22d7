#!/usr/bin/env bash
# Run a lab on the device machine across 10-minute calls. The lab runs detached (setsid), so it keeps
# training between calls while the machine stays warm; each call waits up to WAIT seconds, then copies a
# consistent snapshot of the store, the status, the report and the runs' small files to $OUT. On a fresh
# machine, carry .labstate/ holding the last snapshot (<store name>) and the lab resumes from it.
# usage: bash bench/lab_on_device.sh PLAN STORE [WAIT_S]
set -u
source bench/device_setup.sh
plan=$1 store=$2 wait=${3:-540}
mkdir -p "$(dirname "$store")"
pidfile="$store.pid"
if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
  echo "starting the lab ($(ls "$store" 2>/dev/null && echo resuming || echo new))"
  setsid nohup python3 -m golflab lab run "$plan" --data /tmp/deb --store "$store" --gpus 0 --quiet \
    >> "$store.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
fi
t0=$(date +%s)
while kill -0 "$(cat "$pidfile")" 2>/dev/null && [ $(( $(date +%s) - t0 )) -lt "$wait" ]; do sleep 5; done
kill -0 "$(cat "$pidfile")" 2>/dev/null && echo "lab still running" || { echo "lab finished"; tail -5 "$store.log"; }
python3 - "$store" "$OUT/$(basename "$store")" <<'PY'
import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
src.backup(dst)
PY
python3 -m golflab lab status "$plan" --data /tmp/deb --store "$store" > "$OUT/status.txt" 2>&1
python3 -m golflab lab report "$plan" --data /tmp/deb --store "$store" --out "$OUT/report" > /dev/null 2>&1
lab=${store%.sqlite}
tar czf "$OUT/runs.tgz" --exclude='*.pt' --exclude='*.ptz' --exclude='*.bin' --exclude='*.glf' --exclude='.inductor-cache' \
  -C "$(dirname "$lab")" "$(basename "$lab")" 2>/dev/null
cat "$OUT/status.txt"

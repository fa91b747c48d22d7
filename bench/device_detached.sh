#!/usr/bin/env bash
# Helpers for long jobs on the device machine, which takes commands of at most 10 minutes: a job runs
# detached (setsid), so it keeps going between calls while the machine stays warm; each call waits a
# while, then snapshots the job's SQLite store to $OUT. A job whose machine was replaced resumes from the
# snapshot carried back in .labstate/ (golflab labs and auto searches resume from their store).
# Source it after bench/device_setup.sh.

# start_detached PIDFILE LOG CMD...: start CMD unless the process in PIDFILE still runs
start_detached() {
  local pidfile=$1 log=$2; shift 2
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return 0; fi
  echo "starting: $*"
  rm -f "$pidfile"
  # the job writes its own pid: setsid forks when the caller runs it as a process-group leader
  setsid nohup bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" >> "$log" 2>&1 < /dev/null &
  while [ ! -s "$pidfile" ]; do sleep 0.1; done
}

# wait_detached PIDFILE SECONDS: wait until the job ends or SECONDS pass; say which
wait_detached() {
  local pidfile=$1 t0; t0=$(date +%s)
  while kill -0 "$(cat "$pidfile")" 2>/dev/null && [ $(( $(date +%s) - t0 )) -lt "$2" ]; do sleep 5; done
  if kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "still running"; else echo "finished"; fi
}

# snapshot_sqlite SRC DST: a consistent copy of a live SQLite file
snapshot_sqlite() {
  python3 -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))" "$1" "$2"
}

# tar_small DIR TARBALL: the job's logs and JSON, without weights, artifacts or compile caches
tar_small() {
  tar czf "$2" --exclude='*.pt' --exclude='*.ptz' --exclude='*.bin' --exclude='*.glf' \
    --exclude='.inductor-cache' --exclude='worktrees' -C "$(dirname "$1")" "$(basename "$1")" 2>/dev/null
}

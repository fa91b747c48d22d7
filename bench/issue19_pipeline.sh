#!/usr/bin/env bash
# Issue 19 on one GPU, run detached by bench/issue19_device.sh: (1) golf-baseline against parameter-golf's
# train_gpt.py, SECONDS each, one after the other; (2) a 2-seed 120 s golf-baseline lab (bench/lab_share.toml)
# timed against its runs' train seconds; (3) an eager (train.compile=off) step-time probe. Touch W/skip_lab or
# W/skip_probe to leave a stage out. usage: bash bench/issue19_pipeline.sh W SECONDS
set -u
W=$1 S=${2:-300}
stage() { echo "$(date +%T) $*" >> "$W/stages"; }
stage "compare start (${S}s each)"
python3 bench/compare_reference.py --data /tmp/deb --ref .ref/train_gpt.py --seconds "$S" --out "$W/compare" \
  > "$W/compare.log" 2>&1
stage "compare done rc=$?"
if [ ! -f "$W/skip_lab" ]; then
  stage "lab start"
  mkdir -p "$W/lab"
  t0=$(date +%s.%N)
  python3 -m golflab lab run bench/lab_share.toml --data /tmp/deb --store "$W/lab/lab-share.lab.sqlite" --gpus 0 \
    --quiet > "$W/lab.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  python3 bench/lab_share.py "$W/lab/lab-share.lab.sqlite" --wall-start "$t0" --wall-end "$t1" \
    --json "$W/lab_share.json" > "$W/lab_share.txt" 2>&1
  stage "lab done rc=$rc"
fi
if [ ! -f "$W/skip_probe" ]; then
  stage "probe start"
  python3 -m golflab train --preset golf-baseline --data /tmp/deb --budget 30s --set train.compile=off \
    --set eval.stride=0 --set eval.val_every=0 --set artifact.enabled=false --set schedule.compile_warmup_steps=3 \
    --out "$W/probe_eager" > "$W/probe.log" 2>&1
  stage "probe done rc=$?"
fi
touch "$W/done"

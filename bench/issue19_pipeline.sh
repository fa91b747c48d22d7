#!/usr/bin/env bash
# Issue 19 on one GPU, run detached by bench/issue19_device.sh; the stages run one after the other on the
# same GPU, in the order given (default: probe frontier lab):
#   compare   golf-baseline against parameter-golf's train_gpt.py, SECONDS each (bench/compare_reference.py)
#   probe     step time of golf-baseline by compile scope and micro-batch count, with a profile and eval times (bench/step_probe.py)
#   kernels   step time of golf-baseline with flash against cuDNN attention (bench/step_probe.py)
#   flexdocs  step time of golf-frontier with FlexAttention document masks (flex) against cuDNN's dense mask
#   frontier  golf-frontier for SECONDS on the sp8192 dataset, standard eval (as the reference scores)
#   lab       the 6-run bench/lab_share.toml lab ($LAB_PLAN if set) with persistent workers, timed against its train seconds
# usage: bash bench/issue19_pipeline.sh W SECONDS [STAGE ...]
set -u
W=$1 S=${2:-300}; shift 2
stages=("$@"); [ ${#stages[@]} -gt 0 ] || stages=(probe frontier lab)
stage() { echo "$(date +%T) $*" >> "$W/stages"; }
for s in "${stages[@]}"; do
  stage "$s start"
  case $s in
    compare)
      python3 bench/compare_reference.py --data /tmp/deb --ref .ref/train_gpt.py --seconds "$S" --out "$W/compare" \
        > "$W/compare.log" 2>&1 ;;
    probe)
      python3 bench/step_probe.py --data /tmp/deb --preset golf-baseline --steps 30 --json "$W/probe.json" \
        --variant "" --variant "train.compile=regional" --variant "train.micro_batches=2" \
        --variant "train.compile=regional train.micro_batches=2" > "$W/probe.log" 2>&1 ;;
    kernels)
      python3 bench/step_probe.py --data /tmp/deb --preset golf-baseline --steps 30 --json "$W/kernels.json" \
        --variant "train.attention=flash" --variant "train.attention=cudnn" > "$W/kernels.log" 2>&1 ;;
    flexdocs)
      python3 bench/step_probe.py --data /tmp/deb8k --preset golf-frontier --steps 8 --json "$W/flexdocs.json" \
        --variant "train.attention=flex" --variant "train.attention=cudnn" > "$W/flexdocs.log" 2>&1 ;;
    frontier)
      python3 -m golflab train --preset golf-frontier --data /tmp/deb8k --budget "${S}s" --set eval.stride=0 \
        --out "$W/frontier" > "$W/frontier.log" 2>&1 ;;
    lab)
      mkdir -p "$W/lab"
      t0=$(date +%s.%N)
      python3 -m golflab lab run "${LAB_PLAN:-bench/lab_share.toml}" --data /tmp/deb --store "$W/lab/lab-share.lab.sqlite" --gpus 0 \
        --workers --quiet > "$W/lab.log" 2>&1
      rc=$?
      t1=$(date +%s.%N)
      python3 bench/lab_share.py "$W/lab/lab-share.lab.sqlite" --wall-start "$t0" --wall-end "$t1" \
        --json "$W/lab_share.json" > "$W/lab_share.txt" 2>&1
      (exit $rc) ;;
    *) echo "unknown stage $s" >> "$W/stages"; false ;;
  esac
  stage "$s done rc=$?"
done
touch "$W/done"

#!/usr/bin/env bash
# Issue-5 benchmark on one GPU: train golf-baseline, then re-pack the same weights with several
# artifact settings and re-evaluate each (standard and sliding stride 64). Usage: bench/artifact_bench.sh SECONDS OUTDIR
set -uo pipefail
secs=${1:-300}; out=${2:-/tmp/abench}
python3 -m golflab train -p golf-baseline --data /tmp/deb --budget ${secs}s --set eval.val_every=0 \
  --set eval.stride=64 --out $out/run > $out.train.txt 2>&1 || { tail -30 $out.train.txt; exit 1; }
grep -E "final|artifact|compile" $out/run/train.log
g() { COLUMNS=160 python3 -m golflab artifact $out/run --stride 64 "$@" 2>&1 | grep -v "^$"; }
g --quant int6 --compress lzma --compress brotli --compress zstd --fp16 "" --fp16 tok_emb
g --quant int8 --compress zlib --fp16 "" --scale-floor 0.007874

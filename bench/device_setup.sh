#!/usr/bin/env bash
# On a fresh device machine: make golflab importable from the checkout and tokenize debdocs.
# Usage (from the repo root): source bench/device_setup.sh   (expects .devdata/, and .whl/ for auto, carried)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-cache
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
# the machine has no index: golflab auto's Optuna comes from wheels carried in .whl/optuna/
# (fill it here with: pip download optuna -d .whl/optuna --python-version 3.12 --only-binary=:all:)
if ! python3 -c "import optuna" 2>/dev/null && [ -d .whl/optuna ]; then
  python3 -m pip install -q --no-index --find-links .whl/optuna optuna 2>&1 | tail -2
fi
if [ ! -f /tmp/deb/manifest.json ]; then
  t0=$(date +%s)
  python3 -m golflab prepare text .devdata/train.txt.xz .devdata/val.txt.xz --out /tmp/deb \
    --tokenizer .devdata/tokenizer_sp1024.model --workers 16 --test-frac 0.02 > /tmp/prepare.log 2>&1 \
    || { tail -20 /tmp/prepare.log; exit 1; }
  echo "prepare: $(( $(date +%s) - t0 ))s"
fi

"""Per-run overhead of a lab on this machine's CPU, against the cost of `python -c "import torch"`.

A 6-run plan of the tiny preset (baseline + 2 arms, 2 seeds each, 20 steps) runs once with a persistent
worker per slot and once with a fresh process per run, one after the other; the overhead of a run is its
wall time minus its training and evaluation seconds (the trainer's own clocks). Prints a table and the
ratio overhead / import-torch time for both (issue 16's goal: <= 0.5 with workers).

    python bench/lab_overhead.py [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAN = """name = "overhead"
budget = "20steps"
seeds = { min = 2, max = 2 }
[baseline]
preset = "tiny"
overrides = ["eval.val_every=0", "eval.stride=0", "artifact.enabled=false", "train.batch_tokens=2048"]
[rule]
spending = "none"
[[arm]]
name = "swiglu"
overrides = ["model.mlp=swiglu"]
[[arm]]
name = "gelu"
overrides = ["model.mlp=gelu"]
"""


def import_torch_s(repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_lab(root: Path, data: Path, workers: bool) -> tuple[int, float, float]:
    from golflab.engine.store import Store
    from golflab.lab.summary import time_use

    name = "workers" if workers else "fresh"
    plan = root / name / "overhead.toml"
    plan.parent.mkdir(parents=True)
    plan.write_text(PLAN)
    flag = "--workers" if workers else "--no-workers"
    subprocess.run([sys.executable, "-m", "golflab", "lab", "run", str(plan), "--data", str(data), "--gpus", "cpu",
                    "--quiet", flag], check=True, stdout=subprocess.DEVNULL)
    t = time_use(Store(plan.parent / "overhead.lab.sqlite", write=False))
    assert t is not None
    return t.runs, t.overhead_s, t.share or 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="Keep the labs here (default: a temporary folder).")
    args = ap.parse_args()
    from golflab.data.prepare import PrepareOptions, prepare_text

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import synthetic_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        data = root / "data"
        prepare_text([synthetic_corpus(root / "corpus.jsonl")], data,
                     PrepareOptions(vocab=320, val_frac=0.05, test_frac=0.0, seed=0, workers=1))
        torch_s = import_torch_s()
        rows = [("persistent worker", *run_lab(root, data, True)), ("fresh process", *run_lab(root, data, False))]
    print(f"python -c 'import torch': {torch_s:.2f} s (median of 3)")
    print(f"{'mode':<20}{'runs':>6}{'overhead s/run':>16}{'ratio to import':>17}{'training share':>16}")
    for mode, runs, over, share in rows:
        print(f"{mode:<20}{runs:>6}{over:>16.2f}{over / torch_s:>17.2f}{share:>16.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

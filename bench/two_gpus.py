"""Issue 20: golf-baseline on two GPUs (torchrun) against one, in one call on a two-GPU machine.

1. step time: one run on 1 GPU and one under `torchrun --nproc_per_node 2`, `--seconds` each: ms/step
   and the ratio (ideal 0.5 plus communication);
2. the same global batch for `--steps` steps on 1 and 2 processes: both loss curves and their largest
   difference;
3. a two-seed lab plan run with `--procs-per-run 2`, and again on two one-GPU slots: wall time and the
   training share of each.
Prints a table last. `--cpu` runs the same steps on the tiny preset with two gloo processes, to check the
script on a machine without GPUs (step time there means nothing).

    python bench/two_gpus.py --data /tmp/deb [--seconds 120] [--steps 20] [--out bench_out/two]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PLAN = """name = "two"
budget = "{budget}"
seeds = {{ min = 2, max = 2 }}
[baseline]
preset = "{preset}"
overrides = [{overrides}]
[rule]
spending = "none"
[[arm]]
name = "swiglu"
overrides = ["model.mlp=swiglu"]
"""


def golflab(nproc: int) -> list[str]:
    if nproc == 1:
        return [sys.executable, "-m", "golflab"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "golflab"]


def train(out: Path, nproc: int, preset: str, data: Path, budget: str, sets: list[str], env: dict) -> dict:
    cmd = [*golflab(nproc), "train", "--preset", preset, "--data", str(data), "--budget", budget, "--out", str(out),
           "--force"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    (out.parent / f"{out.name}.log").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    r = json.loads((out / "result.json").read_text())
    r["wall_s"] = time.time() - t0
    r["losses"] = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()
                   if json.loads(x).get("kind") == "train"]
    return r


def lab(root: Path, name: str, args: list[str], preset: str, data: Path, budget: str, sets: list[str],
        env: dict) -> dict:
    plan = root / name / "two.toml"
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text(PLAN.format(budget=budget, preset=preset, overrides=", ".join(json.dumps(s) for s in sets)))
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "golflab", "lab", "run", str(plan), "--data", str(data), "--quiet", *args],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - t0
    from golflab.engine.store import Store
    from golflab.lab.summary import time_use

    t = time_use(Store(plan.parent / "two.lab.sqlite", write=False))
    return {"wall_s": wall, "train_s": t.train_s if t else 0.0, "share": t.share if t else None,
            "runs": t.runs if t else 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("bench_out/two"))
    ap.add_argument("--cpu", action="store_true", help="tiny preset, two gloo processes (checks the script)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    preset = "tiny" if a.cpu else "golf-baseline"
    fast = ["eval.stride=0", "eval.val_every=0", "artifact.enabled=false"]
    env = dict(os.environ)
    if a.cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
        fast += ["train.micro_batches=2"]  # divisible by 2 ranks
    rows = []
    # 1. step time at a wallclock budget
    one = train(a.out / "one_gpu", 1, preset, a.data, f"{a.seconds}s", fast, env)
    two = train(a.out / "two_gpus", 2, preset, a.data, f"{a.seconds}s", fast, env)
    rows.append(("ms/step, 1 GPU", f"{one['ms_per_step']:.1f}"))
    rows.append(("ms/step, 2 GPUs (torchrun)", f"{two['ms_per_step']:.1f}"))
    rows.append(("ratio 2 / 1 (ideal 0.5)", f"{two['ms_per_step'] / one['ms_per_step']:.3f}"))
    rows.append(("steps in the budget, 1 / 2 GPUs", f"{one['steps']} / {two['steps']}"))
    rows.append(("val_bpb, 1 / 2 GPUs", f"{one['val_bpb']:.4f} / {two['val_bpb']:.4f}"))
    # 2. the same global batch for N steps
    c1 = train(a.out / "curve_one", 1, preset, a.data, f"{a.steps}steps", fast, env)
    c2 = train(a.out / "curve_two", 2, preset, a.data, f"{a.steps}steps", fast, env)
    diff = max(abs(x - y) for x, y in zip(c1["losses"], c2["losses"], strict=False))
    rows.append((f"largest loss difference over {a.steps} steps, 1 vs 2 GPUs", f"{diff:.2e}"))
    # 3. a two-seed lab: one run on both GPUs at a time, or one run per GPU
    gpus = ["--gpus", "cpu", "--parallel", "2"] if a.cpu else ["--gpus", "0,1"]
    budget = f"{a.steps}steps" if a.cpu else f"{a.seconds}s"
    both = lab(a.out, "procs2", [*gpus[:2], "--procs-per-run", "2"] if not a.cpu else ["--gpus", "cpu"], preset,
               a.data, budget, fast, env)
    slots = lab(a.out, "slots2", gpus, preset, a.data, budget, fast, env)
    for label, r in (("lab, --procs-per-run 2", both), ("lab, two 1-GPU slots", slots)):
        share = "-" if r["share"] is None else f"{r['share']:.0%}"
        rows.append((label, f"wall {r['wall_s']:.0f} s, {r['runs']} runs, training share {share}"))
    (a.out / "two_gpus.json").write_text(json.dumps({"one": one, "two": two, "curve_one": c1["losses"],
                                                      "curve_two": c2["losses"], "labs": [both, slots]}, indent=1))
    width = max(len(k) for k, _ in rows)
    print("\n| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

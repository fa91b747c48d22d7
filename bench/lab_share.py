"""The lab's training share from a finished lab store: its wall time against the sum of train seconds.

    python bench/lab_share.py STORE --wall-start T0 --wall-end T1     (epoch seconds around `golflab lab run`)

Per run: wall time as the lab saw it (the backend's, stored with the run), train seconds, the trainer's
own eval seconds (final eval + artifact round trip) and compile warm-up (from the run's train.log), and the
rest (process start, imports, data, model build, writing files). The table prints last.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from golflab.engine.store import Store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--wall-start", type=float, required=True)
    ap.add_argument("--wall-end", type=float, required=True)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    runs = []
    for r in sorted(Store(args.store, write=False).runs(), key=lambda r: r.started_at or 0.0):
        v, arm = r.values, Path(r.run_dir).parent.name.rsplit("-", 1)[0]  # runs/<experiment>-<key>/seed<k>
        log = Path(r.run_dir) / "train.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        m = re.search(r"compile warm-up: \d+ (?:of at most \d+ )?steps in ([\d.]+)s", text)
        wall, seed, status = r.wall_s, r.seed, r.status
        train, ev = v.get("train_seconds"), v.get("eval_seconds")
        warm = float(m.group(1)) if m else None
        rest = wall - train - (ev or 0) - (warm or 0) if wall and train else None
        runs.append({"arm": arm, "seed": seed, "status": status, "wall_s": wall, "train_s": train, "eval_s": ev,
                     "compile_warmup_s": warm, "other_s": rest, "steps": v.get("steps"),
                     "ms_per_step": v.get("ms_per_step"), "val_bpb": v.get("val_bpb")})
    lab_wall = args.wall_end - args.wall_start
    train_sum = sum(r["train_s"] or 0 for r in runs)
    run_wall_sum = sum(r["wall_s"] or 0 for r in runs)
    summary = {"runs": len(runs), "lab_wall_s": lab_wall, "train_sum_s": train_sum,
               "share": train_sum / lab_wall if lab_wall > 0 else None, "run_wall_sum_s": run_wall_sum,
               "lab_outside_runs_s": lab_wall - run_wall_sum,
               "overhead_per_run_s": (lab_wall - train_sum) / max(len(runs), 1), "per_run": runs}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    f = lambda x, p=1: "-" if x is None else f"{x:.{p}f}"  # noqa: E731
    print("| run | status | wall s | train s | compile warm-up s | final eval + artifact s | other s | steps | ms/step | val_bpb |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['arm']} seed {r['seed']} | {r['status']} | {f(r['wall_s'])} | {f(r['train_s'])} | "
              f"{f(r['compile_warmup_s'])} | {f(r['eval_s'])} | {f(r['other_s'])} | {r['steps']} | "
              f"{f(r['ms_per_step'])} | {f(r['val_bpb'], 4)} |")
    print(f"\nlab wall {lab_wall:.1f} s for {len(runs)} runs; sum of train seconds {train_sum:.1f} s; "
          f"training share {100 * (summary['share'] or 0):.1f}%; overhead {summary['overhead_per_run_s']:.1f} s "
          f"per run; lab time outside any run {summary['lab_outside_runs_s']:.1f} s")


if __name__ == "__main__":
    main()

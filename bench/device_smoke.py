"""GPU smoke test: every model option compiles and trains on CUDA, and the full-size presets run.

    python bench/device_smoke.py --data DATASET_DIR --out OUT [--seconds 45]

Each variant is a 2-layer golf-baseline with one technique switched on, trained for a few steps with
torch.compile (so FlexAttention windows, registers, MoS, ... are all compiled); then golf-baseline and
golf-swiglu576 run for --seconds each. Prints one table at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {
    "baseline-2L": [],
    "swiglu": ["model.mlp=swiglu"],
    "gelu": ["model.mlp=gelu"],
    "window256+registers4": ["model.attn_window=256", "model.window_layers=[0]", "model.num_registers=4"],
    "v_norm": ["model.v_norm=true"],
    "value_embeds": ["model.value_embed_layers=[1]"],
    "mos2+untied": ["model.mos_experts=2", "model.tie_embeddings=false"],
    "normuon+polar": ["optim.matrix.optimizer=normuon", "optim.muon.ns_coeffs=polar_express"],
    "ema": ["schedule.ema_decay=0.99"],
}
SMALL = ["model.num_layers=2", "train.batch_tokens=131072", "train.micro_batches=2", "schedule.compile_warmup_steps=2",
         "eval.val_every=0", "eval.stride=0", "artifact.enabled=false"]


def run(name: str, preset: str, overrides: list[str], budget: str, data: Path, out: Path) -> dict:
    run_dir = out / name
    cmd = [sys.executable, "-m", "golflab", "train", "-p", preset, "--data", str(data), "--budget", budget,
           "--out", str(run_dir)]
    for o in overrides:
        cmd += ["--set", o]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    res_path = run_dir / "result.json"
    r = json.loads(res_path.read_text()) if res_path.exists() else {"status": "no result", "error": proc.stderr[-500:]}
    r["wall"] = time.time() - t0
    if proc.returncode != 0:
        print(f"--- {name} failed:\n{proc.stderr[-2000:]}", flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=45)
    ap.add_argument("--skip-variants", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    if not args.skip_variants:
        for name, ov in VARIANTS.items():
            rows[name] = run(name, "golf-baseline", SMALL + ov, "12steps", args.data, args.out)
            print(name, rows[name].get("status"), f"{rows[name]['wall']:.0f}s", flush=True)
    for preset in ("golf-baseline", "golf-swiglu576"):
        rows[preset] = run(preset, preset, ["eval.val_every=0", "eval.stride=256"], f"{args.seconds}s", args.data, args.out)
        print(preset, rows[preset].get("status"), f"{rows[preset]['wall']:.0f}s", flush=True)
    print("\n| run | status | steps | ms/step | val_bpb | sliding | artifact bytes | artifact val_bpb | MFU | mem GB | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        a = r.get("artifact") or {}

        def f(v, fmt="{:.4f}"):
            return fmt.format(v) if isinstance(v, (int, float)) else "-"

        print(f"| {name} | {r.get('status')} | {r.get('steps', '-')} | {f(r.get('ms_per_step'), '{:.1f}')} | "
              f"{f(r.get('val_bpb'))} | {f(r.get('sliding_val_bpb'))} | {f(a.get('bytes_total'), '{:,}')} | "
              f"{f(a.get('val_bpb'))} | {f(r.get('mfu'), '{:.3f}')} | {f(r.get('peak_mem_gb'), '{:.1f}')} | "
              f"{r['wall']:.0f} |")
    (args.out / "smoke.json").write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()

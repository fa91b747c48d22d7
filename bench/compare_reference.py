"""Side-by-side benchmark: golflab's `golf-baseline` against parameter-golf's own train_gpt.py.

Both train on the same shards for the same wallclock, one after the other on the same GPU, then
report ms/step, tokens/s and val_bpb (before and after the int8+zlib round trip) and the ratios.

    python bench/compare_reference.py --data DATASET_DIR --ref .ref/train_gpt.py --seconds 150

The reference script is fetched from openai/parameter-golf into an ignored folder (.ref/) at run
time and never committed. DATASET_DIR is a golflab dataset (golflab prepare) with a SentencePiece
tokenizer of vocab 1024; the reference sees it through fineweb_*-named links.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def pg_layout(dataset: Path, out: Path) -> tuple[Path, Path]:
    """Link golflab shards under parameter-golf's names; return (data dir, tokenizer path)."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    link_dir = out / "pg_data"
    link_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        for shard in sorted(dataset.glob(f"{split}_*.bin")):
            dst = link_dir / f"fineweb_{shard.name}"
            if not dst.exists():
                dst.symlink_to(shard.resolve())
    tok = dataset / manifest["tokenizer"]["file"]
    return link_dir, tok


def run_reference(ref: Path, dataset: Path, seconds: float, out: Path, seed: int) -> dict:
    data_dir, tok = pg_layout(dataset, out)
    work = out / "reference"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATA_PATH=str(data_dir), TOKENIZER_PATH=str(tok), MAX_WALLCLOCK_SECONDS=str(seconds),
               VAL_LOSS_EVERY="0", SEED=str(seed), RUN_ID="reference", TRAIN_LOG_EVERY="100")
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(ref.resolve())], cwd=work, env=env, capture_output=True, text=True)
    (work / "stdout.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"reference failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    log = proc.stdout
    last = re.findall(r"step:(\d+)/\d+ val_loss:([\d.]+) val_bpb:([\d.]+) train_time:(\d+)ms step_avg:([\d.]+)ms", log)[-1]
    rt = re.search(r"final_int8_zlib_roundtrip_exact val_loss:([\d.]+) val_bpb:([\d.]+)", log)
    size = re.search(r"Total submission size int8\+zlib: (\d+) bytes", log)
    steps, train_ms = int(last[0]), float(last[3])
    return {"steps": steps, "ms_per_step": train_ms / steps, "train_seconds": train_ms / 1000,
            "val_bpb": float(last[2]), "artifact_val_bpb": float(rt.group(2)) if rt else None,
            "bytes_total": int(size.group(1)) if size else None, "wall_seconds": time.time() - t0}


def run_golflab(dataset: Path, seconds: float, out: Path, seed: int, extra: list[str]) -> dict:
    run_dir = out / "golflab"
    cmd = [sys.executable, "-m", "golflab", "train", "--preset", "golf-baseline", "--data", str(dataset),
           "--budget", f"{seconds}s", "--set", "eval.stride=0", "--set", "eval.val_every=0",
           "--set", f"seed={seed}", "--out", str(run_dir)]
    for item in extra:
        cmd += ["--set", item]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    (out / "golflab_stdout.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"golflab failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    r = json.loads((run_dir / "result.json").read_text())
    a = r.get("artifact") or {}
    return {"steps": r["steps"], "ms_per_step": r["ms_per_step"], "train_seconds": r["train_seconds"],
            "val_bpb": r["val_bpb"], "artifact_val_bpb": a.get("val_bpb"), "bytes_total": a.get("bytes_total"),
            "wall_seconds": time.time() - t0, "mfu": r.get("mfu"), "peak_mem_gb": r.get("peak_mem_gb")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--ref", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    ap.add_argument("--set", dest="extra", action="append", default=[], help="extra golflab overrides")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    batch = 524_288
    results = {"reference": run_reference(args.ref, args.data, args.seconds, args.out, args.seed),
               "golflab": run_golflab(args.data, args.seconds, args.out, args.seed, args.extra)}
    (args.out / "compare.json").write_text(json.dumps(results, indent=2))
    print("\n| trainer | steps | ms/step | tokens/s | val_bpb | int8+zlib val_bpb | bytes | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        tps = batch / (r["ms_per_step"] / 1000)
        print(f"| {name} | {r['steps']} | {r['ms_per_step']:.1f} | {tps:,.0f} | {r['val_bpb']:.4f} | "
              f"{r['artifact_val_bpb'] or float('nan'):.4f} | {r['bytes_total']} | {r['wall_seconds']:.0f} |")
    g, ref = results["golflab"], results["reference"]
    print(f"\nstep-time ratio golflab/reference: {g['ms_per_step'] / ref['ms_per_step']:.3f}  "
          f"val_bpb delta golflab-reference: {g['val_bpb'] - ref['val_bpb']:+.4f}")


if __name__ == "__main__":
    main()

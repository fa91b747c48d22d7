"""Side-by-side benchmark: golflab's `golf-baseline` against parameter-golf's own train_gpt.py.

Both train on the same shards for the same wallclock, one after the other on the same GPU, then
report ms/step, tokens/s and val_bpb (before and after the int8+zlib round trip), the artifact's
bytes against the 16,000,000-byte limit, and the step-time ratio. The table prints last.

    python bench/compare_reference.py --data DATASET_DIR --ref .ref/train_gpt.py --seconds 300 --out OUT
    python bench/compare_reference.py --out OUT --table      # re-print the table from OUT/compare.json

The reference script is fetched from openai/parameter-golf into an ignored folder (.ref/) at run
time and never committed. DATASET_DIR is a golflab dataset (golflab prepare) with a SentencePiece
tokenizer of vocab 1024; the reference sees it through fineweb_*-named links. Each trainer's log
streams to OUT (reference/stdout.txt, golflab_stdout.txt) and OUT/compare.json is rewritten after
each one, so a detached run can be watched and a finished half is never lost.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

LIMIT_BYTES = 16_000_000
BATCH_TOKENS = 524_288  # both trainers' tokens per optimizer step (golf-baseline = the reference's default)


def pg_layout(dataset: Path, out: Path) -> tuple[Path, Path]:
    """Link golflab shards under parameter-golf's names; return (data dir, tokenizer path)."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    link_dir = out / "pg_data"
    link_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        shards = sorted(dataset.glob(f"{split}_*.bin"))
        if not shards:
            raise SystemExit(f"{dataset} has no {split}_*.bin shards")
        for shard in shards:
            dst = link_dir / f"fineweb_{shard.name}"
            if not dst.exists():
                dst.symlink_to(shard.resolve())
    tok = dataset / manifest["tokenizer"]["file"]
    return link_dir, tok


def run_logged(cmd: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> int:
    """Run cmd with stdout and stderr streaming into log; return its exit code."""
    with open(log, "w") as f:
        return subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, text=True).returncode


def parse_reference_log(log: str) -> dict:
    """The reference's figures from its console log (train_gpt.py's log0 lines)."""
    finals = re.findall(r"step:(\d+)/\d+ val_loss:([\d.]+) val_bpb:([\d.]+) train_time:(\d+)ms step_avg:([\d.]+)ms", log)
    if not finals:
        raise ValueError("no final 'step:N/M val_loss:... val_bpb:...' line in the reference log")
    last = finals[-1]
    rt = re.search(r"final_int8_zlib_roundtrip_exact val_loss:([\d.]+) val_bpb:([\d.]+)", log)
    size = re.search(r"Total submission size int8\+zlib: (\d+) bytes", log)
    mem = re.search(r"peak memory allocated: (\d+) MiB", log)
    steps, train_ms = int(last[0]), float(last[3])
    bytes_total = int(size.group(1)) if size else None
    return {"steps": steps, "ms_per_step": train_ms / max(steps, 1), "train_seconds": train_ms / 1000,
            "val_loss": float(last[1]), "val_bpb": float(last[2]),
            "artifact_val_loss": float(rt.group(1)) if rt else None,
            "artifact_val_bpb": float(rt.group(2)) if rt else None,
            "bytes_total": bytes_total, "fits": None if bytes_total is None else bytes_total <= LIMIT_BYTES,
            "peak_mem_gb": int(mem.group(1)) / 1024 if mem else None}


def run_reference(ref: Path, dataset: Path, seconds: float, out: Path, seed: int) -> dict:
    data_dir, tok = pg_layout(dataset, out)
    work = out / "reference"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATA_PATH=str(data_dir.resolve()), TOKENIZER_PATH=str(tok.resolve()),
               MAX_WALLCLOCK_SECONDS=str(seconds), VAL_LOSS_EVERY="0", SEED=str(seed), RUN_ID="reference",
               TRAIN_LOG_EVERY="100")
    log = work / "stdout.txt"
    t0 = time.time()
    rc = run_logged([sys.executable, str(ref.resolve())], log, cwd=work, env=env)
    text = log.read_text(errors="replace")
    if rc != 0:
        raise RuntimeError(f"reference failed (exit {rc}):\n{text[-3000:]}")
    return parse_reference_log(text) | {"wall_seconds": time.time() - t0}


def run_golflab(dataset: Path, seconds: float, out: Path, seed: int, preset: str, extra: list[str]) -> dict:
    run_dir = out / "golflab"
    cmd = [sys.executable, "-m", "golflab", "train", "--preset", preset, "--data", str(dataset),
           "--budget", f"{seconds:g}s", "--set", "eval.stride=0", "--set", "eval.val_every=0",
           "--set", f"seed={seed}", "--out", str(run_dir)]
    for item in extra:
        cmd += ["--set", item]
    log = out / "golflab_stdout.txt"
    t0 = time.time()
    rc = run_logged(cmd, log)
    if rc != 0:
        raise RuntimeError(f"golflab failed (exit {rc}):\n{log.read_text(errors='replace')[-3000:]}")
    return golflab_figures(json.loads((run_dir / "result.json").read_text())) | {"wall_seconds": time.time() - t0}


def golflab_figures(r: dict) -> dict:
    """The figures of a golflab result.json."""
    a = r.get("artifact") or {}
    return {"steps": r["steps"], "ms_per_step": r["ms_per_step"], "train_seconds": r["train_seconds"],
            "val_loss": r["val_loss"], "val_bpb": r["val_bpb"], "artifact_val_loss": a.get("val_loss"),
            "artifact_val_bpb": a.get("val_bpb"), "bytes_total": a.get("bytes_total"), "fits": a.get("fits"),
            "mfu": r.get("mfu"), "tokens_per_second": r.get("tokens_per_second"), "peak_mem_gb": r.get("peak_mem_gb")}


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def table(results: dict) -> str:
    """The markdown table, with the golflab/reference ratios under it when both are there."""
    rows = ["| trainer | steps | ms/step | tokens/s | val_bpb | int8+zlib val_bpb | artifact bytes | fits 16 MB | wall s |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"| {name} | failed: {r['error'].splitlines()[0][:80]} | | | | | | | |")
            continue
        tps = r.get("tokens_per_second") or BATCH_TOKENS / (r["ms_per_step"] / 1000)
        fits = "-" if r.get("fits") is None else ("yes" if r["fits"] else "**no**")
        rows.append(f"| {name} | {r['steps']} | {r['ms_per_step']:.1f} | {tps:,.0f} | {r['val_bpb']:.4f} | "
                    f"{_f(r.get('artifact_val_bpb'), '.4f')} | {_f(r.get('bytes_total'), ',')} | {fits} | "
                    f"{r['wall_seconds']:.0f} |")
    g, ref = results.get("golflab", {}), results.get("reference", {})
    recount = None
    if g.get("val_loss") and ref.get("val_loss"):
        # bpb = loss / (ln 2 * bytes per token). golflab counts each target's UTF-8 bytes; the reference's
        # lookup table counts every '▁' after a piece's first character as 3 bytes (the UTF-8 of U+2581)
        # instead of one space, so on a tokenizer with whitespace-run pieces (identity normalization) it
        # over-counts bytes and under-states bpb. Both score the same val targets: recount the reference
        # with golflab's bytes per token.
        g_bpt = g["val_loss"] / (math.log(2) * g["val_bpb"])
        r_bpt = ref["val_loss"] / (math.log(2) * ref["val_bpb"])
        recount = {"val_bpb": ref["val_loss"] / (math.log(2) * g_bpt)}
        if ref.get("artifact_val_loss") is not None:
            recount["artifact_val_bpb"] = ref["artifact_val_loss"] / (math.log(2) * g_bpt)
        rows.append(f"| reference, val_bpb recounted in UTF-8 bytes | | | | {recount['val_bpb']:.4f} | "
                    f"{_f(recount.get('artifact_val_bpb'), '.4f')} | | | |")
        notes = [f"bytes/token on the val targets: golflab {g_bpt:.4f} (UTF-8), reference's table {r_bpt:.4f} "
                 f"({100 * (r_bpt / g_bpt - 1):+.1f}%); val_loss (nats/token) golflab {g['val_loss']:.4f}, "
                 f"reference {ref['val_loss']:.4f}"]
    if "ms_per_step" in g and "ms_per_step" in ref:
        rows.append("")
        rows.append(f"step-time ratio golflab/reference: {g['ms_per_step'] / ref['ms_per_step']:.3f}   "
                    f"steps ratio: {g['steps'] / ref['steps']:.3f}   "
                    f"val_bpb golflab-reference: {g['val_bpb'] - ref['val_bpb']:+.4f}")
        if g.get("artifact_val_bpb") is not None and ref.get("artifact_val_bpb") is not None:
            rows.append(f"round-trip val_bpb golflab-reference: {g['artifact_val_bpb'] - ref['artifact_val_bpb']:+.4f}   "
                        f"round-trip loss: golflab {g['artifact_val_bpb'] - g['val_bpb']:+.4f}, "
                        f"reference {ref['artifact_val_bpb'] - ref['val_bpb']:+.4f}")
        if recount:
            rows.append(notes[0])
            rows.append(f"in UTF-8 bytes, val_bpb golflab-reference: {g['val_bpb'] - recount['val_bpb']:+.4f}" + (
                f", after the round trip {g['artifact_val_bpb'] - recount['artifact_val_bpb']:+.4f}"
                if "artifact_val_bpb" in recount and g.get("artifact_val_bpb") is not None else ""))
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path)
    ap.add_argument("--ref", type=Path)
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    ap.add_argument("--preset", default="golf-baseline", help="golflab preset (tiny: a CPU check of this script)")
    ap.add_argument("--only", choices=("reference", "golflab"), help="run one trainer, keep the other's result")
    ap.add_argument("--table", action="store_true", help="only print the table of OUT/compare.json")
    ap.add_argument("--set", dest="extra", action="append", default=[], help="extra golflab overrides")
    args = ap.parse_args()
    path = args.out / "compare.json"
    results: dict = json.loads(path.read_text()) if path.exists() else {}
    if args.table:  # re-read both trainers' outputs: figures added to this script since the run
        ref_log, g_res = args.out / "reference" / "stdout.txt", args.out / "golflab" / "result.json"
        if "wall_seconds" in results.get("reference", {}) and ref_log.exists():
            results["reference"] = parse_reference_log(ref_log.read_text(errors="replace")) | {
                "wall_seconds": results["reference"]["wall_seconds"]}
        if "wall_seconds" in results.get("golflab", {}) and g_res.exists():
            results["golflab"] = golflab_figures(json.loads(g_res.read_text())) | {
                "wall_seconds": results["golflab"]["wall_seconds"]}
    if not args.table:
        if args.data is None or (args.ref is None and args.only != "golflab"):
            ap.error("--data and --ref are required unless --table (or --only golflab, which needs no --ref)")
        args.out.mkdir(parents=True, exist_ok=True)
        runs = {"reference": lambda: run_reference(args.ref, args.data, args.seconds, args.out, args.seed),
                "golflab": lambda: run_golflab(args.data, args.seconds, args.out, args.seed, args.preset, args.extra)}
        for name, fn in runs.items():
            if args.only and name != args.only:
                continue
            print(f"{time.strftime('%H:%M:%S')} training {name} for {args.seconds:g} s", flush=True)
            try:
                results[name] = fn()
            except (RuntimeError, ValueError) as exc:  # keep the other trainer's figures
                results[name] = {"error": str(exc)}
                print(exc, file=sys.stderr, flush=True)
            path.write_text(json.dumps(results, indent=2))
    print("\n" + table(results), flush=True)
    if any("error" in r for r in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""Where a training step's time goes, and what the micro-batch count changes (issue 19, item 3).

For each variant (a list of --set overrides), builds golflab's Trainer on the dataset, runs the compile
warm-up, times --steps optimizer steps (CUDA-synchronized, after 2 untimed ones), and profiles one
more step with torch.profiler: GPU time by kernel family, and GPU busy time against the step's wall
time (a step that is much longer than its kernels is bound by the CPU's launches). One variant at a time
in one process, so every variant runs on the same GPU, clocks and data; the table prints last.

    python bench/step_probe.py --data DIR --preset golf-baseline --steps 40 \
        --variant "train.micro_batches=8" --variant "train.micro_batches=1" [--json OUT.json]
    python bench/step_probe.py --data DIR --preset tiny --steps 3 --variant "" --cpu     # a CPU check
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import time
from collections import defaultdict
from pathlib import Path

import torch

from golflab.config.loader import load_config
from golflab.train.backends import autocast_dtype, setup_backends
from golflab.train.distributed import init_distributed
from golflab.train.loop import Trainer
from golflab.train.runlog import RunLog
from golflab.train.sources import sources_from_config

FAMILIES = [  # kernel-name patterns, first match wins
    ("attention", r"flash|fmha|attention|sdpa|cudnn"),
    ("matmul", r"gemm|cutlass|sm90_xmma|sm80_xmma|nvjet|cublas|matmul|wgmma"),
    ("optimizer (foreach)", r"foreach|multi_tensor"),
    ("copy / cast", r"copy|memcpy|memset|cast|fill"),
    ("reduction", r"reduce|norm|softmax|nll|cross_entropy|logsumexp"),
    ("triton (fused)", r"triton"),
]


def family(name: str) -> str:
    low = name.lower()
    for fam, pat in FAMILIES:
        if re.search(pat, low):
            return fam
    return "other"


def profile_step(trainer: Trainer) -> dict:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    trainer.sync()
    t0 = time.perf_counter()
    with profile(activities=acts) as prof:
        trainer.train_step(1.0)
        trainer.sync()
    wall = time.perf_counter() - t0
    by_family: dict[str, float] = defaultdict(float)
    kernels: dict[str, float] = defaultdict(float)
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            us = ev.device_time  # microseconds
            by_family[family(ev.name)] += us
            kernels[ev.name[:90]] += us
    busy = sum(by_family.values()) / 1e3
    top = sorted(kernels.items(), key=lambda kv: -kv[1])[:25]
    return {"profiled_step_ms": wall * 1e3, "gpu_busy_ms": busy,
            "families_ms": {k: v / 1e3 for k, v in sorted(by_family.items(), key=lambda kv: -kv[1])},
            "top_kernels_ms": [(k, v / 1e3) for k, v in top]}


def probe(data: str, preset: str, sets: list[str], steps: int, check_steps: int = 2) -> dict:
    cfg = load_config(preset=preset, overrides=[f"data.path={data}", "eval.val_every=0", *sets])
    env = init_distributed()
    setup_backends(env.device, cfg, autocast_dtype(cfg, env.device) is None)
    log = RunLog(None)
    trainer = Trainer(cfg, None, sources_from_config(cfg), env, log, resumable=False)
    t0 = time.perf_counter()
    trainer.compile_warmup()
    warm = time.perf_counter() - t0
    # untimed steps from the restored init, their losses kept: variants of one function (attention kernels)
    # agree on the first, and a variant that diverges early shows it
    losses = [float(trainer.train_step(1.0)) for _ in range(max(2, check_steps))]
    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(1.0)
    trainer.sync()
    ms = (time.perf_counter() - t0) / steps * 1e3
    row = {"variant": " ".join(sets) or "(preset)", "ms_per_step": ms, "warmup_s": warm, "first_loss": losses[0],
           "losses": losses,
           "grad_accum": trainer.accum, "tokens_per_s": cfg.train.batch_tokens / ms * 1e3,
           "peak_gb": torch.cuda.max_memory_allocated() / 1e9 if env.device.type == "cuda" else 0.0}
    row.update(profile_step(trainer))
    if trainer.val_tokens is not None:  # the first eval of a process compiles its graph; the second does not
        for k in (1, 2):
            trainer.sync()
            t0 = time.perf_counter()
            trainer.evaluate(trainer.val_tokens)
            trainer.sync()
            row[f"eval{k}_s"] = time.perf_counter() - t0
    del trainer
    gc.collect()
    if env.device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default="golf-baseline")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--variant", action="append", default=[], help="space-separated --set overrides; repeatable")
    ap.add_argument("--check-steps", type=int, default=2, help="untimed steps first, each loss kept (at least 2)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--cpu", action="store_true", help="allow a CPU run (a check of this script)")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.cpu:
        raise SystemExit("no CUDA device (pass --cpu to check the script on CPU)")
    rows = []
    for v in args.variant or [""]:
        sets = v.split()
        try:
            rows.append(probe(args.data, args.preset, sets, args.steps, args.check_steps))
        except Exception as exc:  # one failed variant must not lose the others' rows
            rows.append({"variant": v, "error": f"{type(exc).__name__}: {exc}"})
        print(json.dumps(rows[-1]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    print(f"\n{'variant':44} {'accum':>5} {'ms/step':>8} {'ratio':>6} {'GPU busy':>8} {'peak GB':>7} {'warm-up s':>9}"
          f" {'loss 1':>7} {'eval 1 s':>8} {'eval 2 s':>8}")
    base = next((r["ms_per_step"] for r in rows if "ms_per_step" in r), None)
    for r in rows:
        if "error" in r:
            print(f"{r['variant'][:44]:44} failed: {r['error'][:120]}")
            continue
        print(f"{r['variant'][:44]:44} {r['grad_accum']:5d} {r['ms_per_step']:8.1f} {r['ms_per_step'] / base:6.3f} "
              f"{r['gpu_busy_ms']:8.1f} {r['peak_gb']:7.1f} {r['warmup_s']:9.1f} {r['first_loss']:7.4f}"
              f" {r.get('eval1_s', 0.0):8.2f} {r.get('eval2_s', 0.0):8.2f}")
    for r in rows:
        if "losses" in r:
            print(f"  {r['variant'][:40]}: losses of the untimed steps: " + " ".join(f"{x:.4f}" for x in r["losses"]))
    for r in rows:
        if "families_ms" in r:
            fams = ", ".join(f"{k} {v:.1f}" for k, v in r["families_ms"].items())
            print(f"  {r['variant'][:40]}: GPU ms by family (one profiled step): {fams}")

    for r in rows[:1]:
        for name, ms in r.get("top_kernels_ms", []):
            print(f"  {ms:7.2f} ms  {name}")


if __name__ == "__main__":
    main()

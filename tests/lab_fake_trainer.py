"""A fake `golflab` for lab tests: `train --config C --out D` and `eval D --split S --out F`.

val_bpb = 1.30 + effect(model.mlp) + 0.01 * z(seed) + 0.001 * z(seed, mlp): the seed term is shared by
all arms (what a paired test exploits). Environment knobs:
FAKE_EFFECTS  JSON {mlp kind: effect} replacing the default effects;
FAKE_TEST_EFFECTS  the same for the test split (eval --split test) only;
FAKE_FRESH_EFFECTS  the same for seeds >= 100000 only (an auto search's replication seeds);
FAKE_CRASH    crash (exit 3, no result.json) when the run dir contains this text ("swiglu/seed1338");
FAKE_FAIL     write result.json with status failed when the run dir contains this text;
FAKE_HANG     sleep forever when the run dir contains this text;
FAKE_SLEEP    seconds to sleep before finishing (to kill a lab mid-run);
FAKE_NO_SPLITS  ignore eval.also_splits (as an older trainer would: confirmation then queues evals);
FAKE_NO_VAL_CURVE  write train records only (a budget too short for periodic evals);
FAKE_LOG      append "train <run dir>" / "eval <run dir>" to this file on every start.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import tomllib

EFFECTS = {"relu2": 0.0, "swiglu": -0.02, "gelu": 0.01, "silu": 0.005}


def z(*parts: object) -> float:
    """A deterministic standard-normal-ish number from the parts (Box-Muller on a hash)."""
    h = hashlib.sha256(repr(parts).encode()).digest()
    u1 = (int.from_bytes(h[:8], "big") + 1) / 2**64
    u2 = int.from_bytes(h[8:16], "big") / 2**64
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def bpb(cfg: dict, split: str = "val") -> float:
    knob = "FAKE_TEST_EFFECTS" if split == "test" and os.environ.get("FAKE_TEST_EFFECTS") else "FAKE_EFFECTS"
    if cfg["seed"] >= 100_000 and os.environ.get("FAKE_FRESH_EFFECTS"):
        knob = "FAKE_FRESH_EFFECTS"
    effects = json.loads(os.environ[knob]) if os.environ.get(knob) else EFFECTS
    mlp = cfg["model"]["mlp"]
    return 1.30 + effects.get(mlp, 0.0) + 0.01 * z(cfg["seed"], split) + 0.001 * z(cfg["seed"], mlp, split)


def log(kind: str, run_dir: Path) -> None:
    if os.environ.get("FAKE_LOG"):
        with open(os.environ["FAKE_LOG"], "a") as fh:
            fh.write(f"{kind} {run_dir}\n")


def knob(name: str, run_dir: Path, cfg: dict | None = None) -> bool:
    """The knob's text is in the run dir, or names the run as "<mlp>/seed<seed>"."""
    text = os.environ.get(name)
    tag = f"{cfg['model']['mlp']}/seed{cfg['seed']}" if cfg else ""
    return bool(text) and (text in str(run_dir) or text in tag)


def atomic_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def train(config: Path, out: Path) -> int:
    log("train", out)
    cfg = tomllib.loads(config.read_text())
    print(f"fake training {out} seed {cfg['seed']} mlp {cfg['model']['mlp']}", flush=True)
    if knob("FAKE_HANG", out, cfg):
        time.sleep(3600)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    if knob("FAKE_CRASH", out, cfg):
        print("RuntimeError: CUDA out of memory (fake)", flush=True)
        return 3
    final = bpb(cfg)
    with open(out / "metrics.jsonl", "w") as fh:
        for i, step in enumerate((10, 20, 30)):
            v = final + 0.2 * (2 - i)
            fh.write(json.dumps({"kind": "train", "step": step, "loss": v * 0.7, "elapsed_s": step * 0.1}) + "\n")
            if not os.environ.get("FAKE_NO_VAL_CURVE"):
                fh.write(json.dumps({"kind": "val", "step": step, "val_loss": v * 0.69, "val_bpb": v,
                                     "elapsed_s": step * 0.1}) + "\n")
    failed = knob("FAKE_FAIL", out, cfg)
    result = {"status": "failed" if failed else "ok", "error": "loss is NaN (fake)" if failed else None,
              "val_loss": final * 0.69, "val_bpb": float("nan") if failed else final,
              "sliding_val_bpb": final - 0.01, "artifact": {"val_bpb": final + 0.005, "bytes_total": 1000},
              "steps": 30, "train_seconds": 3.0, "device": "cpu", "seed": cfg["seed"]}
    if not os.environ.get("FAKE_NO_SPLITS"):
        splits = cfg.get("eval", {}).get("also_splits", [])
        result["splits"] = {s: {"val_loss": bpb(cfg, s) * 0.69, "val_bpb": bpb(cfg, s)} for s in splits}
    atomic_json(out / "result.json", result)
    return 1 if failed else 0


def evaluate(run_dir: Path, split: str, out: Path) -> int:
    log("eval", run_dir)
    cfg = tomllib.loads((run_dir / "config.toml").read_text())
    v = bpb(cfg, split)
    atomic_json(out, {"split": split, "val_loss": v * 0.69, "val_bpb": v})
    return 0


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    opts = {args[i]: args[i + 1] for i in range(len(args)) if args[i].startswith("--")}
    if cmd == "train":
        return train(Path(opts["--config"]), Path(opts["--out"]))
    if cmd == "eval":
        return evaluate(Path(args[0]), opts["--split"], Path(opts["--out"]))
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`golflab export --format parameter-golf`: a records/track_10min_16mb/ folder as real records have it.

README.md (per-seed results, the config diff without local paths, the rule checks), submission.json
(the fields real records carry: author, github_id, name, blurb, date, track, val_loss, val_bpb, their
std, seeds, seed_results, bytes_total, bytes_code, hardware, pytorch_version, compliance), one train
log per seed in the reference's format (golflab.artifact.pg_log) and the generated train_gpt.py.
"""

from __future__ import annotations

import datetime
import json
import statistics
from pathlib import Path
from typing import Any

from golflab.artifact.export import render_script
from golflab.artifact.pg_log import headline, read_environment, render_log
from golflab.config.loader import diff_from_default, from_toml_file, to_dict
from golflab.config.schema import RunConfig
from golflab.errors import GolflabError
from golflab.fileio import write_atomic

TRACK = "10min_16mb"
LOCAL_KEYS = ("data.path", "data.tokenizer")  # where the data was on this machine: not part of a record


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def config_differences(configs: dict[Path, RunConfig]) -> list[str]:
    """`key: value in run, value in run` for every key (but the seed) whose value differs."""
    flats = {d: _flat(to_dict(c)) for d, c in configs.items()}
    keys = sorted({k for f in flats.values() for k in f} - {"seed"})
    out = []
    for k in keys:
        values = {d: f.get(k) for d, f in flats.items()}
        if len({json.dumps(v) for v in values.values()}) > 1:
            out.append(f"{k}: " + ", ".join(f"{v!r} in {d}" for d, v in values.items()))
    return out


def load_runs(run_dirs: list[Path]) -> list[tuple[Path, dict[str, Any], RunConfig]]:
    """Finished runs of one config (apart from the seed); errors name the run or the differing keys."""
    if not run_dirs:
        raise GolflabError("export needs at least one run directory")
    runs = []
    for d in run_dirs:
        path = d / "result.json"
        if not path.exists():
            raise GolflabError(f"{d}: no result.json (is it a finished golflab run?)")
        r = json.loads(path.read_text(encoding="utf-8"))
        if r.get("status") != "ok":
            raise GolflabError(f"{d}: run status is {r.get('status')!r}, not ok")
        runs.append((d, r, from_toml_file(d / "config.toml")))
    diffs = config_differences({d: c for d, _, c in runs})
    if diffs:
        raise GolflabError("the runs have different configs (apart from the seed): " + "; ".join(diffs))
    seeds = [r["seed"] for _, r, _ in runs]
    if len(set(seeds)) != len(seeds):
        raise GolflabError(f"two runs have the same seed: {seeds}")
    return runs


def public_diff(cfg: RunConfig) -> dict[str, Any]:
    """The config's diff from RunConfig() without local paths and the seed (each seed has its log)."""
    diff = diff_from_default(cfg)
    for key in (*LOCAL_KEYS, "seed"):
        *parents, leaf = key.split(".")
        node = diff
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    return {k: v for k, v in diff.items() if v != {}}


def _hardware(result: dict[str, Any]) -> str:
    return f"{result['world_size']}x{str(result['device']).removeprefix('NVIDIA ')}"


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def export_parameter_golf(run_dirs: list[Path], out: Path, author: str, github_id: str, name: str,
                          blurb: str) -> Path:
    from golflab.record.check import check_record

    runs = load_runs(run_dirs)
    cfg = runs[0][2]
    out.mkdir(parents=True, exist_ok=True)
    script = render_script(cfg)
    write_atomic(out / "train_gpt.py", script)
    code_bytes = len(script.encode("utf-8"))
    seeds: list[dict[str, Any]] = []
    for d, r, run_cfg in runs:
        loss, bpb, which = headline(r)
        a = r.get("artifact") or {}
        seeds.append({"seed": r["seed"], "val_loss": loss, "val_bpb": bpb, "steps": r["steps"],
                      "ms_per_step": r["ms_per_step"], "train_time_s": r["train_seconds"],
                      "eval_time_s": r["eval_seconds"], "artifact_bytes": (a.get("bytes_weights") or 0) + code_bytes,
                      "pre_quant_val_bpb": r["val_bpb"], "hardware": _hardware(r)})
        write_atomic(out / f"train_seed{r['seed']}.log", render_log(run_cfg, r, d, script))
    checks = check_record(out)
    env = read_environment(runs[0][0])
    losses, bpbs = [s["val_loss"] for s in seeds], [s["val_bpb"] for s in seeds]
    sub: dict[str, Any] = {
        "author": author, "github_id": github_id, "name": name, "blurb": blurb,
        "date": datetime.date.today().isoformat(), "track": TRACK,
        "val_loss": statistics.mean(losses), "val_bpb": statistics.mean(bpbs),
        "val_loss_std": _std(losses), "val_bpb_std": _std(bpbs),
        "seeds": [s["seed"] for s in seeds],
        "seed_results": {str(s["seed"]): {k: s[k] for k in ("val_loss", "val_bpb", "artifact_bytes", "steps",
                                                            "train_time_s", "eval_time_s")} for s in seeds},
        "bytes_total": max(s["artifact_bytes"] for s in seeds), "bytes_code": code_bytes,
        "hardware": seeds[0]["hardware"], "pytorch_version": env.get("pytorch"), "metric": which,
        "compliance": {"train_under_600s": _passed(checks, "train time"), "eval_under_600s": _passed(checks, "eval time"),
                       "artifact_under_16mb": _passed(checks, "size"), "three_seeds": _passed(checks, "seeds"),
                       "hardware_8xh100": _passed(checks, "hardware")},
        "results": seeds,  # golflab's full per-seed rows (seed_results holds the fields records use)
    }
    write_atomic(out / "submission.json", json.dumps(sub, indent=2) + "\n")
    write_atomic(out / "README.md", _readme(cfg, sub, seeds, checks, which))
    return out


def _passed(checks: list, rule: str) -> bool:
    return next(c.passed for c in checks if c.rule == rule)


def _readme(cfg: RunConfig, sub: dict[str, Any], seeds: list[dict[str, Any]], checks: list, which: str) -> str:
    std = f" ± {sub['val_bpb_std']:.4f}" if sub["val_bpb_std"] is not None else ""
    lines = [f"# {sub['name']}", "", sub["blurb"], "",
             f"**val_bpb: {sub['val_bpb']:.4f}{std}** (mean of {len(seeds)} seeds; {which}); "
             f"val_loss {sub['val_loss']:.4f} nats",
             f"Artifact: {sub['bytes_total']:,} bytes at most (code {sub['bytes_code']:,}); "
             f"hardware {sub['hardware']}; PyTorch {sub['pytorch_version'] or 'not recorded'}", "",
             "| seed | steps | ms/step | train s | eval s | pre-quant val_bpb | val_loss | val_bpb | artifact bytes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {s['seed']} | {s['steps']} | {s['ms_per_step']:.1f} | {s['train_time_s']:.1f} | "
              f"{s['eval_time_s']:.1f} | {s['pre_quant_val_bpb']:.4f} | {s['val_loss']:.4f} | {s['val_bpb']:.4f} | "
              f"{s['artifact_bytes']:,} |" for s in seeds]
    lines += ["", "## Rules (`golflab record check`)", "", "| rule | result | measured | limit |", "|---|---|---|---|"]
    lines += [f"| {c.rule} | {'pass' if c.passed else 'FAIL'} | {c.value} | {c.limit} |" for c in checks]
    lines += ["", "## Config", "", "Diff from golflab's defaults (the parameter-golf naive baseline); local paths "
              "and the seed left out:", "", "```json", json.dumps(public_diff(cfg), indent=2), "```", "",
              "## Reproduce", "", "```bash",
              "SEED=<seed> DATA_PATH=./data/datasets/fineweb10B_sp1024 "
              "TOKENIZER_PATH=./data/tokenizers/fineweb_1024_bpe.model \\",
              "  torchrun --standalone --nproc_per_node=8 train_gpt.py", "```", "",
              "`train_gpt.py` was generated by golflab from its own modules for this config; it needs torch, "
              "numpy and sentencepiece.", ""]
    return "\n".join(lines)

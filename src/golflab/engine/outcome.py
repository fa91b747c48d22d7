"""Read what a finished run left in its directory: result.json, metrics.jsonl, the log tail, the metric."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

RESULT_KEYS = ("val_loss", "val_bpb", "sliding_val_loss", "sliding_val_bpb", "steps", "tokens", "train_seconds",
               "eval_seconds", "tokens_per_second", "ms_per_step", "peak_mem_gb", "params", "device",
               "world_size", "git_sha", "git_dirty")
ARTIFACT_KEYS = ("val_loss", "val_bpb", "sliding_val_loss", "sliding_val_bpb", "ttt_val_loss", "ttt_val_bpb",
                 "bytes_total", "fits")
TEST_SPLIT = "test"
# harness-owned override of labs and searches that confirm on held-out data: every run scores the test
# split too, and its score is stored under heldout_key(metric)
ALSO_TEST = f'eval.also_splits=["{TEST_SPLIT}"]'


def split_key(split: str, metric: str) -> str:
    """The stored name of a metric on another split (eval.also_splits): test_val_bpb."""
    return f"{split}_{metric}"


def split_metric(metric: str) -> str:
    """What another split's eval reports for `metric`: that eval is a standard one, so every bpb metric
    (sliding, after the artifact round trip, or time to a bpb target) is judged there by val_bpb."""
    return "val_bpb" if "bpb" in metric or metric == "time_to_target" else metric


def heldout_key(metric: str) -> str:
    """Where a run's held-out (test split) score for `metric` is stored among its values."""
    return split_key(TEST_SPLIT, split_metric(metric))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl lines; a torn last line (killed writer) is skipped."""
    out: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def finished_result(run_dir: Path, config_toml: str) -> dict[str, Any] | None:
    """result.json of an ok run in run_dir trained from exactly this config (text equal), else None."""
    try:
        if (run_dir / "config.toml").read_text(encoding="utf-8") != config_toml:
            return None
    except OSError:
        return None
    result = read_json(run_dir / "result.json")
    return result if result is not None and result.get("status") == "ok" else None


def log_tail(run_dir: Path, lines: int = 15, names: tuple[str, ...] = ("stdout.log", "train.log")) -> str:
    """Last lines of the run's logs: the error text of a crashed or failed run."""
    for name in names:
        try:
            text = (run_dir / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
        if tail:
            return "\n".join(tail)
    return ""


def time_to_target(metrics: list[dict[str, Any]], target: float) -> float | None:
    """Training seconds at the first val record with val_loss <= target (the speedrun's clock)."""
    for m in metrics:
        if m.get("kind") == "val" and _finite(m.get("val_loss")) and m["val_loss"] <= target:
            return float(m.get("elapsed_s", math.nan))
    return None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def run_values(result: dict[str, Any], metrics: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    """Flatten result.json into the values stored with the run (artifact_* prefixed, time_to_target)."""
    values = {k: result.get(k) for k in RESULT_KEYS if k in result}
    art = result.get("artifact")
    if isinstance(art, dict):
        values.update({f"artifact_{k}": art.get(k) for k in ARTIFACT_KEYS if k in art})
    splits = result.get("splits")
    if isinstance(splits, dict):  # eval.also_splits: {"test": {"val_bpb": ..}} -> test_val_bpb
        for split, vals in splits.items():
            if isinstance(vals, dict):
                values.update({split_key(split, k): v for k, v in vals.items()})
    if target is not None:  # a run that never reached the target is censored at its budget: +inf
        reached = time_to_target(metrics, target)
        values["time_to_target"] = math.inf if reached is None else reached
    return values


def metric_value(values: dict[str, Any], metric: str) -> float | None:
    v = values.get(metric)
    return float(v) if _finite(v) else None

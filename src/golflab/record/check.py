"""`golflab record check`: every rule of the 10-minute / 16 MB track on one record folder.

Rules (parameter-golf README and the records' `compliance` fields): training <= 600 s and evaluation
<= 600 s, both on 8xH100; code + compressed weights <= 16,000,000 bytes; three seeds of one config;
a new record beats the current best by >= 0.005 nats at p < 0.01 (record_margin).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from golflab.errors import GolflabError
from golflab.record.logs import TrainLog, record_logs
from golflab.record.margin import RECORD_ALPHA, RECORD_MARGIN_NATS, record_margin

TIME_LIMIT_S = 600.0
SIZE_LIMIT_BYTES = 16_000_000
SEEDS_REQUIRED = 3
GPUS_REQUIRED, GPU_NAME = 8, "H100"


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    value: str  # the measured number(s)
    limit: str


def _fmt_s(ms: float | None) -> str:
    return "missing" if ms is None else f"{ms / 1000:.3f} s"


def _submission(folder: Path) -> dict:
    path = folder / "submission.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise GolflabError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise GolflabError(f"{path} does not hold a JSON object")
    return data


def _train_ok(lg: TrainLog) -> bool:
    """Within the limit, or stopped by the wallclock cap: the reference checks the clock after each
    step, so its runs end up to one step past 600 s (e.g. 600,038 ms in the naive baseline's log)."""
    if lg.train_ms is None:
        return False
    slack = lg.step_avg_ms if lg.wallclock_stop and lg.step_avg_ms else 0.0
    return lg.train_ms <= TIME_LIMIT_S * 1000 + slack


def _time_rules(logs: list[TrainLog]) -> list[RuleResult]:
    limit = f"<= {TIME_LIMIT_S:.0f} s each"
    train = ", ".join(_fmt_s(lg.train_ms) + (" (wallclock cap)" if lg.wallclock_stop else "") for lg in logs)
    evals = [lg.eval_ms for lg in logs]
    return [RuleResult("train time", all(_train_ok(lg) for lg in logs), train,
                       limit + " (the capped run's last step may end past it)"),
            RuleResult("eval time", all(v is not None and v <= TIME_LIMIT_S * 1000 for v in evals),
                       ", ".join(_fmt_s(v) for v in evals), limit)]


def _size_rule(folder: Path, logs: list[TrainLog], sub: dict) -> RuleResult:
    sizes = [lg.total_bytes for lg in logs if lg.total_bytes is not None]
    where = "logs"
    if not sizes:
        seed_results = sub.get("seed_results") if isinstance(sub.get("seed_results"), dict) else {}
        sizes = [int(r["artifact_bytes"]) for r in seed_results.values() if isinstance(r, dict)
                 and isinstance(r.get("artifact_bytes"), int)]
        where = "submission.json seed_results"
    if not sizes and isinstance(sub.get("bytes_total"), int):
        sizes, where = [sub["bytes_total"]], "submission.json bytes_total"
    if not sizes:
        return RuleResult("size", False, "missing (no 'Total submission size' line, no bytes_total)",
                          f"<= {SIZE_LIMIT_BYTES:,} bytes")
    return RuleResult("size", max(sizes) <= SIZE_LIMIT_BYTES, f"max {max(sizes):,} bytes ({where})",
                      f"<= {SIZE_LIMIT_BYTES:,} bytes")


def _hardware_rule(logs: list[TrainLog], sub: dict) -> RuleResult:
    """The nvidia-smi table of each log; a log without one falls back to submission.json's
    `hardware` (e.g. "8xH100 80GB SXM"), and the result says so."""
    limit = f"{GPUS_REQUIRED}x {GPU_NAME} (nvidia-smi in each log)"
    if all(lg.gpus for lg in logs):
        ok = all(len(lg.gpus) == GPUS_REQUIRED and all(GPU_NAME in g for g in lg.gpus) for lg in logs)
        return RuleResult("hardware", ok, "; ".join(sorted({lg.hardware for lg in logs})), limit)
    declared = str(sub.get("hardware", ""))
    compact = declared.replace(" ", "").lower()
    ok = compact.startswith(f"{GPUS_REQUIRED}x{GPU_NAME.lower()}")
    shown = f"{declared!r} (submission.json; not in every log)" if declared else "unknown (no nvidia-smi table)"
    return RuleResult("hardware", ok, shown, limit)


def _seeds_rule(logs: list[TrainLog]) -> RuleResult:
    seeds = [lg.seed for lg in logs]
    distinct = {s for s in seeds if s is not None}
    one_code = len({lg.code for lg in logs}) == 1 and bool(logs[0].code)
    ok = len(distinct) >= SEEDS_REQUIRED and len(distinct) == len(seeds) and one_code
    code = "one code snapshot" if one_code else "code snapshots differ or are missing"
    shown = ", ".join("?" if s is None else str(s) for s in seeds)
    return RuleResult("seeds", ok, f"{len(distinct)} seeds ({shown}); {code}", f">= {SEEDS_REQUIRED} seeds, one config")


def _margin_rule(logs: list[TrainLog], old: list[float]) -> RuleResult:
    new = [lg.val_loss for lg in logs if lg.val_loss is not None]
    limit = f">= {RECORD_MARGIN_NATS} nats at p < {RECORD_ALPHA}"
    if len(new) < 2 or len(new) != len(logs):
        return RuleResult("margin", False, f"{len(new)} of {len(logs)} logs have a final val_loss", limit)
    p, passed, lcb = record_margin(new, old, RECORD_MARGIN_NATS, RECORD_ALPHA)
    gain = sum(old) / len(old) - sum(new) / len(new)
    return RuleResult("margin", passed, f"gain {gain:.5f} nats, p = {p:.2g}, {1 - RECORD_ALPHA:.0%} LCB {lcb:.5f}",
                      limit)


def check_record(folder: Path, old: list[float] | None = None) -> list[RuleResult]:
    """Each rule's result for the record folder; the margin rule only when the previous record's
    per-seed val_loss values are given."""
    logs = record_logs(folder)
    sub = _submission(folder)
    results = [
        *_time_rules(logs),
        _hardware_rule(logs, sub),
        _size_rule(folder, logs, sub),
        _seeds_rule(logs),
    ]
    if old is not None:
        results.append(_margin_rule(logs, old))
    return results

"""The training budget as the harness sees it: a wall-clock limit enforced from outside, and the
trainer's own account of steps, tokens and seconds checked against the config and that clock."""

from __future__ import annotations

from typing import Any

from golflab.config.schema import RunConfig
from golflab.errors import GolflabError

# the trainer's clock excludes start-up, compile warm-up and checkpoints, the harness's cannot: a run is
# stopped past budget.seconds x (1 + SLACK) + STARTUP_GRACE_S of wall time
SLACK = 0.25
STARTUP_GRACE_S = 120.0


class BudgetError(GolflabError):
    """The trainer's account of its budget is impossible or over the limit."""


def wall_limit(cfg: RunConfig, max_wall_s: float | None = None) -> float | None:
    """Seconds the trainer process may live, or None (a steps/tokens budget without --max-wall)."""
    limits = [cfg.budget.seconds * (1 + SLACK) + STARTUP_GRACE_S] if cfg.budget.seconds > 0 else []
    limits += [max_wall_s] if max_wall_s else []
    return min(limits) if limits else None


def _number(claimed: dict[str, Any], key: str) -> float:
    v = claimed.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
        raise BudgetError(f"the trainer's result.json has no valid {key!r} ({v!r})")
    return float(v)


def checked_budget(cfg: RunConfig, claimed: dict[str, Any], wall_s: float) -> dict[str, float]:
    """steps, tokens, train_seconds the trainer reports, once they are consistent with the config and with
    the wall time the harness measured; a BudgetError otherwise."""
    steps, tokens, secs = (_number(claimed, k) for k in ("steps", "tokens", "train_seconds"))
    b, batch = cfg.budget, cfg.train.batch_tokens
    if steps < 1 or tokens != steps * batch:
        raise BudgetError(f"the trainer reports {tokens:g} tokens in {steps:g} steps; a step is {batch} tokens")
    if b.steps and steps > b.steps:
        raise BudgetError(f"the trainer reports {steps:g} steps, over the budget of {b.steps}")
    if b.tokens and tokens >= b.tokens + batch:
        raise BudgetError(f"the trainer reports {tokens:g} tokens, over the budget of {b.tokens}")
    if secs > wall_s:
        raise BudgetError(f"the trainer reports {secs:.1f} s of training in a process that lived {wall_s:.1f} s")
    if b.seconds and secs > b.seconds + 2 * secs / steps + 1.0:  # the last step may end past the budget
        raise BudgetError(f"the trainer reports {secs:.1f} s of training, over the budget of {b.seconds:g} s")
    return {"steps": int(steps), "tokens": int(tokens), "train_seconds": secs}

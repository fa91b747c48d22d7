"""Budgets and the learning-rate schedule: warmup, wallclock-aware warmdown, LR floor."""

from __future__ import annotations

from dataclasses import dataclass

from golflab.config.schema import BudgetConfig, ScheduleConfig


@dataclass
class Clock:
    """Where a run stands against its budget: steps done, training seconds, tokens seen."""

    step: int = 0
    seconds: float = 0.0
    tokens: int = 0


def budget_used(clock: Clock, budget: BudgetConfig, batch_tokens: int) -> float:
    """Fraction used of the most used active budget (seconds, steps, tokens); 0 with none (the run
    ends at 1)."""
    out = []
    if budget.seconds > 0:
        out.append(clock.seconds / budget.seconds)
    if budget.steps > 0:
        out.append(clock.step / budget.steps)
    if budget.tokens > 0:
        out.append(clock.step * batch_tokens / budget.tokens)
    return max(out, default=0.0)


def _warmdown_steps_scale(clock: Clock, budget: BudgetConfig, warmdown_steps: int, batch_tokens: int) -> float:
    """Parameter-golf's rule: decay linearly over the last `warmdown_steps` steps' worth of budget,
    converted to wallclock with the mean step time so far when the budget is in seconds."""
    scales = [1.0]
    if budget.seconds > 0:
        step_s = clock.seconds / max(clock.step, 1)
        warmdown_s = warmdown_steps * step_s
        remaining = max(budget.seconds - clock.seconds, 0.0)
        if remaining <= warmdown_s:
            scales.append(remaining / max(warmdown_s, 1e-9))
    total_steps = [s for s in (budget.steps, budget.tokens // max(batch_tokens, 1)) if s > 0]
    for total in total_steps:
        if clock.step >= total - warmdown_steps:
            scales.append(max(total - clock.step, 0) / max(warmdown_steps, 1))
    return min(scales)


def lr_scale(clock: Clock, sched: ScheduleConfig, budget: BudgetConfig, batch_tokens: int) -> float:
    """Multiplier on every row's base LR for the step about to run."""
    scale = 1.0
    if sched.warmup_steps > 0 and clock.step < sched.warmup_steps:
        scale = (clock.step + 1) / sched.warmup_steps
    if sched.warmdown_frac > 0:
        progress = budget_used(clock, budget, batch_tokens)
        start = 1.0 - sched.warmdown_frac
        if progress > start:
            scale = min(scale, max(1.0 - progress, 0.0) / sched.warmdown_frac)
    elif sched.warmdown_steps > 0:
        scale = min(scale, _warmdown_steps_scale(clock, budget, sched.warmdown_steps, batch_tokens))
    return sched.lr_floor + (1.0 - sched.lr_floor) * scale

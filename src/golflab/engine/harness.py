"""The harness rule: what defines the measurement belongs to the plan or search, never to an arm, a
candidate or an agent's proposal. An override of one of these keys is refused when the plan or space is
loaded (or the agent answers), naming the key. A plan that means to compare budgets or eval settings lists
the keys in `[harness] vary = [...]`, and its report says so.
"""

from __future__ import annotations

from golflab.errors import ConfigError

# an experiment with crn = false uses seed + this offset: data order and init share nothing with its reference
UNPAIRED_SEED_OFFSET = 10_000
# an auto win is replicated on seed + this offset: runs that took no part in selecting it
REPLICATION_SEED_OFFSET = 100_000

# dotted prefixes (a trailing "." covers a whole section) and exact keys, with why they are the harness's
HARNESS = {
    "data.": "the data and its splits define what is measured",
    "eval.": "the evaluation defines the metric",
    "budget.": "the budget must be equal across the compared runs",
    "seed": "seeds are assigned by the engine (common random numbers)",
    "artifact.limit_bytes": "the size limit is the challenge's rule",
    "schedule.compile_warmup_steps": "untimed warm-up steps would train outside the budget",
}


def harness_reason(key: str) -> str | None:
    """Why `key` (a dotted config path) is the harness's, or None when an experiment may change it."""
    key = key.strip()
    for prefix, why in HARNESS.items():
        if key == prefix.rstrip(".") or (prefix.endswith(".") and key.startswith(prefix)):
            return why
    return None


def _matches(key: str, pattern: str) -> bool:
    """`pattern` is a dotted key, or a section with `.*` ("budget.*")."""
    return key == pattern or (pattern.endswith(".*") and key.startswith(pattern[:-1]))


def harness_error(key: str, where: str) -> ConfigError | None:
    """The error for an experiment that sets harness key `key` (None: it may)."""
    why = harness_reason(key)
    if why is None:
        return None
    return ConfigError(f"{where}: {key}: an experiment cannot change the harness ({why}); set it for the whole plan "
                       "or search, or declare it in a plan's [harness] vary = [...] to compare it on purpose")


def check_overrides(overrides: list[str] | tuple[str, ...], where: str, vary: tuple[str, ...] = ()) -> None:
    """Refuse `k=v` overrides of harness keys unless the plan declares them in `vary`."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        err = harness_error(key, where)
        if err is not None and not any(_matches(key, v) for v in vary):
            raise err


def check_vary(vary: object, where: str) -> tuple[str, ...]:
    """Validate a plan's `[harness] vary` list: harness keys or sections ("budget.steps", "eval.*")."""
    if not isinstance(vary, list) or not all(isinstance(v, str) for v in vary):
        raise ConfigError(f"{where}: expected a list of harness keys such as [\"budget.steps\", \"eval.*\"], "
                          f"got {vary!r}")
    for v in vary:
        if harness_reason(v.removesuffix(".*") + ("." if v.endswith(".*") else "")) is None and \
                harness_reason(v.removesuffix(".*")) is None:
            raise ConfigError(f"{where}: {v!r} is not a harness key; only {', '.join(HARNESS)} keys need declaring")
    return tuple(vary)

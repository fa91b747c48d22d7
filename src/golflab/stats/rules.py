"""A verdict rule: what an arm must show to win, as a plan's [rule] table writes it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

from golflab.errors import ConfigError

TESTS = ("auto", "paired", "welch")
SPENDINGS = ("obf", "pocock", "none")


@dataclass(frozen=True)
class Rule:
    """H0: improvement <= min_effect (metric units; the metric is lower-is-better, improvement = ref - arm).

    Against a baseline arm (default), fixed `reference` values (e.g. the previous record's per-seed
    scores) or a `target` (one-sample: the arm's mean is below target - min_effect). docs/verdicts.md.
    """

    alpha: float = 0.05
    min_effect: float = 0.0
    one_sided: bool = True  # False: win and loss each at alpha / 2
    test: str = "auto"  # "auto": paired when the arms share >= 2 seeds, else Welch
    spending: str = "obf"  # alpha spending over the looks min..max seeds: obf | pocock | none
    futility: bool = True  # may stop early for futility (non-binding: the error rate holds without it)
    reference: tuple[float, ...] | None = None
    target: float | None = None
    resolution: float | None = None  # rounding step of the metric; None: inferred from the values

    def __post_init__(self) -> None:
        if self.reference is not None and not isinstance(self.reference, tuple):
            object.__setattr__(self, "reference", tuple(float(v) for v in self.reference))
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))

    @property
    def side_alpha(self) -> float:
        """The error rate of each one-sided decision (win, loss)."""
        return self.alpha if self.one_sided else self.alpha / 2

    @property
    def kind(self) -> str:
        return "target" if self.target is not None else "reference" if self.reference is not None else "arm"

    @classmethod
    def from_table(cls, table: dict, where: str = "rule", target: float | None = None,
                   ignore: Iterable[str] = ()) -> Rule:
        """Validate a plan's [rule] table; `target` (e.g. the plan's loss target) fills rule.target.

        Keys in `ignore` belong to the caller (e.g. engine options in the same table) and are skipped.
        """
        allowed = [f.name for f in fields(cls)]
        skip = set(ignore)
        kw: dict = {}
        for key, value in table.items():
            if key in skip:
                continue
            if key not in allowed:
                raise ConfigError(f"{where}.{key}: unknown key; expected one of {', '.join(allowed)}")
            kw[key] = _coerce(key, value, f"{where}.{key}")
        if target is not None and "target" not in kw:
            kw["target"] = _coerce("target", target, f"{where}.target")
        try:
            return cls(**kw)
        except ValueError as e:
            raise ConfigError(f"{where}.{str(e).split('; ')[0]}") from None


def _coerce(key: str, value, where: str):
    def number() -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)

    if key in ("alpha", "min_effect"):
        return number()
    if key in ("target", "resolution"):
        return None if value is None else number()
    if key in ("one_sided", "futility"):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if key in ("test", "spending"):
        allowed = TESTS if key == "test" else SPENDINGS
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not allowed; expected one of "
                              + ", ".join(repr(a) for a in allowed))
        return value
    if key == "reference":
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{where}: expected a list of numbers (the values to beat), got {value!r}")
        out = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{where}: expected finite numbers, got {v!r}")
            out.append(float(v))
        return tuple(out)
    return value  # pragma: no cover - every field is handled above


def _problems(r: Rule) -> list[tuple[str, str]]:
    out = []
    if not (isinstance(r.alpha, (int, float)) and 0 < r.alpha <= 0.5):
        out.append(("alpha", f"must be in (0, 0.5], got {r.alpha!r}"))
    if not (isinstance(r.min_effect, (int, float)) and math.isfinite(r.min_effect)):
        out.append(("min_effect", f"must be a finite number, got {r.min_effect!r}"))
    if r.test not in TESTS:
        out.append(("test", f"{r.test!r} is not allowed; expected one of " + ", ".join(map(repr, TESTS))))
    if r.spending not in SPENDINGS:
        out.append(("spending", f"{r.spending!r} is not allowed; expected one of "
                    + ", ".join(map(repr, SPENDINGS))))
    if r.reference is not None and r.target is not None:
        out.append(("reference", "give reference values or a target, not both"))
    if r.reference is not None and len(r.reference) == 0:
        out.append(("reference", "needs at least one value"))
    if r.resolution is not None and not r.resolution >= 0:
        out.append(("resolution", f"must be >= 0, got {r.resolution!r}"))
    return out

"""A search space in TOML: which config keys `golflab auto` may change, and over which values.

    [[param]]
    key = "model.mlp"
    choices = ["relu2", "swiglu"]

    [[param]]
    key = "optim.matrix.lr"
    low = 0.01
    high = 0.2
    log = true            # sample on a log scale; `int = true` samples integers
    when = "model.mlp=swiglu"   # optional: only sampled when another key has this value

Keys that define the measurement itself (data, eval, budget, the artifact limit, the seed) are
refused: a search that may change how it is judged would "improve" by moving the goalposts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golflab.config.loader import parse_value, read_toml
from golflab.engine.harness import harness_error
from golflab.errors import ConfigError

_PARAM_KEYS = {"key", "choices", "low", "high", "log", "int", "when"}


@dataclass(frozen=True)
class Param:
    key: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    when: tuple[str, Any] | None = None  # (key, value): sample only when that key has that value

    def values_to_check(self) -> list[Any]:
        if self.choices is not None:
            return list(self.choices)
        return [int(self.low) if self.integer else self.low, int(self.high) if self.integer else self.high]


@dataclass(frozen=True)
class Space:
    path: Path
    params: tuple[Param, ...]


def override(key: str, value: Any) -> str:
    """The `key=value` override string of one sampled value."""
    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    return f"{key}={value}"


def _param(src: Path, i: int, raw: Any) -> Param:
    where = f"{src}: param #{i + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a [[param]] table")
    unknown = set(raw) - _PARAM_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_PARAM_KEYS)}")
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: `key` (a dotted config key such as model.mlp) is required")
    where = f"{src}: param {key!r}"
    err = harness_error(key, f"{src}: param")
    if err is not None:
        raise err
    when = None
    if "when" in raw:
        w = raw["when"]
        if not isinstance(w, str) or "=" not in w:
            raise ConfigError(f"{where}: `when` must look like 'model.mlp=swiglu'")
        wk, wv = w.split("=", 1)
        when = (wk.strip(), parse_value(wv.strip()))
    if "choices" in raw:
        if {"low", "high", "log", "int"} & set(raw):
            raise ConfigError(f"{where}: give either `choices` or `low`/`high`, not both")
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: `choices` must be a non-empty list")
        return Param(key, choices=tuple(choices), when=when)
    if "low" not in raw or "high" not in raw:
        raise ConfigError(f"{where}: needs `choices` or both `low` and `high`")
    low, high = raw["low"], raw["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"{where}: `low` and `high` must be numbers")
    if not low < high:
        raise ConfigError(f"{where}: `low` ({low}) must be below `high` ({high})")
    log = bool(raw.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{where}: a log-scale range needs low > 0 (got {low})")
    return Param(key, low=float(low), high=float(high), log=log, integer=bool(raw.get("int", False)), when=when)


def parse_space(data: dict[str, Any], src: Path, preset: str | None = None) -> Space:
    """Parse and check a space: every key and every value must resolve through load_config."""
    from golflab.config import load_config

    unknown = set(data) - {"param"}
    if unknown:
        raise ConfigError(f"{src}: unknown top-level key(s) {sorted(unknown)}; expected [[param]] tables")
    raw = data.get("param")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{src}: a space needs at least one [[param]] table")
    params = tuple(_param(src, i, r) for i, r in enumerate(raw))
    keys = [p.key for p in params]
    for p in params:
        if keys.count(p.key) > 1:
            raise ConfigError(f"{src}: param {p.key!r} appears more than once")
        if p.when and p.when[0] not in keys[: keys.index(p.key)]:
            raise ConfigError(f"{src}: param {p.key!r}: `when` key {p.when[0]!r} must be an earlier param")
        for v in p.values_to_check():
            try:
                load_config(preset=preset, overrides=[override(p.key, v)])
            except ConfigError as exc:
                raise ConfigError(f"{src}: param {p.key!r} value {v!r}: {exc}") from None
    return Space(src, params)


def load_space(path: str | Path, preset: str | None = None) -> Space:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"search space file not found: {p}")
    return parse_space(read_toml(p), p, preset)

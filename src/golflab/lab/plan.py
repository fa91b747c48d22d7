"""Experiment plans: a TOML file naming a baseline, arms (config overrides), seeds and a decision rule.

Everything is validated at load time; a bad key or value raises ConfigError naming the file and the
dotted key. Arm configs are built with `golflab.config.load_config`, so config overrides are checked
against the RunConfig schema too.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golflab.engine.harness import UNPAIRED_SEED_OFFSET, check_overrides, check_vary
from golflab.engine.outcome import ALSO_TEST
from golflab.errors import ConfigError
from golflab.stats.rules import Rule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

METRICS = ("val_bpb", "val_loss", "sliding_val_bpb", "sliding_val_loss", "artifact_val_bpb", "artifact_sliding_val_bpb",
           "artifact_ttt_val_bpb", "time_to_target")
CONDITIONS = ("wins", "loses", "inconclusive")
BASELINE = "baseline"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Seeds:
    """How many seeds an arm gets: `min` first, then one at a time up to `max` (sequential rule)."""

    min: int = 2
    max: int = 6


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: tuple[str, ...] = ()
    priority: int = 0
    run_if: tuple[str, str] | None = None  # (condition, arm name), e.g. ("loses", "swiglu")
    promote: bool = False
    seeds: Seeds = field(default_factory=Seeds)
    crn: bool = True  # False: seeds unrelated to the reference's (shows what common random numbers buy)


@dataclass(frozen=True)
class Plan:
    name: str
    path: Path
    text: str
    preset: str
    baseline: tuple[str, ...]  # baseline overrides, "k=v" strings
    arms: tuple[Arm, ...]  # sorted by (priority, file order)
    seed_values: tuple[int, ...]  # seed value of seed index i (long enough for every arm's max)
    budget: str | None
    data: str | None
    metric: str
    target: float | None  # the loss target: of time_to_target, or the one-sample rule's (speedrun: 3.28)
    rule: Rule  # the verdict rule (golflab.stats; docs/verdicts.md)
    baseline_seeds: Seeds
    vary: tuple[str, ...] = ()  # harness keys the arms may change on purpose ([harness] vary)
    confirm_on_test: bool = False  # a val win must also win on the test split of the same runs

    @property
    def digest(self) -> str:
        """Hash of what determines the runs: the plan text plus CLI substitutions."""
        blob = f"{self.text}\0{self.preset}\0{self.data}".encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(name)

    def seed_of(self, index: int, arm: str | None = None) -> int:
        """Seed value of seed index `index` (of `arm`: an arm without common random numbers is offset)."""
        seed = self.seed_values[index]
        if arm is not None and arm != BASELINE and not self.arm(arm).crn:
            seed += UNPAIRED_SEED_OFFSET
        return seed

    def build_config(self, overrides: list[str], seed: int) -> Any:
        """The resolved RunConfig of `overrides` (applied after the baseline's) at `seed`. With held-out
        confirmation every run also scores the test split, so a later confirmation reads its result."""
        from golflab.config import load_config

        extra = {"data": {"path": self.data}} if self.data else None
        confirm = [ALSO_TEST] if self.confirm_on_test else []
        return load_config(preset=self.preset, overrides=[*self.baseline, *confirm, *overrides, f"seed={seed}"],
                           budget=self.budget, extra=extra)


def _fail(src: Path, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{src}: {key}: {msg}")


def _check_keys(src: Path, table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            path = f"{where}.{key}" if where else key
            raise _fail(src, path, f"unknown key; allowed: {', '.join(sorted(allowed))}")


def _overrides(src: Path, value: Any, key: str) -> tuple[str, ...]:
    """A list of "k=v" strings or a (nested) table -> a tuple of "k=v" strings."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str) or "=" not in item:
                raise _fail(src, f"{key}[{i}]", f"expected a 'section.key=value' string, got {item!r}")
        return tuple(value)
    if isinstance(value, dict):
        import json

        out: list[str] = []

        def walk(node: dict[str, Any], prefix: str) -> None:
            for k, v in node.items():
                if isinstance(v, dict):
                    walk(v, f"{prefix}{k}.")
                else:
                    out.append(f"{prefix}{k}={json.dumps(v)}")

        walk(value, "")
        return tuple(out)
    raise _fail(src, key, f"expected a list of 'k=v' strings or a table, got {value!r}")


def _int(src: Path, value: Any, key: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _fail(src, key, f"expected an integer >= {lo}, got {value!r}")
    return value


def _seeds(src: Path, value: Any, key: str, default: Seeds) -> Seeds:
    if not isinstance(value, dict):
        raise _fail(src, key, f"expected a table {{min = .., max = ..}}, got {value!r}")
    _check_keys(src, value, {"min", "max"}, key)
    lo = _int(src, value.get("min", default.min), f"{key}.min", 2)
    hi = _int(src, value.get("max", max(default.max, lo)), f"{key}.max", 2)
    if hi < lo:
        raise _fail(src, f"{key}.max", f"max ({hi}) is below min ({lo})")
    return Seeds(lo, hi)


def _rule(src: Path, value: Any, target: float | None) -> tuple[Rule, bool]:
    """The [rule] table: the verdict rule (golflab.stats.Rule validates its keys) and confirm_on_test."""
    if not isinstance(value, dict):
        raise _fail(src, "rule", f"expected a table, got {value!r}")
    confirm = value.get("confirm_on_test", False)
    if not isinstance(confirm, bool):
        raise _fail(src, "rule.confirm_on_test", f"expected true or false, got {confirm!r}")
    return Rule.from_table(value, where=f"{src}: rule", target=target, ignore=["confirm_on_test"]), confirm


def _arm(src: Path, i: int, raw: Any, default_seeds: Seeds) -> Arm:
    key = f"arm[{i}]"
    if not isinstance(raw, dict):
        raise _fail(src, key, "expected a table ([[arm]])")
    _check_keys(src, raw, {"name", "overrides", "priority", "run_if", "promote", "seeds", "crn"}, key)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name == BASELINE:
        raise _fail(src, f"{key}.name", f"expected a name of letters, digits, '_', '-', '.' (not 'baseline'), got {name!r}")
    key = f"arm.{name}"
    if "overrides" not in raw:
        raise _fail(src, f"{key}.overrides", "missing; an arm is a config diff")
    overrides = _overrides(src, raw["overrides"], f"{key}.overrides")
    priority = _int(src, raw.get("priority", 0), f"{key}.priority")
    promote = raw.get("promote", False)
    if not isinstance(promote, bool):
        raise _fail(src, f"{key}.promote", f"expected true or false, got {promote!r}")
    run_if = None
    if "run_if" in raw:
        cond = raw["run_if"]
        m = re.match(r"^\s*(\w+)\s*:\s*(\S+)\s*$", cond) if isinstance(cond, str) else None
        if not m or m.group(1) not in CONDITIONS:
            raise _fail(src, f"{key}.run_if", f"expected '<{'|'.join(CONDITIONS)}>:<arm>', got {cond!r}")
        run_if = (m.group(1), m.group(2))
    seeds = _seeds(src, raw["seeds"], f"{key}.seeds", default_seeds) if "seeds" in raw else default_seeds
    crn = raw.get("crn", True)
    if not isinstance(crn, bool):
        raise _fail(src, f"{key}.crn", f"expected true or false, got {crn!r}")
    if promote and not crn:
        raise _fail(src, f"{key}.crn", "an arm without common random numbers cannot be promoted: later arms "
                    "could not pair their seeds with it")
    return Arm(name, overrides, priority, run_if, promote, seeds, crn)


_TOP = {"name", "preset", "baseline", "arm", "seeds", "seed", "budget", "data", "metric", "target", "rule", "harness"}


def parse_plan(text: str, path: str | Path = "<plan>", preset: str | None = None,
               data: str | Path | None = None, check_configs: bool = True) -> Plan:
    """Parse and validate plan text. `preset` / `data` replace the plan's (CLI --preset / --data)."""
    src = Path(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{src}: invalid TOML: {exc}") from None
    _check_keys(src, raw, _TOP, "")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(src, "name", f"expected a plan name of letters, digits, '_', '-', '.', got {name!r}")
    base = raw.get("baseline", {})
    if not isinstance(base, dict):
        raise _fail(src, "baseline", "expected a table with preset and overrides")
    _check_keys(src, base, {"preset", "overrides"}, "baseline")
    plan_preset = preset or base.get("preset") or raw.get("preset")
    if not isinstance(plan_preset, str):
        raise _fail(src, "baseline.preset", "missing; name a preset (see `golflab presets`)")
    baseline = _overrides(src, base.get("overrides", []), "baseline.overrides")

    default_seeds = _seeds(src, raw["seeds"], "seeds", Seeds()) if isinstance(raw.get("seeds"), dict) else Seeds()
    seed_list: list[int] | None = None
    if isinstance(raw.get("seeds"), list):
        seed_list = [_int(src, s, f"seeds[{i}]") for i, s in enumerate(raw["seeds"])]
        if len(seed_list) < 2 or len(set(seed_list)) != len(seed_list):
            raise _fail(src, "seeds", "a seed list needs at least 2 distinct seeds")
        default_seeds = Seeds(len(seed_list), len(seed_list))
    elif "seeds" in raw and not isinstance(raw["seeds"], dict):
        raise _fail(src, "seeds", f"expected {{min = .., max = ..}} or a list of seeds, got {raw['seeds']!r}")
    base_seed = _int(src, raw.get("seed", 1337), "seed")

    arms_raw = raw.get("arm", [])
    if not isinstance(arms_raw, list):
        raise _fail(src, "arm", "expected [[arm]] tables")
    harness = raw.get("harness", {})
    if not isinstance(harness, dict):
        raise _fail(src, "harness", "expected a table with vary = [...]")
    _check_keys(src, harness, {"vary"}, "harness")
    vary = check_vary(harness.get("vary", []), f"{src}: harness.vary")
    arms = [_arm(src, i, a, default_seeds) for i, a in enumerate(arms_raw)]
    for a in arms:
        check_overrides(a.overrides, f"{src}: arm.{a.name}.overrides", vary)
    names = [a.name for a in arms]
    for a in arms:
        if names.count(a.name) > 1:
            raise _fail(src, f"arm.{a.name}", "duplicate arm name")
        if a.run_if:
            dep = a.run_if[1]
            if dep not in names:
                raise _fail(src, f"arm.{a.name}.run_if", f"unknown arm {dep!r}; arms: {', '.join(names)}")
            if plan_arm(arms, dep).priority >= a.priority:
                raise _fail(src, f"arm.{a.name}.run_if",
                            f"depends on {dep!r}, which must have a lower priority number (runs earlier)")
    arms.sort(key=lambda a: a.priority)  # stable: file order within a priority
    max_seeds = max([default_seeds.max, *(a.seeds.max for a in arms)])
    if seed_list is not None and max_seeds > len(seed_list):
        raise _fail(src, "seeds", f"the seed list has {len(seed_list)} seeds but an arm asks for up to {max_seeds}")
    seed_values = tuple(seed_list) if seed_list is not None else tuple(base_seed + i for i in range(max_seeds))

    budget = raw.get("budget")
    if budget is not None and not isinstance(budget, str):
        raise _fail(src, "budget", f"expected a string like '120s' or '2000steps', got {budget!r}")
    plan_data = str(data) if data is not None else raw.get("data")
    if plan_data is not None and not isinstance(plan_data, str):
        raise _fail(src, "data", f"expected a dataset directory path, got {plan_data!r}")
    if plan_data and not Path(plan_data).is_absolute() and data is None:
        plan_data = str((src.parent / plan_data).resolve())  # relative to the plan file
    metric = raw.get("metric", "val_bpb")
    if metric not in METRICS:
        raise _fail(src, "metric", f"{metric!r} is not allowed; expected one of {', '.join(METRICS)}")
    target = raw.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float)) or target <= 0):
        raise _fail(src, "target", f"expected a positive loss target, got {target!r}")
    if metric == "time_to_target" and target is None:
        raise _fail(src, "target", "metric time_to_target needs the val loss target the clock stops at")
    if target is not None and metric != "time_to_target" and "loss" not in metric:
        raise _fail(src, "target", f"a target rule is a one-sample test on a loss; metric {metric!r} is not one "
                    "(use val_loss, sliding_val_loss or time_to_target)")
    target = float(target) if target is not None else None
    # time_to_target compares times against the baseline; on a loss metric the target is the rule's null
    rule, confirm = _rule(src, raw.get("rule", {}), target if metric != "time_to_target" else None)

    plan = Plan(name, src, text, plan_preset, baseline, tuple(arms), seed_values, budget, plan_data,
                metric, target, rule, default_seeds, vary, confirm)
    if check_configs:
        _check_configs(plan)
    return plan


def plan_arm(arms: list[Arm], name: str) -> Arm:
    return next(a for a in arms if a.name == name)


def _check_configs(plan: Plan) -> None:
    """Resolve the baseline and every arm (on the plain baseline) so bad overrides fail now."""
    try:
        plan.build_config([], plan.seed_of(0))
    except ConfigError as exc:
        raise ConfigError(f"{plan.path}: baseline: {exc}") from None
    for a in plan.arms:
        try:
            plan.build_config(list(a.overrides), plan.seed_of(0))
        except ConfigError as exc:
            raise ConfigError(f"{plan.path}: arm.{a.name}.overrides: {exc}") from None


def load_plan(path: str | Path, preset: str | None = None, data: str | Path | None = None) -> Plan:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"plan file not found: {p}")
    return parse_plan(p.read_text(encoding="utf-8"), p, preset=preset, data=data)

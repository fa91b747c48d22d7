"""Search-space validation and the proposers, without training anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from golflab.auto.proposers import SpaceProposer
from golflab.auto.space import load_space, parse_space
from golflab.errors import ConfigError
from golflab.lab.source import PlanProposer

ROOT = Path(__file__).resolve().parents[1]


def _space(params: list[dict]):
    return parse_space({"param": params}, Path("s.toml"), "tiny")


def test_unknown_config_key_is_rejected_naming_it():
    with pytest.raises(ConfigError, match=r"model\.mlpp"):
        _space([{"key": "model.mlpp", "choices": ["relu2"]}])


def test_bad_value_is_rejected_naming_the_key():
    with pytest.raises(ConfigError, match=r"model\.mlp"):
        _space([{"key": "model.mlp", "choices": ["relu2", "nonsense"]}])


@pytest.mark.parametrize("key", ["data.path", "eval.stride", "budget.seconds", "artifact.limit_bytes", "seed"])
def test_harness_keys_are_forbidden(key):
    with pytest.raises(ConfigError, match=f"param: {key}: an experiment cannot change the harness"):
        _space([{"key": key, "choices": [1]}])


@pytest.mark.parametrize("param, msg", [
    ({"key": "optim.matrix.lr", "low": 0.2, "high": 0.01}, "below"),
    ({"key": "optim.matrix.lr", "low": 0.0, "high": 0.1, "log": True}, "low > 0"),
    ({"key": "optim.matrix.lr"}, "choices"),
    ({"key": "optim.matrix.lr", "choices": [0.1], "bogus": 1}, "bogus"),
    ({"key": "model.mlp_mult", "choices": [2.0], "when": "model.mlp=swiglu"}, "earlier param"),
])
def test_malformed_params(param, msg):
    with pytest.raises(ConfigError, match=msg):
        _space([param])


def test_shipped_spaces_parse():
    assert len(load_space(ROOT / "spaces" / "tiny.toml", "tiny").params) >= 3
    assert len(load_space(ROOT / "spaces" / "golf.toml", "golf-baseline").params) >= 5


def _draw(seed: int, n: int = 6) -> list[list[str]]:
    prop = SpaceProposer(load_space(ROOT / "spaces" / "tiny.toml", "tiny"), seed=seed, n_startup=2)
    out = []
    for i in range(n):
        p = prop.propose({"model": {"mlp": "relu2"}})
        out.append(p.overrides)
        prop.observe(p, 4.0 - 0.01 * i)  # a fixed history, as a replay from the store would give
    return out


def test_space_proposer_is_deterministic_and_respects_conditions():
    a, b = _draw(7), _draw(7)
    assert a == b
    assert a != _draw(8)
    for overrides in a:
        keys = dict(o.split("=", 1) for o in overrides)
        assert ("model.mlp_mult" in keys) == (keys["model.mlp"] == "swiglu")
        assert 0.01 <= float(keys["optim.matrix.lr"]) <= 0.2


def test_plan_proposer_drains_arms_in_priority_order():
    prop = PlanProposer(ROOT / "plans" / "mlp-activations.toml")
    names = []
    while (p := prop.propose({})) is not None:
        names.append(p.name)
    assert names == ["swiglu", "gelu", "silu"]

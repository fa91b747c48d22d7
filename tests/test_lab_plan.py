from pathlib import Path

import pytest

from golflab.errors import ConfigError
from golflab.lab.plan import UNPAIRED_SEED_OFFSET, load_plan, parse_plan

ROOT = Path(__file__).resolve().parents[1]

BASE = """
name = "t"
budget = "2000steps"
[baseline]
preset = "tiny"
[[arm]]
name = "swiglu"
priority = 1
overrides = ["model.mlp=swiglu"]
"""


def bad(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_plan(text, "p.toml")


def test_shipped_plans_load():
    mlp = load_plan(ROOT / "plans" / "mlp-activations.toml")
    assert [a.name for a in mlp.arms] == ["swiglu", "gelu", "silu"]
    assert mlp.arm("swiglu").promote and mlp.arm("gelu").run_if == ("loses", "swiglu")
    assert mlp.preset == "tiny" and mlp.build_config(list(mlp.arm("swiglu").overrides), 1).model.mlp == "swiglu"
    golf = load_plan(ROOT / "plans" / "pgolf-ablations.toml")
    assert golf.budget == "120s" and golf.baseline_seeds.min == golf.baseline_seeds.max == 2
    cfg = golf.build_config(list(golf.arm("sliding-window").overrides), 1337)
    assert cfg.model.window_layers == [0, 1, 2, 3, 4] and cfg.model.attn_window == 256
    assert len(golf.arms) == 6 and cfg.eval.also_splits == ["test"] and cfg.eval.stride == 0
    assert golf.seed_of(0, "swiglu-unpaired") == golf.seed_of(0, "swiglu") + UNPAIRED_SEED_OFFSET
    with pytest.raises(ConfigError, match="cannot be promoted"):
        parse_plan(BASE.replace('overrides = ["model.mlp=swiglu"]', 'overrides = ["model.mlp=swiglu"]\ncrn = false\npromote = true'),
                   "p.toml")


def test_cli_substitutions_and_table_overrides(tmp_path):
    text = BASE.replace('overrides = ["model.mlp=swiglu"]', 'overrides = { model = { mlp = "swiglu", mlp_mult = 2.5 } }')
    plan = parse_plan(text, tmp_path / "p.toml", preset="golf-baseline", data="/data/x")
    cfg = plan.build_config(list(plan.arm("swiglu").overrides), 7)
    assert (cfg.model.mlp, cfg.model.mlp_mult, cfg.seed, cfg.data.path) == ("swiglu", 2.5, 7, "/data/x")
    assert cfg.model.num_layers == 9 and cfg.budget.steps == 2000
    assert plan.digest != parse_plan(text, tmp_path / "p.toml").digest


def test_seeds_forms():
    plan = parse_plan(BASE.replace('budget', 'seeds = [5, 9, 11]\nbudget'), "p.toml")
    assert plan.seed_values == (5, 9, 11) and plan.arm("swiglu").seeds.min == 3
    plan = parse_plan(BASE.replace('budget', 'seed = 100\nseeds = {min = 3, max = 4}\nbudget'), "p.toml")
    assert plan.seed_values == (100, 101, 102, 103)


@pytest.mark.parametrize("text, match", [
    ("colour = 1\n" + BASE, "p.toml: colour: unknown key"),
    (BASE.replace("priority = 1", "priority = 1\nprioritty = 2"), r"arm\[0\]\.prioritty: unknown key"),
    (BASE.replace('preset = "tiny"', 'preset = "tiny"\nover = []'), "baseline.over: unknown key"),
    (BASE.replace('"model.mlp=swiglu"', '"model.mlpp=swiglu"'), r"arm\.swiglu\.overrides: unknown config key 'model\.mlpp'"),
    (BASE.replace('"model.mlp=swiglu"', '"model.mlp=tanh"'), r"arm\.swiglu\.overrides: model\.mlp: 'tanh' is not allowed"),
    (BASE.replace('"model.mlp=swiglu"', '"mlp swiglu"'), r"arm\.swiglu\.overrides\[0\]"),
    ('metric = "accuracy"\n' + BASE, "metric: 'accuracy' is not allowed"),
    ('metric = "time_to_target"\n' + BASE, "target: metric time_to_target needs"),
    ("target = 3.28\n" + BASE, "target: a target rule is a one-sample test on a loss"),
    (BASE + "[rule]\nalpha = 1.5\n", r"rule\.alpha: must be in \(0, 0.5\]"),
    (BASE + "[rule]\nmin_effect = \"a\"\n", r"rule\.min_effect"),
    (BASE + "[rule]\none_sided = 1\n", r"rule\.one_sided: expected true or false"),
    (BASE + "[rule]\nbeta = 1\n", r"rule\.beta: unknown key"),
    (BASE + "[seeds]\nmin = 4\nmax = 3\n", r"seeds\.max: max \(3\) is below min \(4\)"),
    (BASE + "[seeds]\nmin = 1\n", r"seeds\.min: expected an integer >= 2"),
    (BASE.replace("name = \"t\"", "name = \"a b\""), "name: expected a plan name"),
    (BASE.replace("name = \"swiglu\"", "name = \"baseline\""), r"arm\[0\]\.name"),
    (BASE + '[[arm]]\nname = "gelu"\npriority = 2\nrun_if = "loses:swigl"\noverrides = []\n', r"arm\.gelu\.run_if: unknown arm 'swigl'"),
    (BASE + '[[arm]]\nname = "gelu"\npriority = 1\nrun_if = "loses:swiglu"\noverrides = []\n', "must have a lower priority"),
    (BASE + '[[arm]]\nname = "gelu"\npriority = 2\nrun_if = "beats:swiglu"\noverrides = []\n', r"arm\.gelu\.run_if: expected"),
    (BASE + '[[arm]]\nname = "swiglu"\noverrides = []\n', r"arm\.swiglu: duplicate arm name"),
    (BASE + '[[arm]]\nname = "x"\n', r"arm\.x\.overrides: missing"),
    (BASE.replace("[baseline]\npreset = \"tiny\"", ""), r"baseline\.preset: missing"),
    (BASE.replace("budget = \"2000steps\"", "budget = 120"), "budget: expected a string"),
    ("name = [", "invalid TOML"),
])
def test_validation_errors_name_the_key(text, match):
    bad(text, match)


def test_missing_plan_file(tmp_path):
    with pytest.raises(ConfigError, match="plan file not found"):
        load_plan(tmp_path / "nope.toml")

import pytest

from golflab.config import config_hash, diff_from_default, load_config, parse_budget, preset_names, to_toml
from golflab.config.loader import build_config, override_to_dict, read_toml
from golflab.errors import ConfigError


def test_defaults_are_the_parameter_golf_baseline():
    cfg = load_config(preset="golf-baseline")
    m = cfg.model
    assert (m.num_layers, m.model_dim, m.num_heads, m.num_kv_heads, m.mlp, m.mlp_mult) == (9, 512, 8, 4, "relu2", 2.0)
    assert m.tie_embeddings and m.logit_softcap == 30.0 and m.vocab_size == 1024
    assert cfg.train.batch_tokens == 524_288 and m.seq_len == 1024
    assert cfg.optim.matrix.optimizer == "muon" and cfg.optim.matrix.lr == 0.04


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves(name):
    cfg = load_config(preset=name)
    assert config_hash(cfg) == config_hash(load_config(preset=name))


def test_overrides_are_typed():
    cfg = load_config(
        preset="golf-baseline",
        overrides=["model.mlp=swiglu", "optim.matrix.weight_decay=0.02", "model.window_layers=[0,1,2]",
                   "model.tie_embeddings=false", "model.mlp_mult=3", "model.attn_window=256"],
    )
    assert cfg.model.mlp == "swiglu"
    assert cfg.optim.matrix.weight_decay == 0.02
    assert cfg.model.window_layers == [0, 1, 2]
    assert cfg.model.tie_embeddings is False
    assert cfg.model.mlp_mult == 3.0 and isinstance(cfg.model.mlp_mult, float)


def test_comma_list_override():
    assert override_to_dict("model.window_layers=0,1,2") == {"model": {"window_layers": [0, 1, 2]}}


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("model.mlpp=swiglu", "unknown config key 'model.mlpp' (did you mean 'mlp'?)"),
        ("model.mlp=swigl", "model.mlp: 'swigl' is not allowed; expected one of 'relu2'"),
        ("model.num_layers=two", "model.num_layers: expected an integer"),
        ("model.tie_embeddings=3", "model.tie_embeddings: expected true or false"),
        ("optim.matrix.betas=[0.9]", "optim.matrix.betas must be two numbers"),
        ("model=3", "model: is a section"),
        ("model.num_kv_heads=3", "must be divisible by model.num_kv_heads=3"),
        ("model.window_layers=[12]", "model.window_layers: layer 12 is outside 0..8"),
        ("nonsense", "must look like section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(preset="golf-baseline", overrides=[override])
    assert fragment in str(info.value)


def test_toml_round_trip(tmp_path):
    cfg = load_config(preset="golf-swiglu576", overrides=["seed=7"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    again = build_config([read_toml(path)])
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)


def test_hash_changes_with_config_and_optionally_seed():
    a = load_config(preset="tiny")
    b = load_config(preset="tiny", overrides=["seed=2"])
    c = load_config(preset="tiny", overrides=["model.mlp=gelu"])
    assert config_hash(a) != config_hash(b)
    assert config_hash(a, include_seed=False) == config_hash(b, include_seed=False)
    assert config_hash(a) != config_hash(c)


def test_diff_from_default_is_minimal():
    cfg = load_config(preset="golf-baseline", overrides=["model.mlp=gelu"])
    assert diff_from_default(cfg) == {"model": {"mlp": "gelu"}}


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'; available: tiny"):
        load_config(preset="nope")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(files=[tmp_path / "missing.toml"])
    bad = tmp_path / "bad.toml"
    bad.write_text("model = [")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(files=[bad])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("600s", {"seconds": 600.0, "steps": 0, "tokens": 0}), ("10m", {"seconds": 600.0, "steps": 0, "tokens": 0}),
     ("2000steps", {"seconds": 0.0, "steps": 2000, "tokens": 0}), ("5e8tokens", {"seconds": 0.0, "steps": 0, "tokens": 500_000_000})],
)
def test_parse_budget(text, expected):
    assert parse_budget(text) == {"budget": expected}


def test_bad_budget():
    with pytest.raises(ConfigError, match="budget 'soon'"):
        parse_budget("soon")


def test_cli_usage_error_is_one_message_not_a_traceback():
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "golflab", "config", "show", "x"], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 2
    assert "unexpected extra argument" in proc.stderr and "Traceback" not in proc.stderr

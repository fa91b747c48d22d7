"""Build a RunConfig from presets, TOML files and dotted overrides, with errors that name the key.

Resolution order: preset -> TOML file(s) -> `--set key=value` overrides. Every step is a nested
dict diff applied to the dataclass tree, checked key by key against the schema's types.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import sys
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from golflab.config.schema import RunConfig, TTTConfig
from golflab.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) is list:
        return f"a list of {_describe(get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check `value` against type `tp`; return it converted (int -> float only)."""
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not allowed; expected {_describe(tp)}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected {_describe(tp)}, got {value!r}")
        (item_tp,) = get_args(tp)
        return [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # a schema bug, not a user error


def _unknown_key(obj: Any, key: str, path: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(obj)]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    where = f"under '{path}'" if path else "at the top level"
    return ConfigError(
        f"unknown config key '{path + '.' if path else ''}{key}'{hint}; valid keys {where}: {', '.join(names)}"
    )


def apply_dict(obj: Any, diff: dict[str, Any], path: str = "") -> None:
    """Apply a nested dict onto a dataclass instance in place, validating every key and value."""
    types = _field_types(type(obj))
    for key, value in diff.items():
        full = f"{path}.{key}" if path else key
        if key not in types:
            raise _unknown_key(obj, key, path)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{full}: is a section; expected a table of keys, got {value!r}")
            apply_dict(current, value, full)
        else:
            setattr(obj, key, _coerce(value, types[key], full))


def parse_value(text: str) -> Any:
    """Parse an override value as TOML (numbers, booleans, arrays); fall back to a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if "," in text and not text.startswith(("[", '"', "'")):
            return [parse_value(part.strip()) for part in text.split(",") if part.strip()]
        return text


def override_to_dict(item: str) -> dict[str, Any]:
    """'model.mlp=swiglu' -> {'model': {'mlp': 'swiglu'}}."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r} has an empty key part")
    out: dict[str, Any] = {}
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = parse_value(text.strip())
    return out


def merge_dicts(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in diff.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None


def parse_budget(text: str) -> dict[str, Any]:
    """'600s' / '10m' / '2000steps' / '5e8tokens' -> a budget diff; the others are set to 0."""
    t = text.strip().lower().replace("_", "")
    units = {"steps": "steps", "step": "steps", "tokens": "tokens", "tok": "tokens", "s": "seconds",
             "sec": "seconds", "m": "minutes", "min": "minutes", "h": "hours"}
    for suffix in sorted(units, key=len, reverse=True):
        if t.endswith(suffix):
            number, unit = t[: -len(suffix)], units[suffix]
            break
    else:
        number, unit = t, "seconds"
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"budget {text!r}: expected e.g. 600s, 10m, 2000steps or 5e8tokens") from None
    if value <= 0:
        raise ConfigError(f"budget {text!r} must be positive")
    if unit in ("minutes", "hours"):
        value, unit = value * (60 if unit == "minutes" else 3600), "seconds"
    zero = {"seconds": 0.0, "steps": 0, "tokens": 0}
    zero[unit] = value if unit == "seconds" else int(value)
    return {"budget": zero}


def build_config(diffs: list[dict[str, Any]]) -> RunConfig:
    cfg = RunConfig()
    for diff in diffs:
        apply_dict(cfg, diff)
    validate(cfg)
    return cfg


def load_config(
    preset: str | None = None,
    files: list[str | Path] | None = None,
    overrides: list[str] | None = None,
    budget: str | None = None,
    extra: dict[str, Any] | None = None,
) -> RunConfig:
    """The one way to make a RunConfig: preset, then files, then --budget, then --set overrides."""
    from golflab.config.presets import preset_diff

    diffs: list[dict[str, Any]] = []
    if preset:
        diffs.append(preset_diff(preset))
    for f in files or []:
        diffs.append(read_toml(f))
    if extra:
        diffs.append(extra)
    if budget:
        diffs.append(parse_budget(budget))
    for item in overrides or []:
        diffs.append(override_to_dict(item))
    return build_config(diffs)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def diff_from_default(cfg: RunConfig) -> dict[str, Any]:
    """The minimal nested dict that turns RunConfig() into `cfg`."""

    def walk(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in b.items():
            if isinstance(value, dict):
                sub = walk(a[key], value)
                if sub:
                    out[key] = sub
            elif a[key] != value:
                out[key] = value
        return out

    return walk(to_dict(RunConfig()), to_dict(cfg))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def dumps_toml(d: dict[str, Any], prefix: str = "") -> str:
    """TOML for nested dicts of scalars and lists (all a RunConfig holds); stdlib only, so the
    exported stand-alone script can write its config too."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in d.items():
        if isinstance(v, dict):
            name = f"{prefix}.{k}" if prefix else k
            own = not v or any(not isinstance(x, dict) for x in v.values())  # else only [name.sub] headers
            out += (f"\n[{name}]\n" if own else "") + dumps_toml(v, name)
    return out


def to_toml(cfg: RunConfig) -> str:
    return dumps_toml(to_dict(cfg))


def from_toml_file(path: str | Path) -> RunConfig:
    return build_config([read_toml(path)])


def config_hash(cfg: RunConfig, include_seed: bool = True) -> str:
    """Stable 12-hex-digit hash of the resolved config (canonical JSON, sorted keys)."""
    d = to_dict(cfg)
    if not include_seed:
        d.pop("seed")
    blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def check_ttt_config(ttt: TTTConfig, seq_len: int) -> None:
    """eval.ttt's ranges, checked when the config loads (not after training) and again by the eval."""
    if ttt.chunk_tokens < seq_len:
        raise ConfigError(f"eval.ttt.chunk_tokens={ttt.chunk_tokens} must be >= model.seq_len={seq_len} "
                          "(each chunk is trained on in whole rows of seq_len)")
    for key in ("epochs", "batch_seqs", "freeze_blocks"):
        if getattr(ttt, key) < (1 if key == "batch_seqs" else 0):
            raise ConfigError(f"eval.ttt.{key}={getattr(ttt, key)} is out of range")
    if ttt.lr < 0 or ttt.grad_clip < 0 or not 0 <= ttt.momentum < 1:
        raise ConfigError("eval.ttt.lr and eval.ttt.grad_clip must be >= 0 and eval.ttt.momentum in [0, 1)")


def validate(cfg: RunConfig) -> None:
    """Cross-field checks that types alone cannot express."""
    m = cfg.model

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(msg)

    for name in ("num_layers", "model_dim", "num_heads", "num_kv_heads", "seq_len"):
        need(getattr(m, name) > 0, f"model.{name} must be positive, got {getattr(m, name)}")
    need(m.vocab_size >= 0, "model.vocab_size must be >= 0 (0 = from the dataset)")
    need(m.vocab_size <= 65536, f"model.vocab_size={m.vocab_size} does not fit uint16 shards (max 65536)")
    head_dim = m.head_dim or m.model_dim // m.num_heads
    if not m.head_dim:
        need(m.model_dim % m.num_heads == 0,
             f"model.model_dim={m.model_dim} must be divisible by model.num_heads={m.num_heads} (or set model.head_dim)")
    need(m.num_heads % m.num_kv_heads == 0,
         f"model.num_heads={m.num_heads} must be divisible by model.num_kv_heads={m.num_kv_heads}")
    need(head_dim % 2 == 0, f"head dim {head_dim} must be even for RoPE")
    need(m.mlp_mult > 0 or m.mlp_hidden > 0, "model.mlp_mult or model.mlp_hidden must be positive")
    need(m.mlp_round >= 1, "model.mlp_round must be >= 1")
    for name in ("window_layers", "value_embed_layers"):
        for i in getattr(m, name):
            need(0 <= i < m.num_layers, f"model.{name}: layer {i} is outside 0..{m.num_layers - 1}")
    need(not m.window_layers or m.attn_window > 0, "model.window_layers is set but model.attn_window is 0")
    need(m.attn_window >= 0, "model.attn_window must be >= 0")
    need(m.num_registers >= 0, "model.num_registers must be >= 0")
    need(m.mos_experts >= 1, "model.mos_experts must be >= 1")
    need(m.logit_softcap >= 0, "model.logit_softcap must be >= 0 (0 disables)")
    s = cfg.schedule
    need(0.0 <= s.warmdown_frac < 1.0, "schedule.warmdown_frac must be in [0, 1)")
    need(0.0 <= s.lr_floor <= 1.0, "schedule.lr_floor must be in [0, 1]")
    need(0.0 <= s.ema_decay < 1.0, "schedule.ema_decay must be in [0, 1)")
    for name in ("warmup_steps", "warmdown_steps", "compile_warmup_steps"):
        need(getattr(s, name) >= 0, f"schedule.{name} must be >= 0")
    t = cfg.train
    need(t.micro_batches >= 1, "train.micro_batches must be >= 1")
    need(t.batch_tokens % (t.micro_batches * m.seq_len) == 0,
         f"train.batch_tokens={t.batch_tokens} must be a multiple of train.micro_batches x model.seq_len "
         f"= {t.micro_batches * m.seq_len}")
    b = cfg.budget
    need(b.seconds >= 0 and b.steps >= 0 and b.tokens >= 0, "budget values must be >= 0")
    need(b.seconds > 0 or b.steps > 0 or b.tokens > 0, "set at least one budget: seconds, steps or tokens")
    e = cfg.eval
    need(0 <= e.stride <= m.seq_len, f"eval.stride must be in 0..model.seq_len ({m.seq_len})")
    need(e.batch_tokens >= m.seq_len, "eval.batch_tokens must hold at least one sequence")
    if e.ttt.enabled:
        check_ttt_config(e.ttt, m.seq_len)
    a = cfg.artifact
    need(a.limit_bytes > 0, "artifact.limit_bytes must be positive")
    need(50.0 <= a.clip_percentile <= 100.0, "artifact.clip_percentile must be in [50, 100]")
    need(a.scale_floor >= 0.0, "artifact.scale_floor must be >= 0")
    for role in ("matrix", "embed", "tied_embed", "head", "scalar", "gate", "value_embed"):
        g = getattr(cfg.optim, role)
        need(len(g.betas) == 2 and all(0 <= x < 1 for x in g.betas), f"optim.{role}.betas must be two numbers in [0, 1)")
        need(g.lr >= 0, f"optim.{role}.lr must be >= 0")
    need(cfg.optim.muon.ns_steps >= 1, "optim.muon.ns_steps must be >= 1")

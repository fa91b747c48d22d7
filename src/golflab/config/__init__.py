"""Typed run configuration: schema, presets, TOML loading, dotted overrides and a stable hash."""

from golflab.config.loader import (
    config_hash,
    diff_from_default,
    from_toml_file,
    load_config,
    parse_budget,
    to_dict,
    to_toml,
)
from golflab.config.presets import preset_names
from golflab.config.schema import RunConfig

__all__ = [
    "RunConfig",
    "config_hash",
    "diff_from_default",
    "from_toml_file",
    "load_config",
    "parse_budget",
    "preset_names",
    "to_dict",
    "to_toml",
]

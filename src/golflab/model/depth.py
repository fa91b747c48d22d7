"""The order layers run in: depth recurrence (a span of layers looped with the same weights), the U-Net
split of that order into encoder and decoder, and where parallel residual lanes begin."""

from __future__ import annotations

from golflab.config.schema import ModelConfig
from golflab.errors import ConfigError


def check_depth(cfg: ModelConfig) -> None:
    L = cfg.num_layers
    if cfg.num_loops < 0:
        raise ConfigError(f"model.num_loops must be >= 0, got {cfg.num_loops}")
    if cfg.num_loops and not 0 <= cfg.loop_start <= cfg.loop_end < L:
        raise ConfigError(f"model.loop_start..loop_end ({cfg.loop_start}..{cfg.loop_end}) must lie in 0..{L - 1}")
    if not 0 <= cfg.parallel_start < L:
        raise ConfigError(f"model.parallel_start must be in 0..{L - 1} (0 = off), got {cfg.parallel_start}")
    if cfg.skip_gates and not cfg.unet_skips:
        raise ConfigError("model.skip_gates needs model.unet_skips")
    if cfg.parallel_start and cfg.layer_lambdas:
        raise ConfigError("model.parallel_start does not combine with model.layer_lambdas")
    if cfg.parallel_start and first_parallel_step(cfg) < num_encoder_steps(cfg):
        raise ConfigError(f"model.parallel_start={cfg.parallel_start} is in the U-Net encoder; parallel lanes "
                          f"start in the decoder (a layer that runs after step {num_encoder_steps(cfg)})")


def layer_order(cfg: ModelConfig) -> list[int]:
    """Physical layer index of each step of the forward pass: 0..L-1 with loop_start..loop_end repeated
    1 + num_loops times (record 1: 0 1 2 3 4 5 3 4 5 3 4 5 6 7 8 9 10)."""
    L = cfg.num_layers
    if not cfg.num_loops:
        return list(range(L))
    span = list(range(cfg.loop_start, cfg.loop_end + 1))
    return list(range(cfg.loop_start)) + span * (1 + cfg.num_loops) + list(range(cfg.loop_end + 1, L))


def num_steps(cfg: ModelConfig) -> int:
    """len(layer_order(cfg)), by arithmetic on the config (so the exported script holds it as a constant)."""
    return cfg.num_layers + cfg.num_loops * (cfg.loop_end - cfg.loop_start + 1)


def num_encoder_steps(cfg: ModelConfig) -> int:
    """Steps of layer_order in the U-Net encoder (the first half); 0 without U-Net skips."""
    return num_steps(cfg) // 2 if cfg.unet_skips else 0


def num_skips(cfg: ModelConfig) -> int:
    enc = num_encoder_steps(cfg)
    return min(enc, num_steps(cfg) - enc)


def first_parallel_step(cfg: ModelConfig) -> int:
    """Step from which the residual stream runs as two lanes (the first step of a layer >= parallel_start);
    num_steps when off."""
    if cfg.parallel_start <= 0:
        return num_steps(cfg)
    return next((s for s, i in enumerate(layer_order(cfg)) if i >= cfg.parallel_start), num_steps(cfg))

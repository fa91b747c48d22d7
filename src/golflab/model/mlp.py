"""MLP kinds, registered by name: adding one is a class plus a line in MLP_KINDS."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golflab.config.schema import ModelConfig
from golflab.model.layers import Linear


def mlp_hidden_dim(cfg: ModelConfig) -> int:
    """Hidden width: explicit mlp_hidden, else mlp_mult x model_dim rounded up to mlp_round."""
    if cfg.mlp_hidden > 0:
        return cfg.mlp_hidden
    raw = round(cfg.mlp_mult * cfg.model_dim, 2)  # so 2.6667 x 96 counts as 256, not 256.003
    return math.ceil(raw / cfg.mlp_round) * cfg.mlp_round


class ActMLP(nn.Module):
    """up -> activation -> down (relu^2, leaky relu^2, GELU, SiLU)."""

    def __init__(self, cfg: ModelConfig, act: str):
        super().__init__()
        hidden, orth = mlp_hidden_dim(cfg), cfg.matrix_init == "orthogonal"
        self.fc = Linear(cfg.model_dim, hidden, init_scale=cfg.matrix_init_scale, orthogonal=orth)
        self.proj = Linear(hidden, cfg.model_dim, zero_init=cfg.zero_init_proj)
        self.act = act
        self.slope = cfg.leaky_slope

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)
        if self.act == "relu2":
            h = torch.relu(h).square()
        elif self.act == "leaky_relu2":
            h = F.leaky_relu(h, self.slope).square()
        elif self.act == "gelu":
            h = F.gelu(h)
        else:
            h = F.silu(h)
        return self.proj(h)


class SwiGLU(nn.Module):
    """silu(gate(x)) * up(x) -> down; gate and up stay separate so Muon orthogonalises each."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.hidden, orth = mlp_hidden_dim(cfg), cfg.matrix_init == "orthogonal"
        self.gate = Linear(cfg.model_dim, self.hidden, init_scale=cfg.matrix_init_scale, orthogonal=orth)
        self.up = Linear(cfg.model_dim, self.hidden, init_scale=cfg.matrix_init_scale, orthogonal=orth)
        self.proj = Linear(self.hidden, cfg.model_dim, zero_init=cfg.zero_init_proj)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(F.silu(self.gate(x)) * self.up(x))


MLP_KINDS = {
    "relu2": lambda cfg: ActMLP(cfg, "relu2"),
    "leaky_relu2": lambda cfg: ActMLP(cfg, "leaky_relu2"),
    "gelu": lambda cfg: ActMLP(cfg, "gelu"),
    "silu": lambda cfg: ActMLP(cfg, "silu"),
    "swiglu": SwiGLU,
}


def build_mlp(cfg: ModelConfig) -> nn.Module:
    return MLP_KINDS[cfg.mlp](cfg)

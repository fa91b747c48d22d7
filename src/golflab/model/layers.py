"""Small building blocks shared by the model parts: linear layers, RMS norm, rotary embeddings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golflab.model.params import new_param


def rms_norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


class Linear(nn.Module):
    """Bias-free linear layer with fp32 master weights, cast to the activation dtype at matmul time."""

    def __init__(self, in_dim: int, out_dim: int, role: str = "matrix", zero_init: bool = False,
                 init_scale: float = 1.0, orthogonal: bool = False):
        super().__init__()
        if zero_init:
            init: tuple = ("zeros",)
        else:  # orthogonal: init_scale is the gain (the records' nn.init.orthogonal_(w, gain=1.0))
            init = ("orthogonal", init_scale) if orthogonal else ("uniform", init_scale / math.sqrt(in_dim))
        self.weight = new_param((out_dim, in_dim), role, init)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype))


class Rotary(nn.Module):
    """RoPE cos/sin tables for up to `max_len` positions, as non-persistent buffers (move with .to())."""

    def __init__(self, dim: int, base: float, max_len: int):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
        self.register_buffer("cos", freqs.cos()[None, None], persistent=False)
        self.register_buffer("sin", freqs.sin()[None, None], persistent=False)

    def forward(self, seq_len: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        assert seq_len <= self.cos.size(2), \
            f"sequence of {seq_len} tokens is longer than the model's {self.cos.size(2)}"
        return self.cos[:, :, :seq_len].to(dtype), self.sin[:, :, :seq_len].to(dtype)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)

"""Learned gates of the parameter-golf frontier: the per-head attention output gate (dense or sparse)
and SmearGate, which mixes each token's embedding with the previous token's (not across documents)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golflab.config.schema import ModelConfig
from golflab.errors import ConfigError
from golflab.model.params import new_param


def check_gates(cfg: ModelConfig, vocab: int) -> None:
    if (cfg.attn_gate == "sparse" or cfg.smear_gate) and not 0 < cfg.gate_window <= cfg.model_dim:
        raise ConfigError(f"model.gate_window={cfg.gate_window} must be in 1..model.model_dim ({cfg.model_dim})")
    if (cfg.smear_gate or cfg.doc_mask) and not 0 <= cfg.bos_id < vocab:
        raise ConfigError(f"model.bos_id={cfg.bos_id} must be a token id in 0..{vocab - 1} (smear_gate / doc_mask)")


class AttnOutputGate(nn.Module):
    """y_h <- sigmoid(scale * W_h x[:window]) * y_h per head; the sparse gate reads the first gate_window
    channels of the attention input (8 x 12 weights a layer), the dense one all of them."""

    def __init__(self, cfg: ModelConfig, num_heads: int):
        super().__init__()
        self.window = cfg.model_dim if cfg.attn_gate == "dense" else cfg.gate_window
        self.scale = cfg.attn_gate_scale
        init: tuple = ("normal", cfg.attn_gate_init_std) if cfg.attn_gate_init_std > 0 else ("zeros",)
        self.weight = new_param((num_heads, self.window), "gate", init)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x: (B, T, D) attention input; y: (B, H, T, hd) head outputs."""
        g = torch.sigmoid(self.scale * F.linear(x[..., : self.window], self.weight.to(x.dtype)))  # (B, T, H)
        return y * g.transpose(1, 2).unsqueeze(-1).to(y.dtype)


class SmearGate(nn.Module):
    """x_t <- x_t + lam * sigmoid(W x_t[:window]) * x_(t-1), except where token t is BOS (the record's fix of a
    leak from one document into the next). lam and W start at 0: the identity."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.window, self.bos_id = cfg.gate_window, cfg.bos_id
        self.weight = new_param((1, self.window), "gate", ("zeros",))
        self.lam = new_param((1,), "scalar", ("zeros",))

    def forward(self, x: Tensor, idx: Tensor) -> Tensor:
        g = self.lam.to(x.dtype) * torch.sigmoid(F.linear(x[:, 1:, : self.window], self.weight.to(x.dtype)))
        not_bos = (idx[:, 1:] != self.bos_id).to(x.dtype).unsqueeze(-1)
        return torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1] * not_bos], dim=1)

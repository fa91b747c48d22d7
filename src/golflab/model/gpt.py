"""The GPT assembled from config: embeddings (+ registers, value embeddings), blocks with residual
mix (per channel, or per-layer resid / x0 scalars) and output scales, U-Net skips, final norm, and the
output head."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golflab.config.schema import ModelConfig
from golflab.model.attention import Attention, head_dim_of
from golflab.model.head import OutputHead
from golflab.model.layers import rms_norm
from golflab.model.mlp import build_mlp
from golflab.model.params import init_parameters, new_param


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        d = cfg.model_dim
        self.attn = Attention(cfg, layer)
        self.mlp = build_mlp(cfg)
        self.attn_scale = new_param((d,), "scalar", ("ones",)) if cfg.layer_scales else None
        self.mlp_scale = new_param((d,), "scalar", ("ones",)) if cfg.layer_scales else None
        self.resid_mix = new_param((2, d), "scalar", ("rows", [1.0, 0.0])) if cfg.resid_mix else None

    def forward(self, x: Tensor, x0: Tensor, ve: Tensor | None) -> Tensor:
        if self.resid_mix is not None:
            mix = self.resid_mix.to(x.dtype)
            x = mix[0] * x + mix[1] * x0
        a = self.attn(rms_norm(x), ve)
        x = x + (a * self.attn_scale.to(x.dtype) if self.attn_scale is not None else a)
        m = self.mlp(rms_norm(x))
        return x + (m * self.mlp_scale.to(x.dtype) if self.mlp_scale is not None else m)


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size or cfg.vocab_size
        if self.vocab_size <= 0:
            raise ValueError("vocab size unknown: set model.vocab_size or pass the dataset's vocab")
        d = cfg.model_dim
        emb_role, emb_init = ("tied_embed", ("normal", cfg.embed_init_std)) if cfg.tie_embeddings else ("embed", ("normal", 1.0))
        emb_dtype = torch.bfloat16 if cfg.embed_dtype == "bf16" else torch.float32
        self.tok_emb = nn.Embedding(self.vocab_size, d)
        self.tok_emb.weight = new_param((self.vocab_size, d), emb_role, emb_init, emb_dtype)
        kv_dim = cfg.num_kv_heads * head_dim_of(cfg)
        self.value_embeds = nn.ModuleDict()
        for i in cfg.value_embed_layers:
            emb = nn.Embedding(self.vocab_size, kv_dim)
            emb.weight = new_param((self.vocab_size, kv_dim), "value_embed", ("uniform", math.sqrt(3.0 / d)), emb_dtype)
            self.value_embeds[str(i)] = emb
        self.registers = new_param((cfg.num_registers, d), "scalar", ("normal", 1.0)) if cfg.num_registers else None
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(cfg.num_layers)])
        L = cfg.num_layers
        self.resid_lambdas = new_param((L,), "resid", ("ones",)) if cfg.layer_lambdas else None
        self.x0_lambdas = new_param((L,), "x0", ("const", cfg.x0_lambda_init)) if cfg.layer_lambdas else None
        self.num_encoder = cfg.num_layers // 2 if cfg.unet_skips else 0
        num_skips = min(self.num_encoder, cfg.num_layers - self.num_encoder)
        self.skip_weights = new_param((num_skips, d), "scalar", ("ones",)) if num_skips else None
        self.head = OutputHead(cfg, self.vocab_size)
        self.compute_dtype: torch.dtype | None = None  # residual-stream dtype under autocast (set by the trainer)

    def init_weights(self, seed: int) -> GPT:
        init_parameters(self, seed)
        return self

    def prepare(self, device: torch.device) -> None:
        """Precompute per-length attention masks for the sequence length this model trains at."""
        for block in self.blocks:
            block.attn.prepare(self.cfg.seq_len + self.cfg.num_registers, device)

    def hidden(self, idx: Tensor) -> Tensor:
        """Final-normed hidden states (B, T, D) for token ids (B, T)."""
        x = self.tok_emb(idx)
        if self.compute_dtype is not None or x.dtype != torch.float32:  # bf16 tables compute in fp32 without autocast
            x = x.to(self.compute_dtype or torch.float32)
        x = rms_norm(x)
        R = self.cfg.num_registers
        if self.registers is not None:
            regs = rms_norm(self.registers.to(x.dtype)).unsqueeze(0).expand(x.size(0), -1, -1)
            x = torch.cat([regs, x], dim=1)
        x0 = x
        skips: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            ve = None
            if str(i) in self.value_embeds:
                ve = self.value_embeds[str(i)](idx).to(x.dtype)
                if R:
                    ve = F.pad(ve, (0, 0, R, 0))
            if i >= self.num_encoder and skips and self.skip_weights is not None:
                x = x + self.skip_weights[i - self.num_encoder].to(x.dtype) * skips.pop()
            if self.resid_lambdas is not None and self.x0_lambdas is not None:  # 0-d fp32 scalars keep x's dtype
                x = self.resid_lambdas[i] * x + self.x0_lambdas[i] * x0
            x = block(x, x0, ve)
            if i < self.num_encoder:
                skips.append(x)
        return rms_norm(x[:, R:] if R else x)

    def logits(self, idx: Tensor) -> Tensor:
        """(B, T, V) float scores for token ids (B, T): what the trusted harness asks a model for (it
        computes the loss, the bytes and the metric itself; see golflab.trusted)."""
        x = self.hidden(idx)
        return self.head.scores(x.reshape(-1, x.size(-1)), self.tok_emb.weight).view(*idx.shape, -1)

    def forward(self, idx: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """Cross-entropy in nats of `targets` given `idx`; reduction 'mean', 'sum' or 'none' (flat)."""
        x = self.hidden(idx)
        return self.head(x.reshape(-1, x.size(-1)), self.tok_emb.weight, targets.reshape(-1), reduction)


def build_model(cfg: ModelConfig, seed: int, vocab_size: int | None = None) -> GPT:
    return GPT(cfg, vocab_size).init_weights(seed)

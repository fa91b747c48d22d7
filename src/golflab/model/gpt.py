"""The GPT assembled from config: embeddings (+ SmearGate, registers, value embeddings), blocks with
residual mix (per channel, or per-layer resid / x0 scalars) and output scales, run in the order of
model/depth.py (depth recurrence), U-Net skips (optionally gated), parallel residual lanes, final norm,
and the output head."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golflab.config.schema import ModelConfig
from golflab.model.attention import FLEX_BLOCK, Attention, doc_block_mask, doc_mask, head_dim_of, windowed
from golflab.model.depth import check_depth, first_parallel_step, layer_order, num_encoder_steps, num_skips
from golflab.model.gates import SmearGate, check_gates
from golflab.model.head import OutputHead
from golflab.model.layers import rms_norm
from golflab.model.mlp import build_mlp
from golflab.model.params import init_parameters, new_param

if TYPE_CHECKING:
    from torch.nn.attention.flex_attention import BlockMask

    Mask = Tensor | BlockMask | None


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        d = cfg.model_dim
        self.attn = Attention(cfg, layer)
        self.mlp = build_mlp(cfg)
        self.attn_scale = new_param((d,), "scalar", ("ones",)) if cfg.layer_scales else None
        self.mlp_scale = new_param((d,), "scalar", ("ones",)) if cfg.layer_scales else None
        self.resid_mix = new_param((2, d), "scalar", ("rows", [1.0, 0.0])) if cfg.resid_mix else None
        self.ln_scale = 1.0 / math.sqrt(layer + 1) if cfg.ln_scale else 1.0

    def _mix(self, x: Tensor, x0: Tensor) -> Tensor:
        if self.resid_mix is None:
            return x
        mix = self.resid_mix.to(x.dtype)
        return mix[0] * x + mix[1] * x0

    def _branch(self, layer: nn.Module, scale: Tensor | None, x: Tensor, *args: Tensor | Mask) -> Tensor:
        """A residual branch: `layer` (attention or MLP) of the normed stream, times its output scale."""
        out = layer(rms_norm(x) * self.ln_scale if self.ln_scale != 1.0 else rms_norm(x), *args)
        return out * scale.to(x.dtype) if scale is not None else out

    def forward(self, x: Tensor, x0: Tensor, ve: Tensor | None, mask: Mask = None) -> Tensor:
        x = self._mix(x, x0)
        x = x + self._branch(self.attn, self.attn_scale, x, ve, mask)
        return x + self._branch(self.mlp, self.mlp_scale, x)

    def parallel(self, lanes: tuple[Tensor, Tensor], x0: Tensor, ve: Tensor | None, mask: Mask,
                 post: Tensor, resid: Tensor) -> tuple[Tensor, Tensor]:
        """Parallel residuals: attention reads lane 0, the MLP lane 1, and each output is written to both
        lanes with learned weights: lane_j <- resid[j] lane_j + post[0, j] attn + post[1, j] mlp."""
        a = self._branch(self.attn, self.attn_scale, self._mix(lanes[0], x0), ve, mask)
        m = self._branch(self.mlp, self.mlp_scale, lanes[1])
        post, resid = post.to(a.dtype), resid.to(a.dtype)
        return (resid[0] * lanes[0] + post[0, 0] * a + post[1, 0] * m,
                resid[1] * lanes[1] + post[0, 1] * a + post[1, 1] * m)


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size or cfg.vocab_size
        if self.vocab_size <= 0:
            raise ValueError("vocab size unknown: set model.vocab_size or pass the dataset's vocab")
        check_depth(cfg)
        check_gates(cfg, self.vocab_size)
        d = cfg.model_dim
        emb_role, emb_init = ("tied_embed", ("normal", cfg.embed_init_std)) if cfg.tie_embeddings else ("embed", ("normal", 1.0))
        emb_dtype = torch.bfloat16 if cfg.embed_dtype == "bf16" else torch.float32
        self.tok_emb = nn.Embedding(self.vocab_size, d)
        self.tok_emb.weight = new_param((self.vocab_size, d), emb_role, emb_init, emb_dtype)
        self.value_embeds = None  # by layer index, for model.value_embed_layers
        if cfg.value_embed_layers:
            kv_dim, ve_init = cfg.num_kv_heads * head_dim_of(cfg), ("uniform", math.sqrt(3.0 / d))
            self.value_embeds = nn.ModuleDict()
            for i in cfg.value_embed_layers:
                emb = nn.Embedding(self.vocab_size, kv_dim)
                emb.weight = new_param((self.vocab_size, kv_dim), "value_embed", ve_init, emb_dtype)
                self.value_embeds[str(i)] = emb
        self.smear = SmearGate(cfg) if cfg.smear_gate else None
        self.registers = new_param((cfg.num_registers, d), "scalar", ("normal", 1.0)) if cfg.num_registers else None
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(cfg.num_layers)])
        L = cfg.num_layers
        self.resid_lambdas = new_param((L,), "resid", ("ones",)) if cfg.layer_lambdas else None
        self.x0_lambdas = new_param((L,), "x0", ("const", cfg.x0_lambda_init)) if cfg.layer_lambdas else None
        self.order = layer_order(cfg)
        self.num_encoder = num_encoder_steps(cfg)
        n_skips = num_skips(cfg)
        self.skip_weights = new_param((n_skips, d), "scalar", ("ones",)) if n_skips else None
        self.skip_gates = new_param((n_skips, d), "scalar", ("zeros",)) if n_skips and cfg.skip_gates else None
        self.parallel_from = first_parallel_step(cfg)
        n_par = L - cfg.parallel_start if cfg.parallel_start else 0  # layers parallel_start.. run as two lanes
        self.parallel_post = new_param((n_par, 2, 2), "scalar", ("ones",)) if n_par else None
        self.parallel_resid = new_param((n_par, 2), "scalar", ("const", 1.1)) if n_par else None
        self.head = OutputHead(cfg, self.vocab_size)
        self.compute_dtype: torch.dtype | None = None  # residual-stream dtype under autocast (set by the trainer)
        self.flex_docs = False  # FlexAttention document masks: set by prepare()

    def init_weights(self, seed: int) -> GPT:
        init_parameters(self, seed)
        return self

    def prepare(self, device: torch.device, flex_docs: bool = True) -> None:
        """Precompute per-length attention masks for the sequence length this model trains at, and say
        whether compiled CUDA graphs take document masks as FlexAttention block masks (no windows or
        sinks: doc_block_mask covers neither)."""
        c = self.cfg
        if windowed(c):  # only windowed layers have a block mask to build
            for block in self.blocks:
                block.attn.prepare(c.seq_len + c.num_registers, device)
        if c.doc_mask and flex_docs and device.type == "cuda" and not c.num_registers and not windowed(c):
            self.flex_docs = True

    def hidden(self, idx: Tensor) -> Tensor:
        """Final-normed hidden states (B, T, D) for token ids (B, T)."""
        x = self.tok_emb(idx)
        x = x.to(self.compute_dtype or torch.float32)  # a no-op in fp32; bf16 tables compute in fp32 without autocast
        if self.smear is not None:
            x = self.smear(x, idx)
        x = rms_norm(x)
        R = self.cfg.num_registers
        if self.registers is not None:
            regs = rms_norm(self.registers.to(x.dtype)).unsqueeze(0).expand(x.size(0), -1, -1)
            x = torch.cat([regs, x], dim=1)
        mask: Mask = None
        if self.cfg.doc_mask:  # FlexAttention skips the blocks a dense mask only zeroes (compiled: eager flex is slow)
            flex = self.flex_docs and torch.compiler.is_compiling() and idx.size(1) % FLEX_BLOCK == 0
            mask = doc_block_mask(idx, self.cfg.bos_id) if flex else doc_mask(idx, self.cfg.bos_id, R)
        x0 = x
        skips: list[Tensor] = []
        lanes: tuple[Tensor, Tensor] | None = None
        for step, i in enumerate(self.order):
            block = self.blocks[i]
            ve = None
            if self.value_embeds is not None and str(i) in self.value_embeds:
                ve = self.value_embeds[str(i)](idx).to(x.dtype)
                if R:
                    ve = F.pad(ve, (0, 0, R, 0))
            # parallel_post first: off, it is None and the exported script drops both lane branches
            if self.parallel_post is not None and step >= self.parallel_from and lanes is None:
                lanes = (x, x)
            if self.num_encoder and step >= self.num_encoder and skips:  # U-Net skips (so skip_weights is set)
                j = step - self.num_encoder
                x = lanes[0] if lanes is not None else x
                skip = self.skip_weights[j].to(x.dtype) * skips.pop()
                if self.skip_gates is not None:  # the record's gated skip: lerp from the skip to the stream
                    x = torch.lerp(skip, x, torch.sigmoid(self.skip_gates[j].to(x.dtype)))
                else:
                    x = x + skip
                lanes = (x, lanes[1]) if lanes is not None else None
            if self.resid_lambdas is not None and self.x0_lambdas is not None:  # 0-d fp32 scalars keep x's dtype
                x = self.resid_lambdas[i] * x + self.x0_lambdas[i] * x0
            if self.parallel_post is not None and step >= self.parallel_from:
                assert lanes is not None and self.parallel_resid is not None
                p = i - self.cfg.parallel_start
                lanes = block.parallel(lanes, x0, ve, mask, self.parallel_post[p], self.parallel_resid[p])
                continue
            x = block(x, x0, ve, mask)
            if step < self.num_encoder:
                skips.append(x)
        if lanes is not None:
            x = 0.5 * (lanes[0] + lanes[1])
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

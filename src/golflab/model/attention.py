"""Causal self-attention: GQA, RoPE (full or partial), QK RMS-norm with per-head gain, sliding windows,
register tokens as attention sinks, gated value normalisation, value embeddings, document masks, XSA and
the per-head output gate.

Full-context layers use scaled_dot_product_attention (flash on CUDA). Windowed layers, and document masks
under train.attention=flex, use FlexAttention with a block mask when compiled on CUDA, and SDPA with a
boolean mask otherwise.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golflab.config.schema import ModelConfig
from golflab.errors import ConfigError
from golflab.model.gates import AttnOutputGate
from golflab.model.layers import Linear, Rotary, apply_rotary, rms_norm
from golflab.model.params import new_param

if TYPE_CHECKING:
    from torch.nn.attention.flex_attention import BlockMask

VE_GATE_CHANNELS = 32  # value-embedding gate reads this many leading channels of x
FLEX_BLOCK = 128  # FlexAttention's block: a document block mask needs the length to be a multiple of it


def head_dim_of(cfg: ModelConfig) -> int:
    return cfg.head_dim or cfg.model_dim // cfg.num_heads


def windowed(cfg: ModelConfig) -> bool:
    """Some layer attends within a sliding window."""
    return cfg.attn_window > 0 and bool(cfg.window_layers)


def window_mask(seq_len: int, window: int, num_sinks: int, device: torch.device) -> Tensor:
    """Boolean (T, T) mask: causal, within `window` positions, and sink positions always visible."""
    q = torch.arange(seq_len, device=device)[:, None]
    k = torch.arange(seq_len, device=device)[None, :]
    return (k <= q) & ((q - k < window) | (k < num_sinks))


def doc_mask(idx: Tensor, bos_id: int, num_sinks: int) -> Tensor:
    """Boolean (B, 1, T, T) mask, T counting the sinks: causal, within a document (one starts at each BOS
    token; tokens before a row's first BOS form a document too), sinks visible to every position."""
    doc = torch.cumsum((idx == bos_id).to(torch.int32), dim=1)
    if num_sinks:
        doc = F.pad(doc, (num_sinks, 0), value=-1)
    T = doc.size(1)
    pos = torch.arange(T, device=idx.device)
    causal = pos[None, :] <= pos[:, None]
    same = doc[:, :, None] == doc[:, None, :]
    return (causal & (same | (pos < num_sinks)[None, None, :])).unsqueeze(1)


def doc_block_mask(idx: Tensor, bos_id: int) -> BlockMask:
    """FlexAttention's form of doc_mask (no sinks; T a multiple of FLEX_BLOCK), built from tensor ops so
    that it is traced into the compiled graph: per row, the (query block, key block) pairs that hold some
    causal same-document pair, split into those where every pair counts (no mask applied) and the partial
    ones. The kernel skips the rest, where SDPA with a dense boolean mask computes every block."""
    from torch.nn.attention.flex_attention import BlockMask

    B, T = idx.shape
    doc = torch.cumsum((idx == bos_id).to(torch.int32), dim=1)  # nondecreasing along each row
    nb = T // FLEX_BLOCK
    ends = doc.view(B, nb, FLEX_BLOCK)
    lo_q, hi_q = ends[:, :, None, 0], ends[:, :, None, -1]  # (B, nb, 1): a query block's first and last document
    lo_k, hi_k = ends[:, None, :, 0], ends[:, None, :, -1]  # (B, 1, nb): the same of a key block
    blk = torch.arange(nb, device=idx.device)
    # a key block at or before the query block shares a document with it iff its last document is the
    # query block's first; every pair shares one iff both blocks lie in one document (and k is strictly before)
    some = (blk[None, :, None] >= blk[None, None, :]) & (hi_k >= lo_q)
    every = (blk[None, :, None] > blk[None, None, :]) & (lo_k == hi_q)

    def listed(dense: Tensor) -> tuple[Tensor, Tensor]:  # counts (B, 1, nb) and the blocks first (B, 1, nb, nb)
        order = torch.argsort(dense.to(torch.int32), dim=-1, descending=True, stable=True)
        return dense.sum(-1, dtype=torch.int32)[:, None].contiguous(), order.to(torch.int32)[:, None].contiguous()

    def same_document(b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
        return (k <= q) & (doc[b, q] == doc[b, k])

    partial, full = listed(some & ~every), listed(every)
    return BlockMask.from_kv_blocks(*partial, *full, BLOCK_SIZE=FLEX_BLOCK, mask_mod=same_document)


def xsa(y: Tensor, v: Tensor) -> Tensor:
    """Exclusive self-attention: drop from each head's output y (B, H, T, hd) its component along the
    (normalised) value vector of its own KV head at the same position, v (B, Hkv, T, hd)."""
    B, H, T, D = y.shape
    vn = F.normalize(v, dim=-1).unsqueeze(2)  # (B, Hkv, 1, T, D)
    yg = y.view(B, v.size(1), H // v.size(1), T, D)
    return (yg - (yg * vn).sum(-1, keepdim=True) * vn).view(B, H, T, D)


@functools.lru_cache(maxsize=16)
def flex_block_mask(seq_len: int, window: int, num_sinks: int, device: torch.device):
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & ((q_idx - kv_idx < window) | (kv_idx < num_sinks))

    return create_block_mask(mask_mod, B=None, H=None, Q_LEN=seq_len, KV_LEN=seq_len, device=device)


def _flex_attention():
    from torch.nn.attention.flex_attention import flex_attention

    return flex_attention


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.num_heads, self.num_kv_heads = cfg.num_heads, cfg.num_kv_heads
        self.head_dim = head_dim_of(cfg)
        kv_dim = self.num_kv_heads * self.head_dim
        s, orth = cfg.matrix_init_scale, cfg.matrix_init == "orthogonal"
        self.c_q = Linear(cfg.model_dim, self.num_heads * self.head_dim, init_scale=s, orthogonal=orth)
        self.c_k = Linear(cfg.model_dim, kv_dim, init_scale=s, orthogonal=orth)
        self.c_v = Linear(cfg.model_dim, kv_dim, init_scale=s, orthogonal=orth)
        self.proj = Linear(self.num_heads * self.head_dim, cfg.model_dim, zero_init=cfg.zero_init_proj)
        self.qk_norm = cfg.qk_norm
        self.q_gain = (new_param((self.num_heads,), "scalar", ("const", cfg.qk_gain_init))
                       if cfg.qk_norm and cfg.qk_gain else None)
        self.v_gate = new_param((self.num_kv_heads,), "scalar", ("zeros",)) if cfg.v_norm else None
        self.ve_gate = (
            Linear(VE_GATE_CHANNELS, self.num_kv_heads, role="gate", zero_init=True)
            if layer in cfg.value_embed_layers else None
        )
        self.window = cfg.attn_window if layer in cfg.window_layers else 0
        self.num_sinks = cfg.num_registers
        self.rope_dims = cfg.rope_dims or self.head_dim
        if self.rope_dims % 2 or not 0 < self.rope_dims <= self.head_dim:
            raise ConfigError(f"model.rope_dims={cfg.rope_dims} must be even and at most the head dim {self.head_dim}")
        self.rotary = Rotary(self.rope_dims, cfg.rope_base, cfg.seq_len + cfg.num_registers)
        self.xsa = layer in cfg.xsa_layers
        self.out_gate = AttnOutputGate(cfg, self.num_heads) if cfg.attn_gate != "none" else None
        self.block_mask = None  # FlexAttention mask, built outside the compiled graph by prepare()
        self.doc_mask = cfg.doc_mask  # the model passes document masks only under model.doc_mask

    def prepare(self, seq_len: int, device: torch.device) -> None:
        """Precompute the FlexAttention block mask for windowed layers on CUDA."""
        if self.window > 0 and device.type == "cuda":
            self.block_mask = flex_block_mask(seq_len, self.window, self.num_sinks, device)

    def forward(self, x: Tensor, ve: Tensor | None = None, mask: Tensor | BlockMask | None = None) -> Tensor:
        """x: (B, T, D) normed input; ve: value embedding; mask: a document mask, (B, 1, T, T) or as
        doc_block_mask's BlockMask, or None."""
        B, T, _ = x.shape
        q = self.c_q(x).view(B, T, self.num_heads, self.head_dim)
        k = self.c_k(x).view(B, T, self.num_kv_heads, self.head_dim)
        v = self.c_v(x).view(B, T, self.num_kv_heads, self.head_dim)
        if self.ve_gate is not None and ve is not None:
            gate = 2.0 * torch.sigmoid(self.ve_gate(x[..., :VE_GATE_CHANNELS]))
            v = v + gate.unsqueeze(-1) * ve.view(B, T, self.num_kv_heads, self.head_dim)
        if self.v_gate is not None:  # gated value norm: interpolate raw and RMS-normed values per KV head
            g = self.v_gate.to(v.dtype)[None, None, :, None]
            v = v + g * (rms_norm(v) - v)
        if self.qk_norm:
            q, k = rms_norm(q), rms_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        cos, sin = self.rotary(T, q.dtype)
        if self.rope_dims == self.head_dim:
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        else:  # partial RoPE: the channels past rope_dims carry no position
            r = self.rope_dims
            q = torch.cat((apply_rotary(q[..., :r], cos, sin), q[..., r:]), dim=-1)
            k = torch.cat((apply_rotary(k[..., :r], cos, sin), k[..., r:]), dim=-1)
        if self.q_gain is not None:
            q = q * self.q_gain.to(q.dtype)[None, :, None, None]
        if self.window > 0 or (self.doc_mask and mask is not None):
            y = self._attend_masked(q, k, v, T, mask)
        else:  # plain causal attention (flash on CUDA)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.num_kv_heads != self.num_heads)
        if self.xsa:
            y = xsa(y, v)
        if self.out_gate is not None:
            y = self.out_gate(x, y)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))

    def _attend_masked(self, q: Tensor, k: Tensor, v: Tensor, T: int, mask: Tensor | BlockMask | None) -> Tensor:
        """Attention within the layer's window and the documents of `mask`, whichever apply."""
        gqa = self.num_kv_heads != self.num_heads
        if mask is not None:  # documents (and the window, if any) as one boolean mask
            if not isinstance(mask, Tensor):  # doc_block_mask's (the model has no windows)
                return _flex_attention()(q, k, v, block_mask=mask, enable_gqa=gqa)
            if 0 < self.window < T:
                mask = mask & window_mask(T, self.window, self.num_sinks, q.device)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        if self.window <= 0 or self.window >= T:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        bm = self.block_mask
        if bm is not None and torch.compiler.is_compiling() and bm.seq_lengths == (T, T):
            return _flex_attention()(q, k, v, block_mask=bm, enable_gqa=gqa)
        mask = window_mask(T, self.window, self.num_sinks, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)

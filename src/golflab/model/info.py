"""Parameter counts per part, a closed-form count to check them against, and FLOPs per token (for MFU)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from golflab.config.schema import ModelConfig
from golflab.model.attention import head_dim_of
from golflab.model.mlp import mlp_hidden_dim

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12,
                   "4090": 165e12, "3090": 71e12, "B200": 2250e12, "GH200": 989e12}


def part_of(name: str) -> str:
    if name.startswith("blocks."):
        sub = name.split(".")[2]
        return {"attn": "attention", "mlp": "mlp"}.get(sub, "block scalars")
    return {"tok_emb": "embedding", "head": "head", "value_embeds": "value embeddings",
            "registers": "registers", "skip_weights": "skip weights", "resid_lambdas": "layer scalars",
            "x0_lambdas": "layer scalars"}.get(name.split(".")[0], name.split(".")[0])


def param_counts(model: nn.Module) -> OrderedDict[str, int]:
    counts: OrderedDict[str, int] = OrderedDict()
    for name, p in model.named_parameters():
        part = part_of(name)
        counts[part] = counts.get(part, 0) + p.numel()
    counts["total"] = sum(v for k, v in counts.items())
    return counts


def expected_param_count(cfg: ModelConfig, vocab: int) -> int:
    """The same count from the config alone (checked against the built model in the tests)."""
    d, L, hd = cfg.model_dim, cfg.num_layers, head_dim_of(cfg)
    q, kv = cfg.num_heads * hd, cfg.num_kv_heads * hd
    hidden = mlp_hidden_dim(cfg)
    attn = d * q + 2 * d * kv + q * d + (cfg.num_heads if cfg.qk_norm and cfg.qk_gain else 0)
    attn += cfg.num_kv_heads if cfg.v_norm else 0
    mlp = (3 if cfg.mlp == "swiglu" else 2) * d * hidden
    block = attn + mlp + (2 * d if cfg.layer_scales else 0) + (2 * d if cfg.resid_mix else 0)
    total = L * block + vocab * d
    total += len(cfg.value_embed_layers) * (vocab * kv + 32 * cfg.num_kv_heads)
    total += cfg.num_registers * d
    total += 2 * L if cfg.layer_lambdas else 0
    total += min(L // 2, L - L // 2) * d if cfg.unet_skips else 0
    total += 0 if cfg.tie_embeddings else vocab * d
    total += cfg.mos_experts * d * d + cfg.mos_experts * d if cfg.mos_experts > 1 else 0
    return total


def flops_per_token(cfg: ModelConfig, vocab: int) -> float:
    """Training FLOPs per token: 6 x (matmul weights) + attention scores (12 x layers x q-width x context)."""
    d, hd = cfg.model_dim, head_dim_of(cfg)
    q, kv = cfg.num_heads * hd, cfg.num_kv_heads * hd
    hidden = mlp_hidden_dim(cfg)
    per_layer = d * q + 2 * d * kv + q * d + (3 if cfg.mlp == "swiglu" else 2) * d * hidden
    head = vocab * d * max(cfg.mos_experts, 1) + (cfg.mos_experts * d * d if cfg.mos_experts > 1 else 0)
    weights = cfg.num_layers * per_layer + head
    T = cfg.seq_len + cfg.num_registers
    attn = 0.0
    for layer in range(cfg.num_layers):
        ctx = min(cfg.attn_window, T) if layer in cfg.window_layers and cfg.attn_window else T
        attn += 12 * q * ctx / 2  # causal: on average half the context
    return 6.0 * weights + attn


def peak_flops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_FLOPS.items():
        if key in device_name:
            return value
    return None

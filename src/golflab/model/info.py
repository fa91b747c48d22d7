"""Parameter counts per part and training FLOPs per token, both read off the built model (on the meta
device: no memory, no init), so that a new technique cannot leave them behind."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from golflab.config.schema import ModelConfig
from golflab.model.attention import Attention
from golflab.model.gpt import GPT

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12,
                   "4090": 165e12, "3090": 71e12, "B200": 2250e12, "GH200": 989e12}


def part_of(name: str) -> str:
    if name.startswith("blocks."):
        sub = name.split(".")[2]
        return {"attn": "attention", "mlp": "mlp"}.get(sub, "block scalars")
    return {"tok_emb": "embedding", "head": "head", "value_embeds": "value embeddings",
            "registers": "registers", "skip_weights": "skip weights", "skip_gates": "skip weights",
            "resid_lambdas": "layer scalars", "x0_lambdas": "layer scalars", "smear": "smear gate",
            "parallel_post": "parallel lanes", "parallel_resid": "parallel lanes"}.get(name.split(".")[0],
                                                                                       name.split(".")[0])


def param_counts(model: nn.Module) -> OrderedDict[str, int]:
    counts: OrderedDict[str, int] = OrderedDict()
    for name, p in model.named_parameters():
        part = part_of(name)
        counts[part] = counts.get(part, 0) + p.numel()
    counts["total"] = sum(v for k, v in counts.items())
    return counts


def meta_model(cfg: ModelConfig, vocab: int) -> GPT:
    """The model as `cfg` builds it, on the meta device (shapes only)."""
    with torch.device("meta"):
        return GPT(cfg, vocab)


def flops_per_token(cfg: ModelConfig, vocab: int) -> float:
    """Training FLOPs per token: 3 x the forward's matmul FLOPs as torch's FlopCounterMode counts them on a
    meta forward of one sequence (every matrix as often as it runs: looped layers, heads, gates), except
    that each attention call's score and value products count causal (half the context) and windowed
    layers only their window."""
    model = meta_model(cfg, vocab)
    T = cfg.seq_len + cfg.num_registers
    names = {m: n for n, m in model.named_modules()}
    attn_keys = {f"GPT.{names[m]}": m for m in model.modules() if isinstance(m, Attention)}
    with torch.device("meta"):
        idx = torch.zeros(1, cfg.seq_len, dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with counter:
        model(idx, idx)
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    total = counts["Global"]
    attn = 0.0
    for key, module in attn_keys.items():
        children = sum(v for k, v in counts.items() if k.startswith(key + ".") and "." not in k[len(key) + 1:])
        core = counts.get(key, 0) - children  # q k^T and p v of every call of this layer, full context
        total -= core
        ctx = module.window if 0 < module.window < T else T
        attn += core * ctx / T / 2
    return 3.0 * (total + attn) / cfg.seq_len


def peak_flops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_FLOPS.items():
        if key in device_name:
            return value
    return None

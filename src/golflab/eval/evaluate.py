"""val_loss / val_bpb over a token split: standard (non-overlapping windows of seq_len) or sliding
(windows every `stride` tokens, each scoring only tokens not yet scored, so each token is scored
exactly once with up to seq_len tokens of context).

Both score the same targets: the first ((N - 1) // seq_len) * seq_len tokens after position 0, as
parameter-golf's scorer does; with stride == seq_len the sliding eval is exactly the standard one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from golflab.eval.bpb import BpbAccumulator, ByteTable


@dataclass
class EvalResult:
    val_loss: float
    val_bpb: float
    tokens: int
    bytes: int
    seconds: float


def eval_windows(num_tokens: int, seq_len: int, stride: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(starts, score_from): window w covers tokens[start : start + seq_len + 1] and scores its
    targets at in-window positions >= score_from[w]."""
    usable = ((num_tokens - 1) // seq_len) * seq_len
    if usable <= 0:
        raise ValueError(f"the eval split has {num_tokens} tokens, fewer than seq_len + 1 = {seq_len + 1}")
    if stride <= 0 or stride >= seq_len:
        starts = np.arange(0, usable, seq_len, dtype=np.int64)
        return starts, np.zeros_like(starts)
    ends = np.concatenate([[seq_len], np.arange(seq_len + stride, usable, stride), [usable]])
    ends = np.unique(ends)
    scored_before = np.concatenate([[0], ends[:-1]])
    starts = ends - seq_len
    score_from = np.where(starts == 0, 0, seq_len - (ends - scored_before))
    return starts.astype(np.int64), score_from.astype(np.int64)


@torch.no_grad()
def evaluate(
    nats_fn: Callable[[Tensor, Tensor], Tensor],
    tokens: Tensor,
    seq_len: int,
    table: ByteTable,
    *,
    stride: int = 0,
    batch_seqs: int = 64,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    order: np.ndarray | None = None,
) -> EvalResult:
    """nats_fn(x, y) -> per-token nats (B*T,); val_bpb counts target bytes with `table`.

    `order` permutes this rank's windows (the result does not depend on it): the trusted harness sends
    windows in a random order, so a model shown a batch cannot tell which window follows which."""
    t0 = time.perf_counter()
    device = device or torch.device("cpu")
    starts, score_from = eval_windows(tokens.numel(), seq_len, stride)
    lo, hi = len(starts) * rank // world_size, len(starts) * (rank + 1) // world_size
    starts, score_from = starts[lo:hi], score_from[lo:hi]
    if order is not None:
        starts, score_from = starts[order], score_from[order]
    toks = tokens.to(device=device, dtype=torch.int64)
    offsets = torch.arange(seq_len + 1, device=device)
    positions = torch.arange(seq_len, device=device)
    table = table.to(device)
    acc = BpbAccumulator(device)
    for b in range(0, len(starts), batch_seqs):
        s = torch.as_tensor(starts[b : b + batch_seqs], device=device)
        f = torch.as_tensor(score_from[b : b + batch_seqs], device=device)
        real = s.numel()
        if real < batch_seqs:  # pad to a fixed batch shape (no recompiles); padded rows score nothing
            s = torch.cat([s, s[-1:].expand(batch_seqs - real)])
            f = torch.cat([f, torch.full((batch_seqs - real,), seq_len, device=device, dtype=f.dtype)])
        window = toks[s[:, None] + offsets]
        x, y = window[:, :-1], window[:, 1:]
        with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            per_tok = nats_fn(x, y).view(x.shape).float()
        mask = positions[None, :] >= f[:, None]
        if bool(mask.all()):
            acc.add(per_tok, y, table, prev=x)
        else:
            acc.add(per_tok[mask], y[mask], table, prev=x[mask])
    if world_size > 1:
        acc.all_reduce()
    val_loss, bpb = acc.result()
    return EvalResult(val_loss=val_loss, val_bpb=bpb, tokens=acc.tokens, bytes=acc.bytes,
                      seconds=time.perf_counter() - t0)

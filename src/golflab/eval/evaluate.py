"""val_loss / val_bpb over a token split: standard (non-overlapping windows of seq_len) or sliding
(windows every `stride` tokens, each scoring only tokens not yet scored, so each token is scored
exactly once with up to seq_len tokens of context).

Both score the same targets: the first ((N - 1) // seq_len) * seq_len tokens after position 0, as
parameter-golf's scorer does; with stride == seq_len the sliding eval is exactly the standard one.
`max_tokens` caps the targets scored to a fixed number of whole rows.

packing="best_fit" scores rows built like the best-fit training loader instead (autoresearch's
evaluate_bpb): max_tokens // seq_len rows (or as many rows as the standard eval) of seq_len + 1 tokens,
each starting with BOS, packed from the split as one cyclic stream; every target of a row is scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from golflab.config.schema import RunConfig
from golflab.data.loader import BestFitPacker
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
    targets at in-window positions >= score_from[w]. A stride of 0 (or >= seq_len) is the standard eval."""
    usable = ((num_tokens - 1) // seq_len) * seq_len
    if usable <= 0:
        raise ValueError(f"the eval split has {num_tokens} tokens, fewer than seq_len + 1 = {seq_len + 1}")
    if not 0 < stride < seq_len:
        stride = seq_len
    ends = np.append(np.arange(seq_len, usable, stride, dtype=np.int64), usable)  # a window scores up to its end
    return ends - seq_len, seq_len - np.diff(ends, prepend=0)  # from where the window before it stopped


def best_fit_rows(tokens: np.ndarray, n_rows: int, seq_len: int, bos_id: int, buffer_docs: int = 1000) -> np.ndarray:
    """(n_rows, seq_len + 1) rows best-fit packed from `tokens` (a cyclic stream of BOS-started documents)."""
    total = len(tokens)
    bos = np.flatnonzero(tokens == bos_id)
    if bos.size == 0:
        raise ValueError(f"eval.packing='best_fit' needs BOS tokens (id {bos_id}) in the eval split, found none")

    def read(pos: int, n: int) -> np.ndarray:
        return tokens[(pos + np.arange(n)) % total]

    def next_bos(pos: int) -> int:
        i = int(np.searchsorted(bos, pos % total))
        return int(bos[i]) if i < bos.size else int(bos[0])

    packer = BestFitPacker(read, next_bos, total, 0, buffer_docs)
    return np.stack([packer.row(seq_len + 1) for _ in range(n_rows)]) if n_rows else np.empty((0, seq_len + 1))


def eval_options(cfg: RunConfig, bos_id: int | None) -> dict:
    """The keyword arguments of `evaluate` that come from the config (besides stride and max_tokens)."""
    return {"packing": cfg.eval.packing, "bos_id": bos_id, "zero_byte_nats": cfg.eval.zero_byte_nats,
            "pack_buffer_docs": cfg.data.pack_buffer_docs}


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
    max_tokens: int = 0,
    packing: str = "stream",
    bos_id: int | None = None,
    zero_byte_nats: bool = True,
    pack_buffer_docs: int = 1000,
    order: np.ndarray | None = None,
) -> EvalResult:
    """nats_fn(x, y) -> per-token nats (B*T,); val_bpb counts target bytes with `table`.

    `order` permutes this rank's windows (the result does not depend on it): the trusted harness sends
    windows in a random order, so a model shown a batch cannot tell which window follows which.
    Score-first test-time training scores the same windows through score_windows (golflab.eval.ttt)."""
    t0 = time.perf_counter()
    device = device or torch.device("cpu")
    if packing == "best_fit":
        return _ev_rows(nats_fn, tokens, seq_len, table, t0, stride=stride, batch_seqs=batch_seqs, rank=rank,
                              world_size=world_size, device=device, autocast_dtype=autocast_dtype,
                              max_tokens=max_tokens, bos_id=bos_id, zero_byte_nats=zero_byte_nats,
                              pack_buffer_docs=pack_buffer_docs)
    if packing != "stream":
        raise ValueError(f"eval.packing must be 'stream' or 'best_fit', got {packing!r}")
    if max_tokens > 0:
        tokens = tokens[: max(max_tokens, seq_len) + 1]
    starts, score_from = eval_windows(tokens.numel(), seq_len, stride)
    toks = tokens.to(device=device, dtype=torch.int64)
    table = table.to(device)
    acc = BpbAccumulator(device, zero_byte_nats)
    mine = slice(len(starts) * rank // world_size, len(starts) * (rank + 1) // world_size)
    starts, score_from = starts[mine], score_from[mine]
    if order is not None:
        starts, score_from = starts[order], score_from[order]
    batch_seqs = max(1, min(batch_seqs, len(starts)))  # a small split is not padded up to a large batch
    score_windows(acc, nats_fn, toks, starts, score_from, seq_len, table, batch_seqs, autocast_dtype)
    return eval_result(acc, world_size, t0)


def score_windows(acc: BpbAccumulator, nats_fn, toks: Tensor, starts: np.ndarray, score_from: np.ndarray, seq_len: int,
              table: ByteTable, batch_seqs: int, autocast_dtype: torch.dtype | None) -> None:
    """Add the scored targets of windows (starts, score_from) to `acc`, batch_seqs windows a forward
    (a last partial batch is padded to that shape, so a compiled model does not recompile)."""
    device = toks.device
    pad = -len(starts) % batch_seqs  # padded windows repeat the last one and score nothing
    starts = torch.as_tensor(np.pad(starts, (0, pad), mode="edge"), device=device)
    score_from = torch.as_tensor(np.pad(score_from, (0, pad), constant_values=seq_len), device=device)
    windows = toks.unfold(0, seq_len + 1, 1)  # windows[s] = toks[s : s + seq_len + 1]
    positions = torch.arange(seq_len, device=device)
    for b in range(0, len(starts), batch_seqs):
        window = windows[starts[b : b + batch_seqs]]
        x, y = window[:, :-1], window[:, 1:]
        with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            per_tok = nats_fn(x, y).view(x.shape).float()
        mask = positions >= score_from[b : b + batch_seqs, None]
        acc.add(per_tok[mask], y[mask], table, prev=x[mask])


def eval_result(acc: BpbAccumulator, world_size: int, t0: float) -> EvalResult:
    if world_size > 1:
        acc.all_reduce()
    val_loss, bpb = acc.result()
    return EvalResult(val_loss=val_loss, val_bpb=bpb, tokens=acc.tokens, bytes=acc.bytes,
                      seconds=time.perf_counter() - t0)


def _ev_rows(nats_fn, tokens: Tensor, seq_len: int, table: ByteTable, t0: float, *, stride: int, batch_seqs: int,
                   rank: int, world_size: int, device: torch.device, autocast_dtype: torch.dtype | None,
                   max_tokens: int, bos_id: int | None, zero_byte_nats: bool, pack_buffer_docs: int) -> EvalResult:
    """Score best-fit packed rows in full (autoresearch's evaluate_bpb)."""
    if bos_id is None:
        raise ValueError("eval.packing='best_fit' needs the tokenizer's BOS id")
    if 0 < stride < seq_len:
        raise ValueError("eval.packing='best_fit' scores whole rows; a sliding stride does not apply (set eval.stride=0)")
    n_rows = max_tokens // seq_len if max_tokens > 0 else (tokens.numel() - 1) // seq_len
    rows = best_fit_rows(tokens.numpy(), n_rows, seq_len, bos_id, pack_buffer_docs)
    lo, hi = n_rows * rank // world_size, n_rows * (rank + 1) // world_size
    mine = torch.from_numpy(rows[lo:hi].astype(np.int64))
    batch_seqs = max(1, min(batch_seqs, mine.size(0)))  # a small split is not padded up to a large batch
    table = table.to(device)
    acc = BpbAccumulator(device, zero_byte_nats)
    for b in range(0, mine.size(0), batch_seqs):
        window = mine[b : b + batch_seqs]
        real = window.size(0)
        if real < batch_seqs:  # pad to a fixed batch shape (no recompiles); padded rows score nothing
            window = torch.cat([window, window[-1:].expand(batch_seqs - real, -1)])
        window = window.to(device)
        x, y = window[:, :-1], window[:, 1:]
        with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            per_tok = nats_fn(x, y).view(x.shape).float()
        acc.add(per_tok[:real], y[:real], table, prev=x[:real])
    return eval_result(acc, world_size, t0)

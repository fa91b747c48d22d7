"""Legal score-first test-time training (TTT): adapt the model to the eval split while scoring it.

The challenge allows training on val tokens only after they are scored: no token may be scored by a
model that any update has shown it (issue #1017 of openai/parameter-golf, the records' "score-first"
rule; docs/eval.md). The split's positions are cut into chunks of `chunk_tokens`; for each chunk in
order the windows whose first scored position falls in it are scored (by the caller's `score`, the
ordinary standard or sliding eval, under no_grad), and only then is the model trained on the chunk's
whole rows of seq_len + 1 tokens (SGD with momentum, cosine LR over the chunks, `epochs` passes). The
last chunk is scored and never trained on. Every update checks that the tokens it touches were scored
already (`_tt_check_scored`), so a change that broke the order fails loudly instead of inflating the score.

The model's weights are restored afterwards, so the caller's model is unchanged. Portable core
(stdlib, numpy, torch, the config schema, golflab.eval); private helpers carry a `_tt_` prefix. The eval
calls it only when `eval.ttt.enabled`, so the exported script of any other config leaves it out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from golflab.config.loader import check_ttt_config
from golflab.config.schema import TTTConfig
from golflab.eval.bpb import BpbAccumulator, ByteTable
from golflab.eval.evaluate import EvalResult, eval_result, eval_windows, score_windows


def ttt_chunks(starts: np.ndarray, score_from: np.ndarray, seq_len: int, chunk_tokens: int) -> list[np.ndarray]:
    """Window indices per chunk: window w belongs to the chunk of its first scored position."""
    first = starts + score_from
    last = int(starts[-1]) + seq_len  # positions [0, last) are scored in all
    num_chunks = -(-last // chunk_tokens)
    which = np.minimum(first // chunk_tokens, num_chunks - 1)
    return [np.flatnonzero(which == c) for c in range(num_chunks)]


def _tt_check_scored(row_starts: Tensor, seq_len: int, scored_end: int) -> None:
    """A row of positions [r, r + seq_len) uses tokens r..r + seq_len, all of which must be scored already:
    the positions scored so far are [0, scored_end), whose targets are tokens 1..scored_end."""
    if row_starts.numel() and int(row_starts.max()) + seq_len > scored_end:
        raise RuntimeError(f"TTT order violated: an update would use tokens up to {int(row_starts.max()) + seq_len}, "
                           f"but only tokens up to {scored_end} are scored")


def _tt_trainable(model: torch.nn.Module, freeze_blocks: int) -> list[Tensor]:
    frozen = tuple(f"blocks.{i}." for i in range(freeze_blocks))
    return [p for name, p in model.named_parameters() if p.is_floating_point() and not name.startswith(frozen)]


def score_first_ttt(
    model: torch.nn.Module,
    score: Callable[[np.ndarray, np.ndarray], None],
    tokens: Tensor,
    starts: np.ndarray,
    score_from: np.ndarray,
    seq_len: int,
    ttt: TTTConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    autocast_dtype: torch.dtype | None = None,
) -> None:
    """Score all windows (`score(starts, score_from)` accumulates this rank's share) chunk by chunk,
    training `model` on each chunk after it is scored. `tokens` is the split on the model's device."""
    check_ttt_config(ttt, seq_len)
    device = tokens.device
    chunks = ttt_chunks(starts, score_from, seq_len, ttt.chunk_tokens)
    params = _tt_trainable(model, ttt.freeze_blocks)
    saved = [p.detach().clone() for p in params]
    grad_flags = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    opt = torch.optim.SGD(params, lr=ttt.lr, momentum=ttt.momentum)
    offsets = torch.arange(seq_len + 1, device=device)
    local_rows = max(1, ttt.batch_seqs // world_size)
    scored_end = 0
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        for c, idx in enumerate(chunks):
            model.eval()
            mine = idx[len(idx) * rank // world_size: len(idx) * (rank + 1) // world_size]
            with torch.no_grad():
                score(starts[mine], score_from[mine])
            if idx.size:  # windows are in order: positions [0, scored_end) are scored now, on every rank
                scored_end = max(scored_end, int(starts[idx].max()) + seq_len)
            if c == len(chunks) - 1 or ttt.epochs == 0 or ttt.lr == 0 or not params:
                continue
            lo = c * ttt.chunk_tokens
            n_rows = max(0, (min((c + 1) * ttt.chunk_tokens, scored_end) - lo) // seq_len)
            rows = lo + seq_len * torch.arange(n_rows, device=device)
            rows = rows[n_rows * rank // world_size: n_rows * (rank + 1) // world_size]
            _tt_check_scored(rows, seq_len, scored_end)
            per_rank = -(-n_rows // world_size)
            steps = -(-per_rank // local_rows)  # the same on every rank, so the all-reduces pair up
            for group in opt.param_groups:  # cosine decay over the chunks, as the records do
                group["lr"] = ttt.lr * 0.5 * (1.0 + math.cos(math.pi * c / max(len(chunks) - 1, 1)))
            for p in params:
                p.requires_grad_(True)
            model.train()
            with torch.enable_grad():
                for _ in range(ttt.epochs):
                    for b in range(0, steps * local_rows, local_rows):
                        _tt_step(model, opt, params, tokens[rows[b: b + local_rows, None] + offsets], ttt,
                                 world_size, autocast_dtype)
            for p in params:
                p.requires_grad_(False)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        for p, flag in grad_flags.items():
            p.requires_grad_(flag)
        model.train(was_training)


def _tt_step(model: torch.nn.Module, opt: torch.optim.Optimizer, params: list[Tensor], window: Tensor,
             ttt: TTTConfig, world_size: int, autocast_dtype: torch.dtype | None) -> None:
    """One SGD step on rows of seq_len + 1 tokens; every rank steps (with an empty share it adds zeros),
    so the all-reduce pairs up and the ranks' weights stay identical."""
    opt.zero_grad(set_to_none=False)
    if window.size(0):
        with torch.autocast(window.device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            loss = model(window[:, :-1], window[:, 1:])
        loss.backward()
    if world_size > 1:
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad)  # a sum (gloo has no AVG), then the mean
            p.grad.div_(world_size)
    if ttt.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, ttt.grad_clip)
    opt.step()


def ttt_evaluate(
    model: torch.nn.Module,
    nats_fn: Callable[[Tensor, Tensor], Tensor],
    tokens: Tensor,
    seq_len: int,
    table: ByteTable,
    ttt: TTTConfig,
    *,
    stride: int = 0,
    batch_seqs: int = 64,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    zero_byte_nats: bool = True,
) -> EvalResult:
    """val_loss / val_bpb of the standard (stride 0) or sliding eval, with score-first TTT: the same
    windows and targets as golflab.eval.evaluate; nats_fn runs `model` (or a compiled view of it), which
    is trained between chunks and restored at the end. EvalResult.seconds includes the training."""
    t0 = time.perf_counter()
    device = device or torch.device("cpu")
    starts, score_from = eval_windows(tokens.numel(), seq_len, stride)
    toks = tokens.to(device=device, dtype=torch.int64)
    table = table.to(device)
    acc = BpbAccumulator(device, zero_byte_nats)
    batch_seqs = max(1, min(batch_seqs, -(-len(starts) // world_size)))  # one shape for every chunk

    def score(s: np.ndarray, f: np.ndarray) -> None:
        score_windows(acc, nats_fn, toks, s, f, seq_len, table, batch_seqs, autocast_dtype)

    score_first_ttt(model, score, toks, starts, score_from, seq_len, ttt, rank=rank, world_size=world_size,
                    autocast_dtype=autocast_dtype)
    return eval_result(acc, world_size, t0)

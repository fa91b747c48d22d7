"""Standard and sliding-window evaluation: coverage, equivalence, and the bits-per-byte arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golflab.eval.bpb import ByteTable
from golflab.eval.evaluate import eval_windows, evaluate


def scored_targets(n_tokens: int, seq: int, stride: int) -> list[int]:
    starts, score_from = eval_windows(n_tokens, seq, stride)
    out: list[int] = []
    for s, f in zip(starts.tolist(), score_from.tolist(), strict=True):
        out += [s + 1 + p for p in range(f, seq)]  # target index of in-window position p
    return out


@pytest.mark.parametrize(("n", "seq", "stride"), [(1000, 64, 16), (1000, 64, 64), (1000, 64, 0), (1025, 128, 64),
                                                  (777, 32, 5), (65, 64, 1)])
def test_every_target_is_scored_exactly_once_with_full_context_when_available(n, seq, stride):
    targets = scored_targets(n, seq, stride)
    usable = ((n - 1) // seq) * seq
    assert sorted(targets) == list(range(1, usable + 1))  # each target once, none beyond the usable span
    starts, score_from = eval_windows(n, seq, stride)
    assert (starts >= 0).all() and (starts + seq <= usable).all()
    if 0 < stride < seq:  # after the first window, every scored token sees at least seq - stride tokens
        assert (score_from[1:] >= seq - stride).all()


def test_stride_equal_to_seq_len_is_the_standard_eval():
    a, b = eval_windows(5000, 128, 0), eval_windows(5000, 128, 128)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


class ContextModel(torch.nn.Module):
    """A fixed 'model' whose loss falls with the position in the window (more context, lower loss)."""

    def forward(self, x, y, reduction="none"):
        pos = torch.arange(x.size(1), dtype=torch.float32)[None, :]
        return ((1.0 + y.float() / 50.0) / (1.0 + pos)).reshape(-1)


def test_sliding_eval_values():
    vocab, seq = 50, 32
    tokens = torch.randint(0, vocab, (2001,), generator=torch.Generator().manual_seed(1))
    table = ByteTable(np.full(vocab, 2), np.zeros(vocab, dtype=bool), np.zeros(vocab, dtype=bool))
    model = ContextModel()
    std = evaluate(model, tokens, seq, table, batch_seqs=7)
    same = evaluate(model, tokens, seq, table, stride=seq, batch_seqs=5)
    slide = evaluate(model, tokens, seq, table, stride=8, batch_seqs=9)
    assert std.val_loss == pytest.approx(same.val_loss, rel=1e-9) and std.tokens == same.tokens == slide.tokens
    assert slide.val_loss < std.val_loss  # more context per scored token helps this model
    assert std.val_bpb == pytest.approx(std.val_loss / math.log(2) / 2.0)  # 2 bytes per token
    # the same numbers computed by hand for the standard windows
    usable = (2000 // seq) * seq
    x, y = tokens[:usable].view(-1, seq), tokens[1 : usable + 1].view(-1, seq)
    assert std.val_loss == pytest.approx(model(x, y).mean().item(), rel=1e-6)

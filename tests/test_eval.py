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


# ---- fixed-size and best-fit evaluation (autoresearch prepare.py evaluate_bpb, lines 343-365) ----
BOS = 1


class RecordingModel(ContextModel):
    def __init__(self):
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, y, reduction="none"):
        self.inputs.append(x.clone())
        return super().forward(x, y, reduction)


def _doc_stream(n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    toks = rng.integers(2, 50, size=n)
    toks[rng.random(n) < 0.08] = BOS
    toks[0] = BOS
    return torch.from_numpy(toks.astype(np.int32))


def test_max_tokens_caps_the_standard_and_sliding_eval():
    tokens = torch.randint(0, 50, (5001,), generator=torch.Generator().manual_seed(2))
    table = ByteTable(np.full(50, 2), np.zeros(50, dtype=bool), np.zeros(50, dtype=bool))
    full = evaluate(ContextModel(), tokens, 32, table)
    capped = evaluate(ContextModel(), tokens, 32, table, max_tokens=32 * 40 + 7)
    same = evaluate(ContextModel(), tokens[: 32 * 40 + 1], 32, table)
    assert capped.tokens == 32 * 40 < full.tokens and capped.val_loss == same.val_loss
    assert evaluate(ContextModel(), tokens, 32, table, stride=8, max_tokens=32 * 40).tokens == 32 * 40


@pytest.mark.parametrize("world", [1, 2])
def test_best_fit_eval_scores_whole_bos_rows_and_skips_zero_byte_targets(world):
    from golflab.eval.evaluate import best_fit_rows

    seq, n_rows = 16, 12
    tokens = _doc_stream(3000)
    base = np.full(50, 3)
    base[BOS] = 0  # BOS is a 0-byte special token, as in autoresearch's token_bytes
    table = ByteTable(base, np.zeros(50, dtype=bool), np.eye(50, dtype=bool)[BOS])
    rows = best_fit_rows(tokens.numpy(), n_rows, seq, BOS, buffer_docs=30)
    assert rows.shape == (n_rows, seq + 1) and (rows[:, 0] == BOS).all()
    per_tok = ContextModel()(torch.from_numpy(rows[:, :-1]), torch.from_numpy(rows[:, 1:])).view(n_rows, seq)
    y = torch.from_numpy(rows[:, 1:])
    keep = y != BOS
    nats_total, count, nbytes = float(per_tok[keep].double().sum()), int(keep.sum()), int(3 * keep.sum())
    results = []
    for rank in range(world):
        model = RecordingModel()
        results.append(evaluate(model, tokens, seq, table, batch_seqs=5, rank=rank, world_size=world,
                                max_tokens=n_rows * seq, packing="best_fit", bos_id=BOS, zero_byte_nats=False,
                                pack_buffer_docs=30))
        assert all((x[:, 0] == BOS).all() for x in model.inputs)
    assert sum(r.tokens for r in results) == count and sum(r.bytes for r in results) == nbytes
    if world == 1:
        assert results[0].val_bpb == pytest.approx(nats_total / math.log(2) / nbytes, rel=1e-12)
        with_bos = evaluate(ContextModel(), tokens, seq, table, max_tokens=n_rows * seq, packing="best_fit",
                            bos_id=BOS, pack_buffer_docs=30)
        assert with_bos.tokens == n_rows * seq and with_bos.val_bpb > results[0].val_bpb  # BOS nats now count
    with pytest.raises(ValueError, match="stride"):
        evaluate(ContextModel(), tokens, seq, table, stride=4, packing="best_fit", bos_id=BOS)
    with pytest.raises(ValueError, match="BOS id"):
        evaluate(ContextModel(), tokens, seq, table, packing="best_fit")


def test_tiktoken_bytes_the_autoresearch_way():
    class FakeEncoding:  # ids 0-2: "a", the first byte of "é", a special token
        n_vocab = 3
        special_tokens_set = {"<|reserved_0|>"}

        def encode_single_token(self, s):
            return 2

        def decode_single_token_bytes(self, i):
            return [b"a", b"\xc3"][i]

    raw = ByteTable.from_tiktoken(FakeEncoding())
    decoded = ByteTable.from_tiktoken(FakeEncoding(), decoded=True)
    # prepare.py train_tokenizer: len(enc.decode([id]).encode("utf-8")), U+FFFD (3 bytes) for a partial character
    assert raw.base_bytes.tolist() == [1, 1, 0] and decoded.base_bytes.tolist() == [1, 3, 0]


def test_a_small_split_is_not_padded_up_to_a_large_eval_batch():
    """Eval batches are sized to the split: 4 windows with batch_seqs 512 run as one batch of 4 rows."""
    model, seen = ContextModel(), []

    def nats(x, y):
        seen.append(x.shape[0])
        return model(x, y)

    tokens = torch.randint(0, 256, (4 * 64 + 1,))
    table = ByteTable(np.ones(256, dtype=np.int64), np.zeros(256, dtype=bool), np.zeros(256, dtype=bool))
    big = evaluate(nats, tokens, 64, table, batch_seqs=512)
    assert seen == [4]
    small = evaluate(lambda x, y: model(x, y), tokens, 64, table, batch_seqs=3)
    assert math.isclose(big.val_bpb, small.val_bpb, rel_tol=1e-12) and big.tokens == small.tokens == 4 * 64

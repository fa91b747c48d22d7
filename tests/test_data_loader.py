"""TokenLoader: parameter-golf equivalence, rank disjointness, wrap-around, BOS alignment, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golflab.data.loader import TokenLoader
from golflab.data.shards import write_shard
from golflab.errors import DataError

BOS = 1


def _shards(tmp_path, sizes, seed=0, bos_every=None):
    """Shards of random tokens; with bos_every, documents of random length each start with BOS."""
    rng = np.random.default_rng(seed)
    files, parts = [], []
    for i, n in enumerate(sizes):
        toks = rng.integers(2, 500, size=n)
        if bos_every:
            toks[rng.random(n) < 1.0 / bos_every] = BOS
        files.append(write_shard(tmp_path / f"train_{i:06d}.bin", toks))
        parts.append(toks)
    return files, np.concatenate(parts)


def _ref_sequential(stream, calls, world, local, seq):
    """Straightforward reading of the concatenated stream, parameter-golf style."""
    pos, out = 0, []
    for _ in range(calls):
        span = local + 1
        idx = (pos + np.arange(world * span)) % len(stream)
        chunk = stream[idx]
        pos = (pos + world * span) % len(stream)
        used = (local // seq) * seq
        out.append([(chunk[r * span : r * span + used], chunk[r * span + 1 : r * span + used + 1]) for r in range(world)])
    return out


@pytest.mark.parametrize("world", [1, 3])
def test_sequential_equals_reference_across_shards_and_wrap(tmp_path, world):
    files, stream = _shards(tmp_path, [37, 0, 101, 64])  # an empty shard in the middle
    local, seq = 20, 8  # local not a multiple of seq: the tail of the span is dropped
    calls = 12  # 12 * world * 21 tokens > 202: wraps around (several times for world 3)
    loaders = [TokenLoader(list(reversed(files)), rank=r, world_size=world) for r in range(world)]
    ref = _ref_sequential(stream, calls, world, local, seq)
    for c in range(calls):
        for r in range(world):
            x, y = loaders[r].next_batch(local, seq)
            assert x.dtype == torch.int64 and x.shape == (2, 8)
            assert x.flatten().tolist() == ref[c][r][0].tolist()
            assert y.flatten().tolist() == ref[c][r][1].tolist()


def test_ranks_disjoint_and_cover_the_stream(tmp_path):
    files, stream = _shards(tmp_path, [50, 70])
    world, local, seq = 4, 9, 3
    loaders = [TokenLoader(files, rank=r, world_size=world) for r in range(world)]
    positions = []
    base = 0
    for _ in range(3):
        for r in range(world):
            x, _ = loaders[r].next_batch(local, seq)
            start = base + r * (local + 1)
            assert x.flatten().tolist() == stream[start : start + local].tolist()
            positions.extend(range(start, start + local + 1))
        base += world * (local + 1)
    assert positions == list(range(base))  # disjoint spans, no gap


def test_shuffled_deterministic_and_seed_dependent(tmp_path):
    files, _ = _shards(tmp_path, [40] * 6)

    def take(seed, rank=0, world=1):
        ld = TokenLoader(files, rank=rank, world_size=world, seed=seed, order="shuffled")
        return [ld.next_batch(16, 4)[0] for _ in range(5)]

    a, b, c = take(3), take(3), take(4)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))
    ld = TokenLoader(files, seed=3, order="shuffled")
    assert sorted(ld.files) == sorted(files)
    assert (ld.files, ld.state_dict()["pos"]) != (sorted(files), 0)
    # ranks of one shuffled run read disjoint consecutive spans of the same stream
    r0 = TokenLoader(files, rank=0, world_size=2, seed=3, order="shuffled")
    r1 = TokenLoader(files, rank=1, world_size=2, seed=3, order="shuffled")
    one = TokenLoader(files, rank=0, world_size=1, seed=3, order="shuffled")
    x0, _ = r0.next_batch(16, 4)
    x1, _ = r1.next_batch(16, 4)
    whole = one._read(one.state_dict()["pos"], 34)
    assert x0.flatten().tolist() == whole[:16].tolist()
    assert x1.flatten().tolist() == whole[17:33].tolist()


def test_align_bos_every_sequence_starts_at_bos(tmp_path):
    files, stream = _shards(tmp_path, [300, 5, 400], bos_every=25)
    world, seq = 2, 16
    loaders = [TokenLoader(files, rank=r, world_size=world, align_bos=True, bos_id=BOS) for r in range(world)]
    seen_starts = []
    for _ in range(30):  # enough to wrap around
        for ld in loaders:
            x, y = ld.next_batch(48, seq)
            assert x.shape == (3, seq)
            assert (x[:, 0] == BOS).all()
            assert torch.equal(x[:, 1:], y[:, :-1])
            seen_starts.extend(x[:, :4].tolist())
    # each sequence is a real window of the cyclic stream
    cyc = np.concatenate([stream, stream])
    text = cyc.tolist()
    for row in seen_starts[:20]:
        assert any(text[i : i + 4] == row for i in range(len(stream)))


def test_align_bos_without_any_bos_is_an_error(tmp_path):
    files, _ = _shards(tmp_path, [50])
    ld = TokenLoader(files, align_bos=True, bos_id=BOS)
    with pytest.raises(DataError, match="no BOS token"):
        ld.next_batch(8, 4)
    with pytest.raises(DataError, match="BOS id"):
        TokenLoader(files, align_bos=True, bos_id=None)


@pytest.mark.parametrize("kw", [{}, {"order": "shuffled", "seed": 5}, {"align_bos": True, "bos_id": BOS}])
def test_resume_gives_identical_batches(tmp_path, kw):
    files, _ = _shards(tmp_path, [90, 60, 120], bos_every=10)
    a = TokenLoader(files, rank=1, world_size=2, **kw)
    for _ in range(4):
        a.next_batch(24, 8)
    state = a.state_dict()
    expected = [a.next_batch(24, 8) for _ in range(6)]
    b = TokenLoader(files, rank=1, world_size=2, **kw)
    b.load_state_dict(state)
    got = [b.next_batch(24, 8) for _ in range(6)]
    for (ex, ey), (gx, gy) in zip(expected, got, strict=True):
        assert torch.equal(ex, gx) and torch.equal(ey, gy)


def test_resume_rejects_other_shards(tmp_path):
    files, _ = _shards(tmp_path, [90, 60])
    state = TokenLoader(files).state_dict()
    with pytest.raises(DataError, match="files"):
        TokenLoader(files[:1]).load_state_dict(state)


def test_construction_validates_shards(tmp_path):
    files, _ = _shards(tmp_path, [10, 10])
    files[1].write_bytes(b"\0" * 2000)
    with pytest.raises(DataError, match=r"train_000001\.bin has magic 0"):
        TokenLoader(files)
    with pytest.raises(DataError, match="no shard files"):
        TokenLoader([])


def test_uses_memmap_not_loaded_arrays(tmp_path):
    files, _ = _shards(tmp_path, [100, 100])
    ld = TokenLoader(files)
    ld.next_batch(150, 10)
    assert ld._maps and all(isinstance(m, np.memmap) for m in ld._maps.values())


def _ref_best_fit_rows(stream, n_rows, capacity, buffer_size):
    """autoresearch prepare.py make_dataloader (lines 276-337), written over a list of documents: the
    stream cut at every BOS (from the first one, cyclically), topped up 128 documents at a time."""
    bos = np.flatnonzero(stream == BOS)
    docs_cycle = [stream[s:e].tolist() for s, e in zip(bos, [*bos[1:], len(stream)], strict=True)]
    if bos[0] > 0:  # the tokens before the first BOS belong to the last document (cyclic stream)
        docs_cycle[-1] = docs_cycle[-1] + stream[: bos[0]].tolist()
    feed = (docs_cycle[i % len(docs_cycle)] for i in range(10**9))
    doc_buffer, rows = [], []
    for _ in range(n_rows):
        row, pos = [], 0
        while pos < capacity:
            while len(doc_buffer) < buffer_size:
                doc_buffer.extend(next(feed) for _ in range(128))
            remaining = capacity - pos
            best_idx, best_len = -1, 0
            for i, doc in enumerate(doc_buffer):
                if len(doc) <= remaining and len(doc) > best_len:
                    best_idx, best_len = i, len(doc)
            if best_idx >= 0:
                doc = doc_buffer.pop(best_idx)
                row += doc
                pos += len(doc)
            else:
                shortest = min(range(len(doc_buffer)), key=lambda i: len(doc_buffer[i]))
                row += doc_buffer.pop(shortest)[:remaining]
                pos += remaining
        rows.append(row)
    return rows


@pytest.mark.parametrize("world", [1, 2])
def test_best_fit_packing_equals_autoresearchs_loader(tmp_path, world):
    files, stream = _shards(tmp_path, [700, 3, 900], bos_every=12, seed=4)
    seq, n_seq, calls, buffer = 16, 3, 12, 40
    loaders = [TokenLoader(files, rank=r, world_size=world, bos_id=BOS, packing="best_fit", pack_buffer_docs=buffer)
               for r in range(world)]
    ref = _ref_best_fit_rows(stream, calls * world * n_seq, seq + 1, buffer)
    for c in range(calls):
        for r, ld in enumerate(loaders):
            x, y = ld.next_batch(n_seq * seq, seq)
            assert (x[:, 0] == BOS).all()
            for j in range(n_seq):
                row = ref[(c * world + r) * n_seq + j]
                assert x[j].tolist() == row[:-1] and y[j].tolist() == row[1:]


def test_best_fit_resume_and_errors(tmp_path):
    files, _ = _shards(tmp_path, [400, 300], bos_every=9)
    a = TokenLoader(files, bos_id=BOS, packing="best_fit", pack_buffer_docs=20)
    for _ in range(3):
        a.next_batch(32, 8)
    state = a.state_dict()
    expected = [a.next_batch(32, 8) for _ in range(4)]
    b = TokenLoader(files, bos_id=BOS, packing="best_fit", pack_buffer_docs=20)
    b.load_state_dict(state)
    for (ex, ey), (gx, gy) in zip(expected, [b.next_batch(32, 8) for _ in range(4)], strict=True):
        assert torch.equal(ex, gx) and torch.equal(ey, gy)
    with pytest.raises(DataError, match="packing"):
        TokenLoader(files).load_state_dict(state)
    with pytest.raises(DataError, match="BOS id"):
        TokenLoader(files, packing="best_fit")
    no_bos = tmp_path / "no_bos"
    no_bos.mkdir()
    with pytest.raises(DataError, match="no BOS token"):
        TokenLoader(_shards(no_bos, [50])[0], bos_id=BOS, packing="best_fit").next_batch(8, 4)

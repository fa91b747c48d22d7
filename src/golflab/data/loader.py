"""TokenLoader: deterministic, resumable, multi-rank batches from memory-mapped token shards.

The shards form one cyclic stream (sorted file order, or a seed-permuted order). Every call to
`next_batch` consumes one global chunk of the stream; rank r gets the r-th disjoint part of it.

* "sequential" reproduces parameter-golf's loader exactly: each call takes world_size *
  (local_tokens + 1) contiguous tokens, rank r gets span r, x = span[:-1] and y = span[1:] (cut to a
  multiple of seq_len), and the stream wraps from the end of the last shard to the start of the first.
* "shuffled" permutes the shard order and starts the stream at an offset, both drawn from the seed
  (the same on every rank, so spans stay disjoint).
* align_bos=True makes every sequence start at a BOS token: the global chunk is world_size *
  (local_tokens // seq_len) sequences, each starting at the first BOS at or after the end of the
  previous sequence's inputs (the tail of a document longer than seq_len is skipped). Sequence k goes
  to rank k // n_seq.
* packing="best_fit" reproduces autoresearch's make_dataloader (prepare.py): every row of seq_len + 1
  tokens starts with BOS and is filled with whole documents, each time the longest one in a buffer of
  `pack_buffer_docs` documents that still fits; when none fits, the shortest is cropped to fill the row
  (its rest is dropped). The buffer is topped up in stream order, REFILL_DOCS documents at a time,
  whenever it holds fewer than pack_buffer_docs. Row k of each global chunk goes to rank k // n_seq.
  BestFitPacker does the packing over any cyclic token stream (the eval uses it on the val split).

Shards are opened with np.memmap and only the requested spans are read. Portable core: standard
library, numpy and torch only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from golflab.data.shards import open_shard, read_header
from golflab.errors import DataError

_BOS_CACHE_SHARDS = 4  # BOS-position arrays kept in memory (one per recently used shard)
REFILL_DOCS = 128  # documents added per buffer top-up (autoresearch: tokenizer_batch_size=128)


class BestFitPacker:
    """Best-fit packing of BOS-started documents into rows, over a cyclic stream of `total` tokens.

    read(pos, n) returns n tokens from stream position pos; next_bos(pos) the position of the first BOS
    at or after pos (cyclically). A document runs from a BOS to the next one. The state is the position
    of the next unread document and the buffered documents as (start, length), in stream order.
    """

    def __init__(self, read: Callable[[int, int], np.ndarray], next_bos: Callable[[int], int], total: int,
                 start: int = 0, buffer_docs: int = 1000) -> None:
        if buffer_docs <= 0:
            raise DataError(f"data.pack_buffer_docs must be positive, got {buffer_docs}")
        self._read, self._next_bos, self.total, self.buffer_docs = read, next_bos, total, buffer_docs
        self._start = start
        self.doc_pos: int | None = None  # found lazily, so a stream without BOS fails at the first row
        self.starts: list[int] = []
        self.lens: list[int] = []

    def _refill(self) -> None:
        if self.doc_pos is None:
            self.doc_pos = self._next_bos(self._start)
        for _ in range(REFILL_DOCS):
            start = self.doc_pos
            end = self._next_bos(start + 1)
            length = (end - start) % self.total or self.total
            self.starts.append(start)
            self.lens.append(length)
            self.doc_pos = end

    def row(self, capacity: int) -> np.ndarray:
        """One row of `capacity` tokens (prepare.py make_dataloader, lines 305-332)."""
        out = np.empty(capacity, dtype=np.int64)
        pos = 0
        while pos < capacity:
            while len(self.lens) < self.buffer_docs:
                self._refill()
            remaining = capacity - pos
            lens = np.asarray(self.lens)
            fits = np.where(lens <= remaining, lens, 0)
            if fits.max() > 0:  # the longest document that fits entirely (the first of equals)
                i = int(np.argmax(fits))
                n = int(lens[i])
            else:  # none fits: crop the shortest (the first of equals) to fill the row
                i = int(np.argmin(lens))
                n = remaining
            out[pos : pos + n] = self._read(self.starts.pop(i), n)
            self.lens.pop(i)
            pos += n
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"doc_pos": self.doc_pos, "buffer": [[s, n] for s, n in zip(self.starts, self.lens, strict=True)]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.doc_pos = None if state["doc_pos"] is None else int(state["doc_pos"])
        self.starts = [int(s) for s, _ in state["buffer"]]
        self.lens = [int(n) for _, n in state["buffer"]]


class TokenLoader:
    def __init__(
        self,
        files: Sequence[str | Path],
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        order: str = "sequential",
        align_bos: bool = False,
        bos_id: int | None = None,
        packing: str = "stream",
        pack_buffer_docs: int = 1000,
    ) -> None:
        if not files:
            raise DataError("TokenLoader: no shard files given")
        assert 0 <= rank < world_size, f"TokenLoader: rank {rank} is outside world_size {world_size}"
        if order not in ("sequential", "shuffled"):
            raise DataError(f"data.order must be 'sequential' or 'shuffled', got {order!r}")
        if align_bos and bos_id is None:
            raise DataError("data.align_bos needs the tokenizer's BOS id, but the dataset has none")
        if packing not in ("stream", "best_fit"):
            raise DataError(f"data.packing must be 'stream' or 'best_fit', got {packing!r}")
        if packing == "best_fit" and bos_id is None:
            raise DataError("data.packing='best_fit' needs the tokenizer's BOS id, but the dataset has none")
        paths = sorted(Path(f) for f in files)
        counts = [read_header(p) for p in paths]  # validates every shard up front
        total = sum(counts)
        if total == 0:
            raise DataError(f"TokenLoader: the shards hold no tokens (first: {paths[0]})")
        start = 0
        if order == "shuffled":
            rng = np.random.default_rng(seed)
            perm = rng.permutation(len(paths))
            paths, counts = [paths[i] for i in perm], [counts[i] for i in perm]
            start = int(rng.integers(total))
        self.rank, self.world_size = rank, world_size
        self.files: list[Path] = paths  # in stream order
        self._counts = np.asarray(counts, dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(self._counts)[:-1]]).astype(np.int64)
        self.total_tokens = int(total)
        # what a saved state must match to be continued here: the shards and how they are read
        self._stream = {"files": [p.name for p in paths], "order": order, "seed": seed, "align_bos": align_bos,
                        "total_tokens": self.total_tokens, "packing": packing}
        self._pos = start
        self._maps: dict[int, np.ndarray] = {}
        self._align_bos, self._bos_id = align_bos, bos_id
        self._bos: OrderedDict[int, np.ndarray] = OrderedDict()
        self._packer = (BestFitPacker(self._read, self._next_bos, self.total_tokens, start, pack_buffer_docs)
                        if packing == "best_fit" else None)

    # ---- stream access -------------------------------------------------------------------------
    def _shard(self, i: int) -> np.ndarray:
        if i not in self._maps:
            self._maps[i] = open_shard(self.files[i])
        return self._maps[i]

    def _locate(self, pos: int) -> tuple[int, int]:
        """Shard index and offset of stream position pos (0 <= pos < total); empty shards are skipped."""
        i = int(np.searchsorted(self._starts, pos, side="right")) - 1
        return i, pos - int(self._starts[i])

    def _read(self, pos: int, n: int) -> np.ndarray:
        """n tokens of the cyclic stream starting at pos, as int64."""
        out = np.empty(n, dtype=np.int64)
        pos %= self.total_tokens
        done = 0
        while done < n:
            i, off = self._locate(pos)
            k = min(n - done, int(self._counts[i]) - off)
            out[done : done + k] = self._shard(i)[off : off + k]
            done += k
            pos = (pos + k) % self.total_tokens
        return out

    def _bos_positions(self, i: int) -> np.ndarray:
        if i in self._bos:
            self._bos.move_to_end(i)
        else:
            self._bos[i] = np.flatnonzero(self._shard(i) == self._bos_id)
            if len(self._bos) > _BOS_CACHE_SHARDS:
                self._bos.popitem(last=False)
        return self._bos[i]

    def _next_bos(self, pos: int) -> int:
        """Stream position of the first BOS token at or after pos (cyclically)."""
        pos %= self.total_tokens
        i, off = self._locate(pos)
        for step in range(len(self.files) + 1):
            j = (i + step) % len(self.files)
            found = self._bos_positions(j)
            if step == 0:
                found = found[np.searchsorted(found, off) :]
            elif step == len(self.files):  # back in the first shard: only positions before pos remain
                found = found[: np.searchsorted(found, off)]
            if found.size:
                return int(self._starts[j]) + int(found[0])
        raise DataError(f"no BOS token (id {self._bos_id}) in any shard, e.g. {self.files[0]}; cannot align_bos")

    # ---- batches -------------------------------------------------------------------------------
    def next_batch(self, local_tokens: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of this rank, int64 CPU tensors of shape (local_tokens // seq_len, seq_len)."""
        n_seq = local_tokens // seq_len
        if seq_len <= 0 or n_seq <= 0:
            raise DataError(f"local batch of {local_tokens} tokens holds no sequence of length {seq_len}")
        if self._packer is not None or self._align_bos:
            rows = []
            for k in range(self.world_size * n_seq):  # row k of the global chunk goes to rank k // n_seq
                mine = k // n_seq == self.rank
                if self._packer is not None:  # every rank packs every row: each fills the buffer alike
                    row = self._packer.row(seq_len + 1)
                else:
                    start = self._next_bos(self._pos)
                    self._pos = (start + seq_len) % self.total_tokens
                    row = self._read(start, seq_len + 1) if mine else None
                if mine:
                    rows.append(row)
            seqs = np.stack(rows)
            x, y = seqs[:, :-1], seqs[:, 1:]
        else:
            span = local_tokens + 1
            chunk = self._read(self._pos + self.rank * span, span)
            self._pos = (self._pos + self.world_size * span) % self.total_tokens
            used = n_seq * seq_len
            x, y = chunk[:used].reshape(n_seq, seq_len), chunk[1 : used + 1].reshape(n_seq, seq_len)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))

    # ---- resume --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {"version": 1, "pos": self._pos, **self._stream}
        if self._packer is not None:
            state["packer"] = self._packer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where the saved loader stopped; the shards must be the same."""
        for key, now in self._stream.items():
            was = state.get(key, "stream" if key == "packing" else None)  # states from before best-fit packing
            if was != now:
                raise DataError(f"loader state does not match these shards: {key} was {was!r}, now {now!r}")
        self._pos = int(state["pos"])
        if self._packer is not None:
            self._packer.load_state_dict(state["packer"])

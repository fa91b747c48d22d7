"""Bits per byte: per-token UTF-8 byte counts (ByteTable) and the val_loss / val_bpb reduction.

val_bpb = sum(nats) / ln 2 / sum(UTF-8 bytes of the target tokens), the tokenizer-independent metric
of parameter golf. Bytes come from a per-token table:

* SentencePiece (parameter-golf's scorer): control, unknown and unused pieces are 0 bytes and are
  boundaries; byte-fallback pieces <0xXX> are 1 byte; any other piece is the UTF-8 length of its text
  without a leading U+2581, and that leading U+2581 adds one byte unless the previous token is a
  boundary (further U+2581 inside a whitespace-only piece are one byte each). Skipping the space after a boundary is only right when the model drops a document's
  leading whitespace (remove_extra_whitespaces) or inserts it (add_dummy_prefix); for a model with
  neither (golflab's own, which round-trips text exactly) the U+2581 is a real byte and always counts.
* tiktoken / byte-level BPE: the token's raw byte length; special tokens are 0 bytes and boundaries.

Portable core: numpy and torch only (sentencepiece/tiktoken objects are passed in, never imported).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

_SPACE = "\u2581"


class ByteTable:
    """Per-token-id byte facts: base_bytes, has_leading_space, is_boundary (CPU tensors by default)."""

    def __init__(self, base_bytes: Any, has_leading_space: Any, is_boundary: Any) -> None:
        self.base_bytes = torch.as_tensor(np.asarray(base_bytes), dtype=torch.int64)
        self.has_leading_space = torch.as_tensor(np.asarray(has_leading_space), dtype=torch.bool)
        self.is_boundary = torch.as_tensor(np.asarray(is_boundary), dtype=torch.bool)
        assert self.base_bytes.shape == self.has_leading_space.shape == self.is_boundary.shape, \
            "ByteTable arrays must have the same length"
        self._on: dict[str, ByteTable] = {}

    @property
    def vocab_size(self) -> int:
        return int(self.base_bytes.numel())

    @property
    def device(self) -> torch.device:
        return self.base_bytes.device

    def to(self, device: torch.device | str) -> ByteTable:
        """This table on `device` (copied once, then cached)."""
        device = torch.device(device)
        if device == self.device:
            return self
        key = str(device)
        if key not in self._on:
            t = ByteTable.__new__(ByteTable)
            t.base_bytes = self.base_bytes.to(device)
            t.has_leading_space = self.has_leading_space.to(device)
            t.is_boundary = self.is_boundary.to(device)
            t._on = {}
            self._on[key] = t
        return self._on[key]

    @classmethod
    def from_sentencepiece(cls, model: str | Path | Any) -> ByteTable:
        """From a SentencePiece model file or a loaded SentencePieceProcessor."""
        if isinstance(model, (str, Path)):
            import sentencepiece as spm

            model = spm.SentencePieceProcessor(model_file=str(model))
        n = int(model.vocab_size())
        base = np.zeros(n, dtype=np.int64)
        space = np.zeros(n, dtype=bool)
        boundary = np.zeros(n, dtype=bool)
        rule = _drops_leading_whitespace(model)
        for i in range(n):
            if model.is_control(i) or model.is_unknown(i) or model.is_unused(i):
                boundary[i] = True
                continue
            if model.is_byte(i):
                base[i] = 1
                continue
            piece = model.id_to_piece(i)
            if piece.startswith(_SPACE):
                piece = piece[1:]
                if rule:
                    space[i] = True
                else:
                    base[i] += 1
            base[i] += len(piece.replace(_SPACE, " ").encode("utf-8"))  # whitespace-only pieces: ▁▁
        return cls(base, space, boundary)

    @classmethod
    def from_tiktoken(cls, encoding: Any, decoded: bool = False) -> ByteTable:
        """From a tiktoken.Encoding: raw byte length per token, special tokens 0 bytes and boundaries.

        decoded=True counts autoresearch's way (prepare.py train_tokenizer, token_bytes): the UTF-8 length
        of the token decoded on its own, so a token holding part of a character counts 3 bytes per U+FFFD."""
        n = int(encoding.n_vocab)
        base = np.zeros(n, dtype=np.int64)
        boundary = np.zeros(n, dtype=bool)
        special = set(encoding.special_tokens_set)
        special_ids = {encoding.encode_single_token(s) for s in special}
        for i in range(n):
            if i in special_ids:
                boundary[i] = True
                continue
            try:
                raw = encoding.decode_single_token_bytes(i)
                base[i] = len(raw.decode("utf-8", errors="replace").encode("utf-8")) if decoded else len(raw)
            except KeyError:  # a hole in the id space
                boundary[i] = True
        return cls(base, np.zeros(n, dtype=bool), boundary)

    def token_bytes(self, targets: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """UTF-8 bytes of each target token (int64, same shape), given the token before each target.

        `prev` defaults to `targets` shifted right along the last dimension, the first position
        counting as if preceded by ordinary text; pass the model inputs to be exact.
        """
        t = self.to(targets.device)
        targets = targets.long()
        nbytes = t.base_bytes[targets]
        if prev is None:
            after_boundary = torch.zeros_like(targets, dtype=torch.bool)
            after_boundary[..., 1:] = t.is_boundary[targets[..., :-1]]
        else:
            after_boundary = t.is_boundary[prev.long()]
        return nbytes + (t.has_leading_space[targets] & ~after_boundary).long()


def _drops_leading_whitespace(model: Any) -> bool:
    """True when the model removes or fakes a document's leading space (see module doc).

    Probed by behaviour rather than the model proto, so no protobuf is needed.
    """
    plain = model.encode("a", out_type=str)
    dummy_prefix = bool(plain) and plain[0].startswith(_SPACE)
    strips = model.encode(" a", out_type=str) == plain
    return dummy_prefix or strips


def val_bpb(
    nats: torch.Tensor, targets: torch.Tensor, table: ByteTable, prev: torch.Tensor | None = None
) -> tuple[float, float]:
    """(val_loss, val_bpb) of per-token losses `nats` (natural log) for `targets`."""
    acc = BpbAccumulator()
    acc.add(nats, targets, table, prev)
    return acc.result()


class BpbAccumulator:
    """Sums nats (float64), tokens and bytes over batches; all-reduce the sums, then read the result."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)  # nats, tokens, bytes

    def add(
        self, nats: torch.Tensor, targets: torch.Tensor, table: ByteTable, prev: torch.Tensor | None = None,
        zero_byte_nats: bool = True,
    ) -> None:
        """zero_byte_nats=False leaves out the nats (and the count) of targets of 0 bytes, as autoresearch's
        evaluate_bpb does (prepare.py: total_nats += (loss * (nbytes > 0)).sum())."""
        assert nats.shape == targets.shape, f"nats shape {tuple(nats.shape)} != targets shape {tuple(targets.shape)}"
        if self.sums.device != nats.device:
            self.sums = self.sums.to(nats.device)
        nbytes = table.token_bytes(targets, prev)
        if zero_byte_nats:
            count = torch.tensor(float(targets.numel()), device=nats.device, dtype=torch.float64)
            total = nats.double().sum()
        else:
            scored = nbytes > 0
            count = scored.sum().double()
            total = (nats.double() * scored).sum()
        self.sums += torch.stack([total, count, nbytes.sum().double()])

    def all_reduce(self) -> None:
        """Sum over all ranks (no-op unless torch.distributed is initialised)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums, op=dist.ReduceOp.SUM)

    @property
    def nats(self) -> float:
        return float(self.sums[0])

    @property
    def tokens(self) -> int:
        return int(self.sums[1])

    @property
    def bytes(self) -> int:
        return int(self.sums[2])

    def result(self) -> tuple[float, float]:
        """(val_loss = mean nats per token, val_bpb = nats / ln 2 / bytes)."""
        nats, tokens, nbytes = self.sums.tolist()
        if tokens <= 0 or nbytes <= 0:
            raise ValueError("no tokens or no bytes were scored")
        return nats / tokens, nats / math.log(2) / nbytes

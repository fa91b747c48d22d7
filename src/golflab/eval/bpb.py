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
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

_SPACE = "\u2581"


class ByteTable:
    """Per-token-id byte facts: base_bytes, has_leading_space, is_boundary (CPU tensors by default)."""

    def __init__(self, base_bytes: Any, has_leading_space: Any, is_boundary: Any) -> None:
        self.base_bytes = torch.as_tensor(base_bytes, dtype=torch.int64)
        self.has_leading_space = torch.as_tensor(has_leading_space, dtype=torch.bool)
        self.is_boundary = torch.as_tensor(is_boundary, dtype=torch.bool)
        assert self.base_bytes.shape == self.has_leading_space.shape == self.is_boundary.shape, \
            "ByteTable arrays must have the same length"

    def to(self, device: torch.device | str) -> ByteTable:
        """This table on `device` (its own tensors where they are there already)."""
        return ByteTable(self.base_bytes.to(device), self.has_leading_space.to(device), self.is_boundary.to(device))

    @classmethod
    def from_sentencepiece(cls, model: Any) -> ByteTable:
        """From a loaded SentencePieceProcessor (from a model file: load_tokenizer(path).byte_table())."""
        rule = _drops_leading_whitespace(model)
        rows = []  # (base bytes, has leading space, is boundary) of each id
        for i in range(int(model.vocab_size())):
            if model.is_control(i) or model.is_unknown(i) or model.is_unused(i):
                rows.append((0, False, True))
            elif model.is_byte(i):
                rows.append((1, False, False))
            else:  # each U+2581 is a space (▁▁: whitespace-only), a leading one under the rule only after text
                piece = model.id_to_piece(i)
                lead = rule and piece.startswith(_SPACE)
                rows.append((len(piece.replace(_SPACE, " ").encode("utf-8")) - lead, lead, False))
        return cls(*zip(*rows, strict=True))

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

    def token_bytes(self, targets: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """UTF-8 bytes of each target token (int64, same shape), given the token before each target
        (the model inputs); ids are int64 or int32 tensors on the table's device (see `to`)."""
        after_boundary = self.is_boundary[prev]
        return self.base_bytes[targets] + (self.has_leading_space[targets] & ~after_boundary).long()


def _drops_leading_whitespace(model: Any) -> bool:
    """True when the model removes or fakes a document's leading space (see module doc).

    Probed by behaviour rather than the model proto, so no protobuf is needed.
    """
    plain = model.encode("a", out_type=str)
    dummy_prefix = bool(plain) and plain[0].startswith(_SPACE)
    return dummy_prefix or model.encode(" a", out_type=str) == plain  # or it strips the space


def val_bpb(nats: torch.Tensor, targets: torch.Tensor, table: ByteTable, prev: torch.Tensor) -> tuple[float, float]:
    """(val_loss, val_bpb) of per-token losses `nats` (natural log) for `targets` after `prev`."""
    acc = BpbAccumulator(nats.device)
    acc.add(nats, targets, table.to(nats.device), prev)
    return acc.result()


class BpbAccumulator:
    """Sums nats (float64), tokens and bytes over batches; all-reduce the sums, then read the result."""

    def __init__(self, device: torch.device | str | None = None, zero_byte_nats: bool = True) -> None:
        """zero_byte_nats=False leaves out the nats (and the count) of targets of 0 bytes, as autoresearch's
        evaluate_bpb does (prepare.py: total_nats += (loss * (nbytes > 0)).sum())."""
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)  # nats, tokens, bytes
        self.zero_byte_nats = zero_byte_nats

    def add(self, nats: torch.Tensor, targets: torch.Tensor, table: ByteTable, prev: torch.Tensor) -> None:
        """Add targets after `prev` (on the device of the sums and the table) and their nats."""
        assert nats.shape == targets.shape, f"nats shape {tuple(nats.shape)} != targets shape {tuple(targets.shape)}"
        nbytes = table.token_bytes(targets, prev)
        if self.zero_byte_nats:
            self.sums[0] += nats.double().sum()
            self.sums[1] += targets.numel()
        else:
            scored = nbytes > 0
            self.sums[0] += (nats.double() * scored).sum()
            self.sums[1] += scored.sum()
        self.sums[2] += nbytes.sum()

    def all_reduce(self) -> None:
        """Sum over all ranks (no-op unless torch.distributed is initialised)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)

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

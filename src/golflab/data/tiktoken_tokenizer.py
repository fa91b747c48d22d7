"""tiktoken encodings as a golflab Tokenizer (data.tokenizers); `<|endoftext|>` serves as BOS/EOS.

Kept apart from golflab.data.tokenizers so that the stand-alone exported script, which reads
SentencePiece tokenizers only (as parameter-golf's own script does), does not carry it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tiktoken

from golflab.data.tokenizers import TIKTOKEN_SUFFIX
from golflab.errors import DataError
from golflab.eval.bpb import ByteTable
from golflab.fileio import write_atomic


class TiktokenTokenizer:
    """A tiktoken Encoding; `<|endoftext|>` (if present) serves as BOS/EOS, as in modded-nanogpt."""

    kind = "tiktoken"

    def __init__(self, encoding: Any, path: str | Path | None = None) -> None:
        self.enc = encoding
        self.path = Path(path) if path is not None else None
        self.name = encoding.name
        self._eot = encoding._special_tokens.get("<|endoftext|>")

    @property
    def vocab_size(self) -> int:
        return int(self.enc.n_vocab)

    @property
    def bos_id(self) -> int | None:
        return self._eot

    @property
    def eos_id(self) -> int | None:
        return self._eot

    def encode(self, text: str) -> list[int]:
        return self.enc.encode_ordinary(text)  # special-token strings in text are plain text

    def encode_batch(self, texts: list[str], num_threads: int = 0) -> list[list[int]]:
        return self.enc.encode_ordinary_batch(texts, num_threads=num_threads or os.cpu_count() or 1)

    def decode(self, ids: Iterable[int]) -> str:
        return self.enc.decode(list(ids))

    def byte_table(self) -> ByteTable:
        return ByteTable.from_tiktoken(self.enc)

    def save(self, path: str | Path) -> Path:
        data = {
            "kind": "tiktoken",
            "name": self.enc.name,
            "pat_str": self.enc._pat_str,
            "special_tokens": self.enc._special_tokens,
            "mergeable_ranks": {base64.b64encode(k).decode("ascii"): v for k, v in self.enc._mergeable_ranks.items()},
        }
        return write_atomic(Path(path), json.dumps(data).encode("utf-8"))


def _tiktoken_from_file(path: Path) -> TiktokenTokenizer:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        enc = tiktoken.Encoding(
            name=data["name"],
            pat_str=data["pat_str"],
            mergeable_ranks={base64.b64decode(k): int(v) for k, v in data["mergeable_ranks"].items()},
            special_tokens={k: int(v) for k, v in data["special_tokens"].items()},
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"tokenizer {path} is not a golflab tiktoken file ({exc})") from None
    return TiktokenTokenizer(enc, path)


def load_tiktoken(spec: str) -> TiktokenTokenizer:
    """A golflab `*.tiktoken.json` file or a tiktoken encoding name (`gpt2`, `tiktoken:gpt2`)."""
    path = Path(spec)
    if path.is_file() and spec.endswith(TIKTOKEN_SUFFIX):
        return _tiktoken_from_file(path)
    name = spec.removeprefix("tiktoken:")
    if name not in tiktoken.list_encoding_names():
        raise DataError(f"tokenizer {spec!r} is neither a file nor a tiktoken encoding name")
    try:
        return TiktokenTokenizer(tiktoken.get_encoding(name))
    except Exception as exc:
        raise DataError(
            f"tiktoken encoding {name!r} is not in the local cache and could not be downloaded ({type(exc).__name__})"
        ) from None

"""The token shard format shared with parameter-golf and modded-nanogpt.

A shard is 256 little-endian int32 header words (word 0 magic 20240520, word 1 version 1, word 2 the
token count; the rest zero) followed by that many uint16 little-endian token ids, so its size is
exactly 1024 + 2 * count bytes. Portable core: standard library and numpy only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from golflab.errors import DataError

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_WORDS = 256
HEADER_BYTES = HEADER_WORDS * 4
TOKEN_BYTES = 2
MAX_TOKEN_ID = 65535


def write_shard(path: str | Path, tokens: np.ndarray | list[int]) -> Path:
    """Write `tokens` as one shard; written to a temporary name and renamed, so it is never half-valid."""
    path = Path(path)
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise DataError(f"{path}: tokens must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{path}: tokens must be integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > MAX_TOKEN_ID):
        raise DataError(
            f"{path}: token ids must lie in [0, {MAX_TOKEN_ID}] to fit uint16, got range "
            f"[{int(arr.min())}, {int(arr.max())}]"
        )
    header = np.zeros(HEADER_WORDS, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, arr.size
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(header.tobytes())
            f.write(arr.astype("<u2", copy=False).tobytes())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_header(path: str | Path) -> int:
    """Validate a shard's header and size; return its token count."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"shard {path} does not exist")
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise DataError(f"shard {path} is {size} bytes, too short for the {HEADER_BYTES}-byte header")
    magic, version, count = np.fromfile(path, dtype="<i4", count=3).tolist()
    expected = HEADER_BYTES + TOKEN_BYTES * count  # a negative count fails too (expected < HEADER_BYTES <= size)
    if (magic, version, size) != (SHARD_MAGIC, SHARD_VERSION, expected):
        raise DataError(f"shard {path} has magic {magic}, version {version} and {size} bytes, not magic "
                        f"{SHARD_MAGIC}, version {SHARD_VERSION} and the {expected} bytes of its header's {count} tokens")
    return count


def open_shard(path: str | Path) -> np.ndarray:
    """Validate a shard and return its tokens as a read-only uint16 memory map (nothing is loaded)."""
    count = read_header(path)
    if count == 0:
        return np.zeros(0, dtype="<u2")
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(count,))


class ShardWriter:
    """Streams tokens into one shard without holding them in memory; the header is completed and the
    file renamed into place by close(), so an interrupted write never leaves a valid-looking shard."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        self._f = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._f.write(b"\0" * HEADER_BYTES)

    def write(self, tokens: np.ndarray) -> None:
        arr = np.asarray(tokens)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > MAX_TOKEN_ID):
            self.abort()
            raise DataError(f"{self.path}: token ids must lie in [0, {MAX_TOKEN_ID}] to fit uint16")
        self._f.write(arr.astype("<u2", copy=False).tobytes())
        self.count += int(arr.size)

    def close(self) -> Path:
        header = np.zeros(HEADER_WORDS, dtype="<i4")
        header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, self.count
        self._f.seek(0)
        self._f.write(header.tobytes())
        self._f.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)

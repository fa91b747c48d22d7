"""Shard format: round trip, and one clear DataError for each way a shard can be broken."""

from __future__ import annotations

import numpy as np
import pytest

from golflab.data.shards import HEADER_BYTES, SHARD_MAGIC, open_shard, read_header, write_shard
from golflab.errors import DataError


def test_round_trip_and_layout(tmp_path):
    tokens = np.array([0, 1, 2, 65535, 300, 7], dtype=np.int64)
    path = write_shard(tmp_path / "a.bin", tokens)
    assert path.stat().st_size == HEADER_BYTES + 2 * len(tokens)
    header = np.fromfile(path, dtype="<i4", count=3)
    assert header.tolist() == [SHARD_MAGIC, 1, len(tokens)]
    assert read_header(path) == len(tokens)
    mm = open_shard(path)
    assert isinstance(mm, np.memmap)
    assert mm.tolist() == tokens.tolist()
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_empty_shard(tmp_path):
    path = write_shard(tmp_path / "e.bin", [])
    assert read_header(path) == 0
    assert open_shard(path).size == 0


@pytest.mark.parametrize("bad", [[-1], [65536], [1.5]])
def test_write_rejects_bad_ids(tmp_path, bad):
    with pytest.raises(DataError, match=r"x\.bin"):
        write_shard(tmp_path / "x.bin", np.array(bad))
    assert not any(tmp_path.iterdir())


def _raw(path, words, payload=b""):
    header = np.zeros(256, dtype="<i4")
    header[: len(words)] = words
    path.write_bytes(header.tobytes() + payload)
    return path


def test_errors_name_file_and_problem(tmp_path):
    with pytest.raises(DataError, match=r"missing\.bin does not exist"):
        read_header(tmp_path / "missing.bin")
    short = tmp_path / "short.bin"
    short.write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match=r"short\.bin is 100 bytes, too short"):
        read_header(short)
    with pytest.raises(DataError, match=r"magic.bin has magic 42, .* not magic 20240520"):
        read_header(_raw(tmp_path / "magic.bin", [42, 1, 0]))
    with pytest.raises(DataError, match=r"version 3 .* version 1 "):
        read_header(_raw(tmp_path / "ver.bin", [SHARD_MAGIC, 3, 0]))
    with pytest.raises(DataError, match=r"size.bin .* 1030 bytes, .* the 1032 bytes of its header's 4 tokens"):
        open_shard(_raw(tmp_path / "size.bin", [SHARD_MAGIC, 1, 4], b"\0" * 6))

"""A self-describing binary form of a QuantizedModel: a compact JSON header and a raw byte payload.

No pickles, no config needed to read it back. Portable core (stdlib, numpy, torch via quantize);
private helpers carry a `_sz_` prefix.

Layout (little-endian): magic b"GLQM" | header length u32 | UTF-8 JSON header | payload.
Header: {"v": 1, "shuffle": bool, "tensors": [{"name", "scheme", "shape", "dtype", "meta",
"parts": [[key, numpy dtype, shape, offset, nbytes], ...]}, ...]}; offsets are into the payload.
Parts are laid out grouped by kind (integer codes, then scales, then float data) so that similar
bytes sit together for the compressor. With shuffle, multi-byte parts are stored byte-transposed
(all first bytes of each element, then all second bytes, ...): the sign/exponent bytes of floats
then form one compressible run instead of alternating with near-random mantissa bytes.
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np

from golflab.artifact.quantize import QTensor, QuantizedModel
from golflab.errors import GolflabError

QM_MAGIC = b"GLQM"
QM_VERSION = 1
_SZ_HEAD = struct.Struct("<4sI")
_SZ_ORDER = {"q": 0, "scale": 1, "data": 2}  # payload grouping by part kind
_SZ_DTYPES = {"int8", "uint8", "int16", "uint16", "float16", "float32", "float64", "int32", "int64"}


def byte_shuffle(a: np.ndarray) -> np.ndarray:
    """Byte-transpose an array: (n, itemsize) bytes -> (itemsize, n), as uint8."""
    return a.reshape(-1, 1).view(np.uint8).T.reshape(-1)


def byte_unshuffle(b: np.ndarray, itemsize: int) -> np.ndarray:
    """Inverse of byte_shuffle (returns uint8 in the original byte order)."""
    return b.reshape(itemsize, -1).T.reshape(-1)


def serialize_quantized(qm: QuantizedModel, *, shuffle: bool = True) -> bytes:
    """Encode a QuantizedModel as header + payload bytes (uncompressed)."""
    if sys.byteorder != "little":  # pragma: no cover
        raise GolflabError("artifact serialization needs a little-endian machine")
    entries = []
    chunks: list[tuple[int, int, int, np.ndarray]] = []  # (kind, tensor idx, part idx, array)
    for ti, (name, qt) in enumerate(qm.tensors.items()):
        parts = []
        for pi, (key, arr) in enumerate(qt.parts.items()):
            a = np.ascontiguousarray(arr)
            assert a.dtype.name in _SZ_DTYPES, (name, key, a.dtype)  # what golflab's quantizers write
            parts.append([key, a.dtype.name, list(a.shape), 0, int(a.nbytes)])
            chunks.append((_SZ_ORDER.get(key, 3), ti, pi, a))
        entries.append({"name": name, "scheme": qt.scheme, "shape": list(qt.shape), "dtype": qt.dtype,
                        "meta": qt.meta, "parts": parts})
    payload = bytearray()
    for _, ti, pi, a in sorted(chunks, key=lambda c: c[:3]):
        entries[ti]["parts"][pi][3] = len(payload)
        # (shuffling leaves one-byte parts as they are)
        payload += (byte_shuffle(a) if shuffle else a.reshape(-1).view(np.uint8)).tobytes()
    header = json.dumps({"v": QM_VERSION, "shuffle": shuffle, "tensors": entries}, separators=(",", ":"))
    hb = header.encode("utf-8")
    return _SZ_HEAD.pack(QM_MAGIC, len(hb)) + hb + bytes(payload)


def _sz_fail(what: str) -> GolflabError:
    return GolflabError(f"artifact payload is malformed: {what}")


def check_serialized(buf: bytes) -> None:
    """A one-line GolflabError for anything in `buf` that deserialize_quantized could not decode as
    written (bytes from a file: damaged, truncated or not ours)."""
    mv = memoryview(buf)
    if len(mv) < _SZ_HEAD.size:
        raise _sz_fail("shorter than its header")
    magic, hlen = _SZ_HEAD.unpack_from(mv)
    if magic != QM_MAGIC:
        raise _sz_fail(f"bad magic {magic!r} (expected {QM_MAGIC!r})")
    start = _SZ_HEAD.size + hlen
    if start > len(mv):
        raise _sz_fail("header runs past the end of the data")
    try:
        header = json.loads(bytes(mv[_SZ_HEAD.size : start]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _sz_fail(f"header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("v") != QM_VERSION:
        raise _sz_fail(f"unsupported header version {header.get('v') if isinstance(header, dict) else None!r}")
    size = len(mv) - start
    try:
        for e in header["tensors"]:
            for key, dtype, shape, off, nbytes in e["parts"]:
                if dtype not in _SZ_DTYPES or off < 0 or off + nbytes > size:
                    raise _sz_fail(f"tensor '{e['name']}' part '{key}' is out of range or of unknown dtype")
                if nbytes != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize:
                    raise _sz_fail(f"tensor '{e['name']}' part '{key}' size does not match its shape")
            str(e["scheme"]), tuple(e["shape"]), str(e["dtype"]), dict(e["meta"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _sz_fail(f"header entry is incomplete ({exc!r})") from None


def deserialize_quantized(buf: bytes, check: bool = True) -> QuantizedModel:
    """Decode bytes from serialize_quantized, checked first (check_serialized) unless the caller
    serialized them itself (`check=False`: the round trip)."""
    if check:
        check_serialized(buf)
    mv = memoryview(buf)
    start = _SZ_HEAD.size + _SZ_HEAD.unpack_from(mv)[1]
    header = json.loads(bytes(mv[_SZ_HEAD.size : start]))
    payload = np.frombuffer(mv[start:], dtype=np.uint8)
    shuffle = header.get("shuffle", False)
    tensors: dict[str, QTensor] = {}
    for e in header["tensors"]:
        parts = {}
        for key, dtype, shape, off, nbytes in e["parts"]:
            dt = np.dtype(dtype)
            raw = payload[off : off + nbytes]
            parts[key] = (byte_unshuffle(raw, dt.itemsize) if shuffle else raw).copy().view(dt).reshape(shape)
        tensors[e["name"]] = QTensor(e["scheme"], tuple(e["shape"]), e["dtype"], parts, dict(e["meta"]))
    return QuantizedModel(tensors)

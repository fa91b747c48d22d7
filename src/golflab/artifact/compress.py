"""Compressors for the artifact and the small container that names which one was used.

Portable core: standard library only at import time (zlib, lzma); brotli and zstandard are imported
inside the functions that need them, so the exported script runs without them. Private helpers carry
a `_cz_` prefix to keep top-level names distinct when inlined.

Container layout (little-endian), 20 bytes then the compressed stream:
  magic b"GLFART" | version u8 | codec id u8 | uncompressed length u64 | crc32 of uncompressed u32
"""

from __future__ import annotations

import lzma
import struct
import zlib
from typing import Any

from golflab.errors import GolflabError

CODECS = ("zlib", "lzma", "brotli", "zstd")  # codec id = index
BLOB_MAGIC = b"GLFART"
BLOB_VERSION = 1
_CZ_HEADER = struct.Struct("<6sBBQI")
BLOB_HEADER_BYTES = _CZ_HEADER.size

# Strongest settings that stay fast enough for a 10-20 MB payload (timings in docs/artifact.md).
ZLIB_LEVEL = 9
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9}]  # | PRESET_EXTREME: 2x slower, -0.004%
BROTLI_QUALITY, BROTLI_LGWIN = 11, 24
ZSTD_LEVEL = 22


def _cz_brotli() -> Any:
    try:
        import brotli
    except ImportError:
        raise GolflabError("compressor 'brotli' needs the brotli package: pip install brotli") from None
    return brotli


def _cz_zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise GolflabError("compressor 'zstd' needs the zstandard package: pip install zstandard") from None
    return zstandard


def check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise GolflabError(f"artifact.compress: {codec!r} is not a compressor; expected one of {', '.join(CODECS)}")


def compress_bytes(data: bytes, codec: str) -> bytes:
    """Compress with `codec` at its strongest practical setting (raw stream, no container)."""
    check_codec(codec)
    if codec == "zlib":
        return zlib.compress(data, ZLIB_LEVEL)
    if codec == "lzma":  # raw LZMA2: no xz header, footer or check (the container has a crc32)
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    if codec == "brotli":
        return _cz_brotli().compress(data, quality=BROTLI_QUALITY, lgwin=BROTLI_LGWIN)
    zstd = _cz_zstd()
    return zstd.ZstdCompressor(level=ZSTD_LEVEL).compress(data)


def _cz_decompress(data: bytes, codec: str) -> bytes:
    """Decompress a stream of `codec` (raw, no container; a damaged stream raises the library's error)."""
    if codec == "zlib":
        return zlib.decompress(data)
    if codec == "lzma":
        return lzma.decompress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    if codec == "brotli":
        return _cz_brotli().decompress(data)
    return _cz_zstd().ZstdDecompressor().decompress(data)


def decompress_bytes(data: bytes, codec: str) -> bytes:
    """Decompress a stream of `codec`; a damaged stream raises a GolflabError."""
    check_codec(codec)
    try:
        return _cz_decompress(data, codec)
    except GolflabError:
        raise
    except Exception as exc:  # each library has its own error type; all mean a damaged stream
        raise GolflabError(f"artifact is corrupt or truncated: {codec} stream does not decompress ({exc})") from None


def wrap_blob(payload: bytes, codec: str) -> bytes:
    """Compress `payload` and prefix the container header."""
    body = compress_bytes(payload, codec)
    head = _CZ_HEADER.pack(BLOB_MAGIC, BLOB_VERSION, CODECS.index(codec), len(payload), zlib.crc32(payload))
    return head + body


def blob_codec(blob: bytes) -> str:
    """The compressor named by a blob's header (checks the magic and version)."""
    if len(blob) < BLOB_HEADER_BYTES:
        raise GolflabError(f"artifact is truncated: {len(blob)} bytes, shorter than its {BLOB_HEADER_BYTES}-byte header")
    magic, version, codec_id, _, _ = _CZ_HEADER.unpack_from(blob)
    if magic != BLOB_MAGIC:
        raise GolflabError(f"not a golflab artifact: bad magic {magic!r} (expected {BLOB_MAGIC!r})")
    if version != BLOB_VERSION:
        raise GolflabError(f"artifact format version {version} is not supported (this golflab reads {BLOB_VERSION})")
    if codec_id >= len(CODECS):
        raise GolflabError(f"artifact names unknown compressor id {codec_id}")
    return CODECS[codec_id]


def unwrap_blob(blob: bytes, codec: str | None = None) -> bytes:
    """Check the header, decompress, and verify length and crc32 of the payload. `codec`: the
    compressor the caller itself wrote the blob with (the round trip: nothing to verify), else read
    from the header."""
    if codec is not None:  # a blob made in this process: its stream decompresses
        return _cz_decompress(blob[BLOB_HEADER_BYTES:], codec)
    used = blob_codec(blob)  # checks the header's length, magic and version
    _, _, _, length, crc = _CZ_HEADER.unpack_from(blob)
    payload = decompress_bytes(bytes(blob[BLOB_HEADER_BYTES:]), used)
    if len(payload) != length or zlib.crc32(payload) != crc:
        raise GolflabError(
            f"artifact is corrupt or truncated: payload has {len(payload)} bytes (expected {length}) or a bad crc32"
        )
    return payload

"""The size rule: code bytes + compressed weight bytes must not exceed the limit (16,000,000)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from golflab.errors import GolflabError

DEFAULT_LIMIT_BYTES = 16_000_000  # decimal megabytes, as parameter golf counts them


@dataclass(frozen=True)
class ArtifactSize:
    bytes_code: int
    bytes_weights: int
    bytes_total: int
    limit_bytes: int
    fits: bool

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)

    @property
    def headroom(self) -> int:
        """Bytes left under the limit (negative when over)."""
        return self.limit_bytes - self.bytes_total


def _nbytes(src: bytes | bytearray | memoryview | str | os.PathLike[str] | None, what: str) -> int:
    """Size of in-memory bytes, or of the file at a path (str / PathLike)."""
    if src is None:
        return 0
    if isinstance(src, (bytes, bytearray, memoryview)):
        return len(src)
    try:
        return os.path.getsize(Path(src))
    except OSError as exc:
        raise GolflabError(f"cannot measure {what} file {src}: {exc.strerror or exc}") from None


def measure_artifact(
    blob: bytes | bytearray | memoryview | str | os.PathLike[str],
    code: bytes | bytearray | memoryview | str | os.PathLike[str] | None = None,
    limit_bytes: int = DEFAULT_LIMIT_BYTES,
) -> ArtifactSize:
    """Size accounting of an artifact. `blob` and `code` are bytes, or a path (str/PathLike) to a file;
    pass code text as `text.encode("utf-8")`. `code=None` counts no code bytes."""
    return artifact_size(_nbytes(blob, "artifact"), _nbytes(code, "code"), limit_bytes)


def artifact_size(weights: int, code: int, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> ArtifactSize:
    """The size rule for `weights` compressed weight bytes and `code` code bytes."""
    return ArtifactSize(code, weights, code + weights, int(limit_bytes), code + weights <= limit_bytes)

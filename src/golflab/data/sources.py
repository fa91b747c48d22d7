"""Reading documents from text sources: .txt, .jsonl and .parquet, optionally .gz / .xz / .zst.

Directories are walked (sorted, hidden files skipped). Documents are yielded one at a time, so
memory stays bounded whatever the corpus size (except a .txt read as one document, see txt_docs).

* .txt: `txt_docs="file"` (default) makes the whole file one document; "paragraph" makes each
  blank-line-separated block one; "line" makes each line one. A .txt whose first line is a JSON
  object with the text field is read as JSON Lines (many corpora ship JSON Lines under .txt).
* .jsonl: one JSON object per line; its `text_field` is the document.
* .parquet: the `column` of every row, streamed row group by row group.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from golflab.errors import DataError

FORMATS = {".txt": "txt", ".text": "txt", ".md": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
COMPRESSIONS = {".gz": "gz", ".xz": "xz", ".zst": "zst"}
TXT_DOCS = ("file", "paragraph", "line")


@dataclass(frozen=True)
class Source:
    path: Path
    format: str  # txt | jsonl | parquet
    compression: str | None  # gz | xz | zst | None

    def as_dict(self) -> dict[str, str | None]:
        return {"path": str(self.path), "format": self.format, "compression": self.compression}


def classify(path: Path) -> Source | None:
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    return Source(path, fmt, compression) if fmt else None


def find_sources(paths: list[str | Path]) -> list[Source]:
    """Resolve files and directories to a sorted, validated list of sources."""
    if not paths:
        raise DataError("no sources given")
    found: list[Source] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            inside = [
                src for f in sorted(p.rglob("*"))
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and (src := classify(f)) is not None
            ]
            if not inside:
                raise DataError(f"source directory {p} holds no .txt, .jsonl or .parquet files")
            found += inside
        elif p.is_file():
            src = classify(p)
            if src is None:
                raise DataError(
                    f"source {p} has an unsupported extension; use .txt, .jsonl or .parquet "
                    "(optionally .gz, .xz or .zst)"
                )
            found.append(src)
        else:
            raise DataError(f"source {p} does not exist")
    for src in found:
        if src.path.stat().st_size == 0:
            raise DataError(f"source {src.path} is empty")
    return found


def _open_binary(src: Source) -> IO[bytes]:
    if src.compression == "gz":
        return gzip.open(src.path, "rb")
    if src.compression == "xz":
        return lzma.open(src.path, "rb")
    if src.compression == "zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(src.path, "rb"), closefd=True)
    return open(src.path, "rb")


def _open_text(src: Source) -> io.TextIOWrapper:
    # Undecodable bytes become U+FFFD: byte counts are those of the text the model actually sees.
    return io.TextIOWrapper(_open_binary(src), encoding="utf-8", errors="replace", newline="")


def _looks_like_jsonl(src: Source, text_field: str) -> bool:
    with _open_text(src) as f:
        first = f.readline(1 << 20).strip()
    if not first.startswith("{"):
        return False
    try:
        obj = json.loads(first)
    except ValueError:
        return False
    return isinstance(obj, dict) and text_field in obj


def _jsonl(src: Source, text_field: str, bad_lines: list[str] | None = None) -> Iterator[str]:
    with _open_text(src) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                if bad_lines is not None:  # e.g. the last line of a download cut short
                    bad_lines.append(f"{src.path}:{lineno}")
                    continue
                raise DataError(f"{src.path} line {lineno} is not valid JSON; "
                                "pass --skip-bad-lines to skip such lines") from None
            text = obj.get(text_field) if isinstance(obj, dict) else None
            if not isinstance(text, str):
                raise DataError(f"{src.path} line {lineno} has no string field {text_field!r}")
            yield text


def _txt(src: Source, txt_docs: str) -> Iterator[str]:
    with _open_text(src) as f:
        if txt_docs == "file":
            yield f.read()
            return
        block: list[str] = []
        for line in f:
            if txt_docs == "line":
                yield line.rstrip("\r\n")
                continue
            if line.strip():
                block.append(line)
            elif block:
                yield "".join(block).rstrip("\r\n")
                block = []
        if block:
            yield "".join(block).rstrip("\r\n")


def _parquet(src: Source, column: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    tmp = None
    path = src.path
    if src.compression:  # parquet needs random access: decompress to a temporary file on disk
        tmp = tempfile.NamedTemporaryFile(suffix=".parquet", delete=False)  # noqa: SIM115
        with _open_binary(src) as fin, tmp:
            shutil.copyfileobj(fin, tmp, 1 << 20)
        path = Path(tmp.name)
    try:
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:
            raise DataError(f"{src.path} is not a readable parquet file ({exc})") from None
        names = pf.schema_arrow.names
        if column not in names:
            raise DataError(f"{src.path} has no column {column!r} (columns: {', '.join(names)})")
        for batch in pf.iter_batches(columns=[column], batch_size=1024):
            for text in batch.column(0).to_pylist():
                if text is not None:
                    yield text
    finally:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


def iter_documents(
    sources: list[Source], *, txt_docs: str = "file", text_field: str = "text", column: str = "text",
    bad_lines: list[str] | None = None,
) -> Iterator[str]:
    """All non-empty documents of the sources, in order. With a `bad_lines` list, JSON Lines that do not
    parse are skipped and their positions ("file:line") appended to it; without one they are an error."""
    if txt_docs not in TXT_DOCS:
        raise DataError(f"--txt-docs must be one of {', '.join(TXT_DOCS)}, got {txt_docs!r}")
    for src in sources:
        if src.format == "parquet":
            docs = _parquet(src, column)
        elif src.format == "jsonl" or _looks_like_jsonl(src, text_field):
            docs = _jsonl(src, text_field, bad_lines)
        else:
            docs = _txt(src, txt_docs)
        for doc in docs:
            if doc:
                yield doc

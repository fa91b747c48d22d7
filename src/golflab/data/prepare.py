"""`golflab prepare text`: documents -> train/val/test token shards + tokenizer + manifest.json.

Pipeline (bounded memory whatever the corpus size):
1. Split by document: document i goes to val when u < val_frac, to test when u < val_frac +
   test_frac, else to train, where u = the first 8 bytes of blake2b(f"{seed}:{i}") / 2**64.
2. Unless a tokenizer is given, sample at most `max_tokenizer_docs` train documents (reservoir
   sampling, seeded) in a first pass and train a SentencePiece BPE on them.
3. Second pass: encode document batches in a process pool (order preserved, a bounded number of
   batches in flight) and stream BOS + tokens of each document into shards of `shard_tokens`.
Everything is written into a hidden temporary directory that is renamed to `out` at the end.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np

from golflab.data.dataset import FORMAT, FORMAT_VERSION, sha256_file, write_manifest
from golflab.data.shards import ShardWriter
from golflab.data.sources import Source, find_sources, iter_documents
from golflab.data.tokenizers import (
    PARAMETER_GOLF_SPM,
    TIKTOKEN_SUFFIX,
    Tokenizer,
    load_tokenizer,
    train_sentencepiece,
)
from golflab.errors import DataError

Progress = Callable[[str, int, int], None]  # (phase, documents, text bytes) so far
BATCH_CHARS = 2_000_000  # text per encode task
MAX_VOCAB = 65536  # uint16 shards
TOKENIZER_DOC_CHARS = 100_000  # sampled documents are cut to this for tokenizer training


@dataclass
class PrepareOptions:
    vocab: int = 0  # 0 = take it from --tokenizer
    val_frac: float = 0.05
    test_frac: float = 0.0
    seed: int = 0
    tokenizer: str = ""  # existing tokenizer file / tiktoken name; empty = train one
    shard_tokens: int = 100_000_000
    workers: int = 0  # 0 = CPU count
    max_tokenizer_docs: int = 8_000
    text_field: str = "text"
    column: str = "text"
    txt_docs: str = "file"
    normalization: str = "identity"
    tokenizer_recipe: str = "golflab"  # or "parameter-golf": the reference's SentencePiece settings
    layout: str = "golflab"  # or "parameter-golf": ROOT/datasets/<name>/fineweb_*.bin + ROOT/tokenizers/
    dataset_name: str = ""  # parameter-golf layout: the dataset folder; empty = fineweb10B_sp<vocab>
    kind: str = "text"
    skip_bad_lines: bool = False  # skip JSON Lines that do not parse (listed in the manifest) instead of failing


LAYOUTS = ("golflab", "parameter-golf")


@dataclass(frozen=True)
class Layout:
    """Where one dataset's files go inside the output directory."""

    data: Path  # shards and golflab's manifest.json, relative to the output directory
    tokenizers: Path  # the tokenizer file's folder, relative to the output directory
    prefix: str  # shard name prefix before the split: "" (train_000000.bin) or "fineweb_"
    tokenizer_stem: str  # file name of a tokenizer trained here, without .model


def layout_of(opts: PrepareOptions, vocab: int) -> Layout:
    """golflab: everything in DIR. parameter-golf, as its data script and train_gpt.py expect
    (DATA_PATH=DIR/datasets/fineweb10B_sp1024, TOKENIZER_PATH=DIR/tokenizers/fineweb_1024_bpe.model)."""
    if opts.layout == "golflab":
        return Layout(Path("."), Path("."), "", "tokenizer")
    name = opts.dataset_name or f"fineweb10B_sp{vocab}"
    return Layout(Path("datasets") / name, Path("tokenizers"), "fineweb_", f"fineweb_{vocab}_bpe")


def split_of(index: int, seed: int, val_frac: float, test_frac: float) -> str:
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "little") / 2**64
    return "val" if u < val_frac else "test" if u < val_frac + test_frac else "train"


def _check(opts: PrepareOptions) -> None:
    if not 0 < opts.val_frac < 1 or not 0 <= opts.test_frac < 1 or opts.val_frac + opts.test_frac >= 1:
        raise DataError(f"--val-frac {opts.val_frac} and --test-frac {opts.test_frac} must leave room for train")
    if opts.vocab > MAX_VOCAB:
        raise DataError(f"--vocab {opts.vocab} is over {MAX_VOCAB}: shards store token ids as uint16")
    if not opts.tokenizer and opts.vocab <= 0:
        raise DataError("--vocab is required unless --tokenizer is given")
    if opts.layout not in LAYOUTS:
        raise DataError(f"--layout {opts.layout!r} is unknown; expected one of {', '.join(LAYOUTS)}")
    if opts.layout == "parameter-golf" and not opts.vocab and not opts.dataset_name:
        raise DataError("--layout parameter-golf names the dataset by --vocab; give --vocab or --dataset-name")
    if opts.shard_tokens <= 0:
        raise DataError(f"--shard-tokens must be positive, got {opts.shard_tokens}")


def _documents(sources: list[Source], opts: PrepareOptions, bad: list[str] | None = None
               ) -> Iterator[tuple[str, str]]:
    """(split, text) of each document; skipped bad lines go to `bad` (a throwaway list when not given,
    as the tokenizer-sampling pass reads the same lines as the encoding pass that reports them)."""
    skip = (bad if bad is not None else []) if opts.skip_bad_lines else None
    for i, doc in enumerate(iter_documents(sources, txt_docs=opts.txt_docs, text_field=opts.text_field,
                                           column=opts.column, bad_lines=skip)):
        yield split_of(i, opts.seed, opts.val_frac, opts.test_frac), doc


def _sample_train_docs(sources: list[Source], opts: PrepareOptions, progress: Progress | None) -> list[str]:
    rng = random.Random(opts.seed)
    sample: list[str] = []
    seen = docs = nbytes = 0
    for split, doc in _documents(sources, opts):
        docs += 1
        nbytes += len(doc)
        if progress and docs % 1000 == 0:
            progress("sampling for the tokenizer", docs, nbytes)
        if split != "train":
            continue
        seen += 1
        if len(sample) < opts.max_tokenizer_docs:
            sample.append(doc[:TOKENIZER_DOC_CHARS])
        else:
            j = rng.randrange(seen)
            if j < opts.max_tokenizer_docs:
                sample[j] = doc[:TOKENIZER_DOC_CHARS]
    if not sample:
        raise DataError("no train documents to train the tokenizer on")
    return sample


# ---- encoding in worker processes -------------------------------------------------------------
_WORKER_TOK: Tokenizer | None = None


def _init_worker(tokenizer_path: str) -> None:
    global _WORKER_TOK
    _WORKER_TOK = load_tokenizer(tokenizer_path)


def _encode(texts: list[str], bos: int, threads: int = 1) -> tuple[np.ndarray, int]:
    """BOS + tokens of each text, concatenated as uint16, and the texts' UTF-8 byte count."""
    assert _WORKER_TOK is not None
    encoded = _WORKER_TOK.encode_batch(texts, num_threads=threads)
    lengths = np.fromiter((len(ids) + 1 for ids in encoded), dtype=np.int64, count=len(encoded))
    out = np.empty(int(lengths.sum()), dtype=np.uint16)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out[starts] = bos
    for s, ids in zip(starts, encoded, strict=True):
        out[s + 1 : s + 1 + len(ids)] = ids
    return out, sum(len(t.encode("utf-8")) for t in texts)


class _SplitWriter:
    """Streams one split into <prefix><split>_000000.bin, ... of at most shard_tokens tokens each."""

    def __init__(self, directory: Path, split: str, shard_tokens: int, prefix: str = "") -> None:
        self.dir, self.split, self.shard_tokens = directory, prefix + split, shard_tokens
        self.shards = self.documents = self.tokens = self.bytes = 0
        self._w: ShardWriter | None = None

    def add(self, tokens: np.ndarray, documents: int, nbytes: int) -> None:
        self.documents += documents
        self.bytes += nbytes
        self.tokens += int(tokens.size)
        while tokens.size:
            if self._w is None:
                self._w = ShardWriter(self.dir / f"{self.split}_{self.shards:06d}.bin")
                self.shards += 1
            k = min(tokens.size, self.shard_tokens - self._w.count)
            self._w.write(tokens[:k])
            tokens = tokens[k:]
            if self._w.count == self.shard_tokens:
                self._w.close()
                self._w = None

    def close(self) -> dict[str, Any]:
        if self._w is not None:
            self._w.close()
        return {"prefix": self.split, "documents": self.documents, "tokens": self.tokens,
                "bytes": self.bytes, "shards": self.shards}


def _batches(sources: list[Source], opts: PrepareOptions, bad: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(split, texts) batches of about BATCH_CHARS characters, per split, in document order."""
    pending: dict[str, list[str]] = {}
    size: dict[str, int] = {}
    for split, doc in _documents(sources, opts, bad):
        pending.setdefault(split, []).append(doc)
        size[split] = size.get(split, 0) + len(doc)
        if size[split] >= BATCH_CHARS:
            yield split, pending.pop(split)
            size[split] = 0
    for split, texts in pending.items():
        yield split, texts


def _encode_all(
    sources: list[Source], opts: PrepareOptions, tok_path: Path, bos: int, work: Path, progress: Progress | None,
    bad: list[str],
    prefix: str = "",
) -> dict[str, dict[str, Any]]:
    splits = ("train", "val", "test") if opts.test_frac > 0 else ("train", "val")
    writers = {s: _SplitWriter(work, s, opts.shard_tokens, prefix) for s in splits}
    workers = opts.workers or os.cpu_count() or 1
    docs = nbytes = 0

    def consume(split: str, n_docs: int, result: tuple[np.ndarray, int]) -> None:
        nonlocal docs, nbytes
        writers[split].add(result[0], n_docs, result[1])
        docs += n_docs
        nbytes += result[1]
        if progress:
            progress("encoding", docs, nbytes)

    try:
        if workers == 1:
            _init_worker(str(tok_path))
            for split, texts in _batches(sources, opts, bad):
                consume(split, len(texts), _encode(texts, bos))
        else:
            # fork where available: no re-import of the caller's __main__; tasks in flight are bounded.
            method = "fork" if "fork" in get_all_start_methods() else "spawn"
            with get_context(method).Pool(workers, _init_worker, (str(tok_path),)) as pool:
                inflight: deque = deque()
                for split, texts in _batches(sources, opts, bad):
                    inflight.append((split, len(texts), pool.apply_async(_encode, (texts, bos))))
                    if len(inflight) >= 2 * workers:
                        s, n, res = inflight.popleft()
                        consume(s, n, res.get())
                while inflight:
                    s, n, res = inflight.popleft()
                    consume(s, n, res.get())
    finally:
        stats = {s: w.close() for s, w in writers.items()}
    for s, st in stats.items():
        if st["documents"] == 0:
            raise DataError(f"the {s} split is empty: too few documents for --{s}-frac (or --val-frac)")
    return stats


def prepare_text(
    sources: list[str | Path], out: str | Path, opts: PrepareOptions, progress: Progress | None = None
) -> dict[str, Any]:
    """Build a dataset at `out` (its layout by opts.layout); returns golflab's manifest of it."""
    _check(opts)
    srcs = find_sources(sources)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"output {out} already exists and is not empty; remove it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        lay = layout_of(opts, opts.vocab)
        tok, trained = _tokenizer(srcs, opts, work / lay.tokenizers, lay.tokenizer_stem, progress)
        if tok.bos_id is None:
            raise DataError(f"tokenizer {opts.tokenizer} has no BOS/end-of-text token to separate documents")
        if opts.layout == "parameter-golf" and tok.kind != "sentencepiece":
            raise DataError("--layout parameter-golf needs a SentencePiece tokenizer: the reference reads only .model")
        data = work / lay.data
        data.mkdir(parents=True, exist_ok=True)
        skipped: list[str] = []
        stats = _encode_all(srcs, opts, tok.path, tok.bos_id, data, progress, skipped, lay.prefix)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": opts.kind,
            "layout": opts.layout,
            "tokenizer": {
                "file": os.path.relpath(tok.path, data), "kind": tok.kind, "vocab_size": tok.vocab_size,
                "bos_id": tok.bos_id, "sha256": sha256_file(tok.path), "trained": trained,
                "normalization": (PARAMETER_GOLF_SPM["normalization_rule_name"] if opts.tokenizer_recipe ==
                                  "parameter-golf" else opts.normalization) if trained else None,
                "recipe": opts.tokenizer_recipe if trained else None,
            },
            "splits": stats,
            "sources": [s.as_dict() for s in srcs],
            "seed": opts.seed,
            "val_frac": opts.val_frac,
            "test_frac": opts.test_frac,
            "shard_tokens": opts.shard_tokens,
            **({"skipped_lines": skipped} if opts.skip_bad_lines else {}),
            "split_rule": "blake2b(f'{seed}:{doc_index}', 8 bytes, little-endian) / 2**64 < val_frac -> val; "
            "< val_frac + test_frac -> test; else train",
        }
        write_manifest(data, manifest)
        if opts.layout == "parameter-golf":
            write_manifest(work, _reference_manifest(lay, tok, stats))
        if out.exists():
            out.rmdir()
        os.replace(work, out)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _reference_manifest(lay: Layout, tok: Tokenizer, stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """ROOT/manifest.json in the schema of parameter-golf's data script (datasets[], tokenizers[]),
    which golflab also reads to find a parameter-golf dataset's tokenizer."""
    assert tok.path is not None
    name = f"sp_bpe_{tok.vocab_size}"
    model = (lay.tokenizers / tok.path.name).as_posix()
    split_stats = {f"{k}_{s}": st[key] for s, st in stats.items()
                   for k, key in (("docs", "documents"), ("files", "shards"), ("tokens", "tokens"))}
    return {
        "tokenizers": [{"name": name, "kind": "sentencepiece_bpe", "vocab_size": tok.vocab_size,
                        "bos_id": tok.bos_id, "eos_id": tok.eos_id, "model_path": model}],
        "datasets": [{"name": lay.data.name, "tokenizer_name": name, "tokenizer_kind": "sentencepiece_bpe",
                      "path": lay.data.as_posix(), "train_glob": (lay.data / "fineweb_train_*.bin").as_posix(),
                      "val_glob": (lay.data / "fineweb_val_*.bin").as_posix(), "vocab_size": tok.vocab_size,
                      "bos_id": tok.bos_id, "eos_id": tok.eos_id, "stats": split_stats}],
    }


def _tokenizer(
    srcs: list[Source], opts: PrepareOptions, work: Path, stem: str, progress: Progress | None
) -> tuple[Tokenizer, bool]:
    """The tokenizer saved inside `work` (trained ones as `<stem>.model`), and whether it was trained here."""
    work.mkdir(parents=True, exist_ok=True)
    if opts.tokenizer:
        tok = load_tokenizer(opts.tokenizer)
        if tok.vocab_size > MAX_VOCAB:
            raise DataError(f"tokenizer {opts.tokenizer} has vocab {tok.vocab_size} > {MAX_VOCAB} (uint16 shards)")
        if opts.vocab and tok.vocab_size != opts.vocab:
            raise DataError(f"tokenizer {opts.tokenizer} has vocab {tok.vocab_size} but --vocab is {opts.vocab}")
        suffix = TIKTOKEN_SUFFIX if tok.kind == "tiktoken" else ".model"
        name = tok.path.name if tok.path is not None else f"{tok.name}{suffix}"
        saved = tok.save(work / name)
        return load_tokenizer(saved), False
    sample = _sample_train_docs(srcs, opts, progress)
    if progress:
        progress("training the tokenizer", len(sample), sum(len(d) for d in sample))
    tok = train_sentencepiece(sample, opts.vocab, work / stem, normalization=opts.normalization,
                              recipe=opts.tokenizer_recipe, num_threads=opts.workers)
    del sample
    (work / f"{stem}.vocab").unlink(missing_ok=True)
    return tok, True

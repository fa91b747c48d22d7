"""Tokenizers behind one small interface: SentencePiece BPE (trained here) and tiktoken encodings
(in golflab.data.tiktoken_tokenizer, loaded on demand).

golflab's SentencePiece defaults follow parameter-golf (BPE, byte_fallback, split_digits, no dummy
prefix, pad 0 / bos 1 / eos 2 / unk 3) except the normalization: "identity" and no whitespace
collapsing, so decode(encode(text)) == text and byte counts are those of the real text.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from golflab.errors import DataError
from golflab.eval.bpb import ByteTable

TIKTOKEN_SUFFIX = ".tiktoken.json"


class Tokenizer(Protocol):
    """What golflab uses of a tokenizer; SentencePieceTokenizer and TiktokenTokenizer provide it."""

    kind: str  # "sentencepiece" or "tiktoken"
    name: str
    path: Path | None  # the file it was loaded from, if any

    @property
    def vocab_size(self) -> int: ...

    @property
    def bos_id(self) -> int | None: ...

    @property
    def eos_id(self) -> int | None: ...

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: list[str], num_threads: int = 0) -> list[list[int]]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def byte_table(self) -> ByteTable: ...

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer as one file (temp name, then rename) and return its path."""
        ...


class SentencePieceTokenizer:
    kind = "sentencepiece"

    def __init__(self, path: str | Path) -> None:
        import sentencepiece as spm

        self.path = Path(path)  # an existing file (load_tokenizer says when it is not)
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
        except Exception as exc:
            raise DataError(f"tokenizer {self.path} is not a SentencePiece model ({exc})") from None
        self.name = self.path.stem

    @property
    def vocab_size(self) -> int:
        return int(self.sp.vocab_size())

    @property
    def bos_id(self) -> int | None:
        return _opt_id(self.sp.bos_id())

    @property
    def eos_id(self) -> int | None:
        return _opt_id(self.sp.eos_id())

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str], num_threads: int = 0) -> list[list[int]]:
        return self.sp.encode(texts, num_threads=num_threads or -1)

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode(list(ids))

    def byte_table(self) -> ByteTable:
        return ByteTable.from_sentencepiece(self.sp)

    def save(self, path: str | Path) -> Path:
        return _copy_atomic(self.path, Path(path))


def _opt_id(i: int) -> int | None:
    return None if i < 0 else int(i)


def _copy_atomic(src: Path, dst: Path) -> Path:
    if src.resolve() == dst.resolve():
        return dst
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


def load_tokenizer(path_or_name: str | Path) -> Tokenizer:
    """A SentencePiece `.model`, a golflab `*.tiktoken.json`, or a tiktoken encoding name
    (`gpt2`, `tiktoken:gpt2`) whose file is in the local tiktoken cache."""
    spec = str(path_or_name)
    path = Path(spec)
    if not path.is_file():
        if spec.endswith((".model", ".json")) or os.sep in spec:  # meant as a file, not an encoding name
            raise DataError(f"tokenizer {spec} does not exist")
    elif not spec.endswith(TIKTOKEN_SUFFIX):
        return SentencePieceTokenizer(path)
    # tiktoken lives in its own module, which the stand-alone script leaves out (SentencePiece only)
    from golflab.data.tiktoken_tokenizer import load_tiktoken

    return load_tiktoken(spec)


def __getattr__(name: str) -> Any:  # TiktokenTokenizer used to be defined here
    if name == "TiktokenTokenizer":
        from golflab.data.tiktoken_tokenizer import TiktokenTokenizer

        return TiktokenTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _sentences(texts: Iterable[str], max_len: int, max_sentences: int) -> Iterator[str]:
    """Lines of the texts, long lines cut at a space near max_len characters (SentencePiece skips
    sentences longer than max_sentence_length bytes, so cut in characters with a margin for UTF-8)."""
    n = 0
    limit = max(16, max_len // 4)
    for text in texts:
        for line in text.split("\n"):
            while line:
                if len(line) <= limit:
                    piece, line = line, ""
                else:
                    cut = line.rfind(" ", limit // 2, limit)
                    cut = limit if cut <= 0 else cut
                    piece, line = line[:cut], line[cut:]
                yield piece
                n += 1
                if n >= max_sentences:
                    return


# parameter-golf's data/download_hf_docs_and_tokenize.py (build_sentencepiece_tokenizer): the trainer's
# arguments, and whole documents (NUL -> space, stripped, empty ones skipped) as its sentences.
PARAMETER_GOLF_SPM = dict(model_type="bpe", character_coverage=0.999, byte_fallback=True, split_digits=True,
                          normalization_rule_name="nmt_nfkc", add_dummy_prefix=False, pad_id=0, bos_id=1,
                          eos_id=2, unk_id=3, hard_vocab_limit=False)
RECIPES = ("golflab", "parameter-golf")


def _documents_as_sentences(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        text = text.replace("\x00", " ").strip()
        if text:
            yield text


def train_sentencepiece(
    texts: Iterable[str],
    vocab_size: int,
    out_prefix: str | Path,
    *,
    normalization: str = "identity",
    recipe: str = "golflab",
    max_sentences: int = 2_000_000,
    max_sentence_length: int = 16384,
    character_coverage: float = 0.9995,
    num_threads: int = 0,
) -> SentencePieceTokenizer:
    """Train a BPE model; writes `<out_prefix>.model` and `.vocab`.

    recipe "golflab": the lines of `texts`, `normalization` (identity keeps text and bytes exact),
    whitespace-only pieces allowed. recipe "parameter-golf": exactly the reference's settings
    (nmt_nfkc, whitespace collapsed, byte fallback, documents as sentences; `normalization`,
    `max_sentence*` and `character_coverage` do not apply)."""
    import sentencepiece as spm

    if recipe not in RECIPES:
        raise DataError(f"tokenizer recipe {recipe!r} is unknown; expected one of {', '.join(RECIPES)}")
    if vocab_size < 260:
        raise DataError(f"vocab size {vocab_size} is too small: byte fallback alone needs 256 + 4 ids")
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    threads = num_threads or os.cpu_count() or 1
    if recipe == "parameter-golf":
        docs = list(_documents_as_sentences(texts))
        if not docs:
            raise DataError(f"no text to train the tokenizer {out_prefix} on")
        try:
            spm.SentencePieceTrainer.train(sentence_iterator=iter(docs), model_prefix=str(out_prefix),
                                           vocab_size=vocab_size, num_threads=threads, minloglevel=2,
                                           **PARAMETER_GOLF_SPM)
        except RuntimeError as exc:
            raise DataError(f"SentencePiece training for {out_prefix} failed: {exc}") from None
        return SentencePieceTokenizer(f"{out_prefix}.model")
    sentences = list(_sentences(texts, max_sentence_length, max_sentences))
    if not sentences:
        raise DataError(f"no text to train the tokenizer {out_prefix} on")
    args: dict[str, Any] = dict(
        model_prefix=str(out_prefix),
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=False,
        allow_whitespace_only_pieces=True,
        normalization_rule_name=normalization,
        remove_extra_whitespaces=normalization != "identity",
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        max_sentence_length=max_sentence_length,
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        hard_vocab_limit=False,
        num_threads=threads,
        minloglevel=2,
    )
    # A small vocab cannot hold every character of a varied corpus next to the 256 byte pieces:
    # lower the character coverage until it fits (rare characters fall back to bytes anyway).
    coverages = [character_coverage] + [c for c in (0.999, 0.995, 0.99, 0.98) if c < character_coverage]
    for i, coverage in enumerate(coverages):
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences), character_coverage=coverage, **args
            )
            break
        except RuntimeError as exc:
            if "required_chars" not in str(exc) or i == len(coverages) - 1:
                raise DataError(f"SentencePiece training for {out_prefix} failed: {exc}") from None
    return SentencePieceTokenizer(f"{out_prefix}.model")

"""Tokenizer loading, saving and errors."""

from __future__ import annotations

import pytest

from golflab.data.tokenizers import (
    SentencePieceTokenizer,
    TiktokenTokenizer,
    load_tokenizer,
    train_sentencepiece,
)
from golflab.errors import DataError
from tests.test_bpb import _docs, _tiny_tiktoken


def test_sentencepiece_ids_and_long_lines(tmp_path):
    docs = _docs(100, 0)
    docs.append("word " * 20000)  # one 100 kB line: must be cut, not silently skipped
    tok = train_sentencepiece(docs, 400, tmp_path / "m", max_sentence_length=4096)
    assert isinstance(tok, SentencePieceTokenizer)
    assert (tok.vocab_size, tok.bos_id, tok.eos_id) == (400, 1, 2)
    assert tok.sp.pad_id() == 0 and tok.sp.unk_id() == 3
    again = load_tokenizer(tmp_path / "m.model")
    assert again.encode("the fox") == tok.encode("the fox")
    assert tok.encode_batch(["a b", "the dog"], num_threads=2) == [tok.encode("a b"), tok.encode("the dog")]
    saved = tok.save(tmp_path / "copy.model")
    assert saved.read_bytes() == (tmp_path / "m.model").read_bytes()


def test_tiktoken_save_and_load(tmp_path):
    tok = TiktokenTokenizer(_tiny_tiktoken())
    path = tok.save(tmp_path / "tiny.tiktoken.json")
    again = load_tokenizer(path)
    assert isinstance(again, TiktokenTokenizer)
    text = "the café, the end"
    assert again.encode(text) == tok.encode(text) and again.vocab_size == tok.vocab_size
    assert again.bos_id == tok.bos_id


def test_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_tokenizer(tmp_path / "nope.model")
    with pytest.raises(DataError, match="neither a file nor a tiktoken"):
        load_tokenizer("no-such-encoding")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(DataError, match="not a SentencePiece model"):
        load_tokenizer(bad)
    with pytest.raises(DataError, match="too small"):
        train_sentencepiece(["a"], 100, tmp_path / "small")

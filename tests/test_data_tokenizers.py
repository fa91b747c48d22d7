"""Tokenizer loading, saving and errors."""

from __future__ import annotations

import itertools

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


# ---- the parameter-golf recipe ----------------------------------------------------------------
def _reference_bytes(sp, ids):
    """Bytes of a BOS-prefixed token sequence by the reference's rule (parameter-golf train_gpt.py,
    build_sentencepiece_luts + eval_val): control/unknown/unused pieces are boundaries and count 0, byte
    pieces 1, others the UTF-8 length of the piece without one leading '▁', plus 1 for that '▁' unless
    the previous token is a boundary."""
    total = 0
    for prev, tok in itertools.pairwise(ids):
        if sp.is_control(tok) or sp.is_unknown(tok) or sp.is_unused(tok):
            continue
        if sp.is_byte(tok):
            total += 1
            continue
        piece = sp.id_to_piece(tok)
        boundary_before = sp.is_control(prev) or sp.is_unknown(prev) or sp.is_unused(prev)
        if piece.startswith("▁"):
            piece = piece[1:]
            total += 0 if boundary_before else 1
        total += len(piece.encode("utf-8"))
    return total


def _golflab_bytes(tok, ids):
    import torch

    t = torch.tensor(ids)
    return int(tok.byte_table().token_bytes(t[1:], t[:-1]).sum())


CODE = ["def f(x):\n    if x:\n        return  x  +  1\n    return 0\n" * 3, "class A:\n    pass\n\n\n" * 4]


def test_parameter_golf_recipe_is_the_references_and_its_byte_counts_agree(tmp_path):
    from sentencepiece import sentencepiece_model_pb2

    docs = _docs(200, 5) + CODE * 20
    tok = train_sentencepiece(docs, 400, tmp_path / "pg", recipe="parameter-golf")
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((tmp_path / "pg.model").read_bytes())
    t, n = proto.trainer_spec, proto.normalizer_spec
    # data/download_hf_docs_and_tokenize.py, build_sentencepiece_tokenizer:
    assert (t.model_type, t.vocab_size, t.byte_fallback, t.split_digits, t.hard_vocab_limit) == (2, 400, True, True, False)
    assert abs(t.character_coverage - 0.999) < 1e-6 and (t.pad_id, t.bos_id, t.eos_id, t.unk_id) == (0, 1, 2, 3)
    assert n.name == "nmt_nfkc" and not n.add_dummy_prefix and n.remove_extra_whitespaces
    assert not t.allow_whitespace_only_pieces
    for text in docs[:20] + CODE:
        ids = [tok.bos_id, *tok.encode(text)]
        assert _golflab_bytes(tok, ids) == _reference_bytes(tok.sp, ids)


def test_golflab_recipe_counts_true_bytes_where_the_references_rule_does_not(tmp_path):
    tok = train_sentencepiece(CODE * 40, 300, tmp_path / "g")  # identity normalization, whitespace pieces
    ids = [tok.bos_id, *tok.encode(CODE[0])]
    assert tok.decode(ids[1:]) == CODE[0]
    assert _golflab_bytes(tok, ids) == len(CODE[0].encode("utf-8"))  # exact
    assert _reference_bytes(tok.sp, ids) > len(CODE[0].encode("utf-8"))  # inner '▁' counted as 3 bytes


def test_unknown_recipe(tmp_path):
    with pytest.raises(DataError, match="recipe 'x' is unknown"):
        train_sentencepiece(["a b c"], 300, tmp_path / "x", recipe="x")

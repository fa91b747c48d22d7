"""val_bpb is proven two independent ways: table bytes equal the real UTF-8 bytes of the text, and a
uniform model scores exactly log2(V) * tokens / bytes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golflab.data.tokenizers import TiktokenTokenizer, train_sentencepiece
from golflab.eval.bpb import BpbAccumulator, ByteTable, val_bpb

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "déjà", "vu", "naïve", "café",
         "x=1;", "f(y)", "12345", "  ", "\t", "über", "日本", "🎉", "résumé", "--flag", "'quoted'"]


def _docs(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        words = [WORDS[j] for j in rng.integers(0, len(WORDS), size=rng.integers(5, 60))]
        seps = rng.choice([" ", " ", " ", "  ", "\n", "\n\n"], size=len(words))
        text = "".join(w + s for w, s in zip(words, seps, strict=True))
        docs.append((" " if i % 5 == 0 else "") + text)  # some documents start with a space
    return docs


@pytest.fixture(scope="module")
def sp(tmp_path_factory):
    return train_sentencepiece(_docs(400, 0), 400, tmp_path_factory.mktemp("sp") / "tok")


def _stream(tok, docs):
    """Documents as shards store them: BOS + tokens each, concatenated."""
    ids = []
    for d in docs:
        ids += [tok.bos_id, *tok.encode(d)]
    return torch.tensor(ids)


def test_sentencepiece_round_trip_and_table_bytes_equal_utf8(sp):
    docs = _docs(50, 1)  # unseen text, including characters only byte fallback can encode
    docs.append("unseen ☃ Ω≈ç√ ∫ and 中文字符")
    for d in docs:
        assert sp.decode(sp.encode(d)) == d
    stream = _stream(sp, docs)
    nbytes = sp.byte_table().token_bytes(stream[1:], stream[:-1])
    assert int(nbytes.sum()) == sum(len(d.encode("utf-8")) for d in docs)
    assert int(nbytes[stream[1:] == sp.bos_id].sum()) == 0


def test_parameter_golf_rule_with_whitespace_collapsing_model(tmp_path):
    """A normalizing model drops leading spaces: the U+2581 after BOS must not count, and the table
    then matches the bytes of the decoded (normalized) text."""
    tok = train_sentencepiece(_docs(200, 2), 400, tmp_path / "nfkc", normalization="nmt_nfkc")
    table = tok.byte_table()
    assert bool(table.has_leading_space.any())
    docs = _docs(30, 3)
    stream = _stream(tok, docs)
    nbytes = table.token_bytes(stream[1:], stream[:-1])
    assert int(nbytes.sum()) == sum(len(tok.decode(tok.encode(d)).encode("utf-8")) for d in docs)


def test_uniform_model_gives_log2_vocab_per_token(sp):
    docs = _docs(20, 4)
    stream = _stream(sp, docs)
    x, y = stream[:-1].reshape(1, -1), stream[1:].reshape(1, -1)
    v = sp.vocab_size
    nats = torch.full(y.shape, math.log(v), dtype=torch.float32)
    loss, bpb = val_bpb(nats, y, sp.byte_table(), prev=x)
    true_bytes = sum(len(d.encode("utf-8")) for d in docs)
    assert loss == pytest.approx(math.log(v), rel=1e-6)
    assert bpb == pytest.approx(math.log2(v) * y.numel() / true_bytes, rel=1e-6)


def test_accumulator_equals_one_shot(sp):
    stream = _stream(sp, _docs(10, 5))
    x, y = stream[:-1], stream[1:]
    nats = torch.rand(y.shape, generator=torch.Generator().manual_seed(0)) * 5
    table = sp.byte_table()
    acc = BpbAccumulator()
    for part in torch.arange(y.numel()).chunk(7):
        acc.add(nats[part], y[part], table, x[part])
    acc.all_reduce()  # no process group: a no-op
    assert acc.tokens == y.numel()
    assert acc.bytes == int(table.token_bytes(y, x).sum())
    one = val_bpb(nats, y, table, x)
    assert acc.result() == pytest.approx(one, rel=1e-12)


def _tiny_tiktoken():
    import tiktoken

    ranks = {bytes([i]): i for i in range(256)}
    for word in [b"th", b"the", b" the", b"ca", b"caf"]:
        ranks[word] = len(ranks)
    return tiktoken.Encoding(
        name="tiny",
        pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": len(ranks)},
    )


def test_tiktoken_table_bytes_equal_utf8(tmp_path):
    tok = TiktokenTokenizer(_tiny_tiktoken())
    assert tok.vocab_size == 262 and tok.bos_id == 261
    docs = [*_docs(30, 7), "the café <|endoftext|> is literal text"]
    for d in docs:
        assert tok.decode(tok.encode(d)) == d
    stream = _stream(tok, docs)
    table = tok.byte_table()
    assert int(table.base_bytes[tok.bos_id]) == 0 and bool(table.is_boundary[tok.bos_id])
    assert int(table.token_bytes(stream[1:], stream[:-1]).sum()) == sum(len(d.encode()) for d in docs)
    assert tok.encode_batch(docs[:3]) == [tok.encode(d) for d in docs[:3]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_token_bytes_on_cuda(sp):
    stream = _stream(sp, _docs(5, 8))
    table = sp.byte_table()
    cpu = table.token_bytes(stream[1:], stream[:-1])
    gpu = table.to("cuda").token_bytes(stream[1:].cuda(), stream[:-1].cuda())
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)


def test_table_shape_check():
    with pytest.raises(AssertionError):
        ByteTable([1, 2], [False], [False, True])

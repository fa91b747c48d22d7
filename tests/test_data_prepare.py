"""prepare text: sources of every kind, deterministic document split, shards, manifest, errors."""

from __future__ import annotations

import gzip
import json
import lzma

import numpy as np
import pytest

from golflab.data.dataset import Dataset
from golflab.data.prepare import PrepareOptions, prepare_text, split_of
from golflab.data.shards import open_shard
from golflab.data.sources import find_sources, iter_documents
from golflab.errors import DataError
from tests.test_bpb import _docs


def _jsonl(path, docs, opener=open):
    with opener(path, "wt", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d, "source": "t"}) + "\n")
    return path


def _read_split(ds, split):
    return np.concatenate([np.asarray(open_shard(f)) for f in ds.split_files(split)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    docs = _docs(300, 11)
    _jsonl(d / "a.jsonl.xz", docs[:200], lzma.open)
    _jsonl(d / "b.txt.gz", docs[200:], gzip.open)  # JSON Lines under .txt: sniffed
    return d, docs


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    src, docs = corpus
    out = tmp_path_factory.mktemp("ds") / "data"
    opts = PrepareOptions(vocab=400, val_frac=0.1, test_frac=0.1, seed=3, shard_tokens=3000, workers=2)
    manifest = prepare_text([src], out, opts)
    return out, manifest, docs, opts


def test_prepare_writes_a_valid_dataset(prepared):
    out, manifest, docs, _opts = prepared
    ds = Dataset.open(out)
    tok = ds.tokenizer
    assert ds.vocab_size == 400 and ds.bos_id == 1 and ds.layout == "golflab"
    expected = {s: [d for i, d in enumerate(docs) if split_of(i, 3, 0.1, 0.1) == s] for s in ("train", "val", "test")}
    for split, split_docs in expected.items():
        stream = _read_split(ds, split)
        assert stream[0] == tok.bos_id
        # documents come back in order, each BOS + tokens, decoding to the exact text
        pieces = np.split(stream, np.flatnonzero(stream == tok.bos_id)[1:])
        assert [tok.decode(p[1:].tolist()) for p in pieces] == split_docs
        st = manifest["splits"][split]
        assert st["documents"] == len(split_docs)
        assert st["tokens"] == stream.size
        assert st["bytes"] == sum(len(d.encode()) for d in split_docs)
        assert st["shards"] == len(ds.split_files(split)) == -(-stream.size // 3000)
    assert manifest["tokenizer"]["trained"] and (out / "tokenizer.model").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # temp dir renamed away


def test_prepare_is_deterministic_and_workers_do_not_matter(prepared, tmp_path):
    out, _, _, opts = prepared
    src = [s["path"] for s in json.loads((out / "manifest.json").read_text())["sources"]]
    again = tmp_path / "again"
    prepare_text(src, again, PrepareOptions(**{**opts.__dict__, "workers": 1}))
    for f in sorted(out.glob("*.bin")):
        assert (again / f.name).read_bytes() == f.read_bytes()


def test_existing_tokenizer_is_reused(prepared, tmp_path):
    out, _, _, _opts = prepared
    src = [s["path"] for s in json.loads((out / "manifest.json").read_text())["sources"]]
    other = tmp_path / "other"
    manifest = prepare_text(src, other, PrepareOptions(tokenizer=str(out / "tokenizer.model"), val_frac=0.2, workers=1))
    assert manifest["tokenizer"]["sha256"] == json.loads((out / "manifest.json").read_text())["tokenizer"]["sha256"]
    assert not manifest["tokenizer"]["trained"] and "test" not in manifest["splits"]
    with pytest.raises(DataError, match="has vocab 400 but --vocab is 512"):
        prepare_text(src, tmp_path / "x", PrepareOptions(vocab=512, tokenizer=str(out / "tokenizer.model")))


def test_txt_modes_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.txt").write_text("p1 line1\np1 line2\n\n\np2\n")
    pq.write_table(pa.table({"body": ["x", None, "y"]}), tmp_path / "c.parquet", row_group_size=1)
    srcs = find_sources([tmp_path])
    assert [s.format for s in srcs] == ["txt", "parquet"]
    assert list(iter_documents(srcs[:1])) == ["p1 line1\np1 line2\n\n\np2\n"]
    assert list(iter_documents(srcs[:1], txt_docs="paragraph")) == ["p1 line1\np1 line2", "p2"]
    assert list(iter_documents(srcs[:1], txt_docs="line")) == ["p1 line1", "p1 line2", "p2"]
    assert list(iter_documents(srcs[1:], column="body")) == ["x", "y"]
    with pytest.raises(DataError, match="has no column 'text'"):
        list(iter_documents(srcs[1:]))


def test_source_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_sources([tmp_path / "nope.txt"])
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(DataError, match="is empty"):
        find_sources([tmp_path / "e.txt"])
    (tmp_path / "d.csv").write_text("a,b")
    with pytest.raises(DataError, match="unsupported extension"):
        find_sources([tmp_path / "d.csv"])
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"body": 1}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl line 2 has no string field 'text'"):
        list(iter_documents(find_sources([tmp_path / "bad.jsonl"])))


def test_prepare_errors(tmp_path):
    (tmp_path / "one.txt").write_text("only one document here")
    src = [tmp_path / "one.txt"]
    with pytest.raises(DataError, match="over 65536"):
        prepare_text(src, tmp_path / "o1", PrepareOptions(vocab=70000))
    with pytest.raises(DataError, match="--vocab is required"):
        prepare_text(src, tmp_path / "o2", PrepareOptions())
    with pytest.raises(DataError, match="split is empty"):
        prepare_text(src, tmp_path / "o3", PrepareOptions(vocab=300, workers=1, tokenizer=""))
    assert not (tmp_path / "o3").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(DataError, match="already exists"):
        prepare_text(src, tmp_path / "full", PrepareOptions(vocab=300))


# ---- --layout parameter-golf ------------------------------------------------------------------
def _read_shard_from_spec(path):
    """A loader written from the format's description alone (parameter-golf train_gpt.py,
    load_data_shard): 256 little-endian int32 header words, word 0 the magic 20240520, word 1 the
    version 1, word 2 the token count; then that many little-endian uint16 tokens, nothing after."""
    raw = path.read_bytes()
    header = np.frombuffer(raw[:1024], dtype="<i4")
    assert header.size == 256 and header[0] == 20240520 and header[1] == 1
    count = int(header[2])
    assert len(raw) == 1024 + 2 * count
    return np.frombuffer(raw[1024:], dtype="<u2")


def test_parameter_golf_layout_is_where_the_reference_looks_and_golflab_reads_it(corpus, tmp_path):
    d, _ = corpus
    out = tmp_path / "pg"
    prepare_text([d], out, PrepareOptions(vocab=320, val_frac=0.1, seed=3, workers=1, layout="parameter-golf",
                                          tokenizer_recipe="parameter-golf"))
    # the reference's defaults: DATA_PATH=./data/datasets/fineweb10B_sp1024 (fineweb_{train,val}_*.bin),
    # TOKENIZER_PATH=./data/tokenizers/fineweb_1024_bpe.model
    data, model = out / "datasets" / "fineweb10B_sp320", out / "tokenizers" / "fineweb_320_bpe.model"
    assert sorted(p.name for p in data.glob("fineweb_*.bin")) == ["fineweb_train_000000.bin", "fineweb_val_000000.bin"]
    assert model.is_file()
    ds = Dataset.open(data)
    for split in ("train", "val"):
        (f,) = data.glob(f"fineweb_{split}_*.bin")
        tokens = _read_shard_from_spec(f)
        assert np.array_equal(tokens, _read_split(ds, split))
        assert tokens[0] == ds.bos_id == 1
    assert int((_read_shard_from_spec(data / "fineweb_val_000000.bin") == 1).sum()) == ds.manifest["splits"]["val"]["documents"]
    (data / "manifest.json").unlink()  # as a bare parameter-golf folder: the tokenizer comes from ROOT/manifest.json
    bare = Dataset.open(data)
    assert bare.layout == "parameter-golf" and bare.tokenizer_path.resolve() == model.resolve()
    assert np.array_equal(_read_split(bare, "val"), _read_split(ds, "val"))


def test_parameter_golf_layout_errors(corpus, tmp_path):
    d, _ = corpus
    with pytest.raises(DataError, match="--layout 'x' is unknown"):
        prepare_text([d], tmp_path / "o", PrepareOptions(vocab=320, layout="x"))

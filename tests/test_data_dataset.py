"""Dataset.open on golflab and parameter-golf layouts, and prepare fineweb against a local hub copy."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from golflab.data.dataset import Dataset, open_dataset, write_manifest
from golflab.data.fineweb import download_fineweb, hub_fetcher
from golflab.data.shards import write_shard
from golflab.data.tokenizers import train_sentencepiece
from golflab.errors import DataError
from tests.test_bpb import _docs


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    train_sentencepiece(_docs(200, 0), 400, d / "fineweb_1024_bpe")
    return d / "fineweb_1024_bpe.model"


def _tokens(n, seed=0):
    toks = np.random.default_rng(seed).integers(4, 400, size=n)
    toks[::50] = 1
    return toks


def _golflab_dir(tmp_path, sp_model, **tok_entry):
    from golflab.data.dataset import sha256_file

    d = tmp_path / "ds"
    d.mkdir()
    for split, n in (("train", 2), ("val", 1)):
        for i in range(n):
            write_shard(d / f"{split}_{i:06d}.bin", _tokens(300, i))
    (d / "tokenizer.model").write_bytes(sp_model.read_bytes())
    entry = {"file": "tokenizer.model", "kind": "sentencepiece", "vocab_size": 400, "bos_id": 1,
             "sha256": sha256_file(sp_model), **tok_entry}
    write_manifest(d, {"format": "golflab-dataset", "format_version": 1, "tokenizer": entry,
                       "splits": {"train": {"shards": 2}, "val": {"shards": 1}}})
    return d


def test_golflab_layout(tmp_path, sp_model):
    ds = Dataset.open(_golflab_dir(tmp_path, sp_model))
    assert [f.name for f in ds.split_files("train")] == ["train_000000.bin", "train_000001.bin"]
    assert ds.split_files("test") == []
    assert (ds.vocab_size, ds.bos_id, ds.layout) == (400, 1, "golflab")
    assert ds.tokenizer_path.name == "tokenizer.model" and ds.manifest["format_version"] == 1
    with pytest.raises(AssertionError, match="unknown split"):  # golflab's callers pass only these
        ds.split_files("dev")


def test_golflab_layout_errors(tmp_path, sp_model):
    with pytest.raises(DataError, match="does not exist"):
        Dataset.open(tmp_path / "missing")
    d = _golflab_dir(tmp_path, sp_model, vocab_size=1024)
    with pytest.raises(DataError, match=r"has vocab 400 but the shards' manifest says 1024"):
        Dataset.open(d)
    m = json.loads((d / "manifest.json").read_text())
    m["tokenizer"].update(vocab_size=400, sha256="0" * 64)
    write_manifest(d, m)
    with pytest.raises(DataError, match="sha256 mismatch"):
        Dataset.open(d)
    m["tokenizer"].pop("sha256")
    write_manifest(d, m)
    assert Dataset.open(d).vocab_size == 400
    (d / "tokenizer.model").unlink()
    with pytest.raises(DataError, match=r"tokenizer .*tokenizer\.model of dataset .* does not exist"):
        Dataset.open(d)
    for f in d.glob("val_*.bin"):
        f.unlink()
    with pytest.raises(DataError, match="lists 1 val shards but"):
        Dataset.open(d, tokenizer=str(sp_model))
    m["splits"] = {}
    write_manifest(d, m)
    with pytest.raises(DataError, match=r"no val shards \(val_\*\.bin\)"):
        Dataset.open(d, tokenizer=str(sp_model))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"neither a golflab manifest\.json nor"):
        Dataset.open(empty)


def _hub_tree(root, sp_model, files_train=3, files_val=1):
    """A directory laid out like parameter-golf's export on the hub (ROOT = <repo>/datasets)."""
    data = root / "datasets" / "fineweb10B_sp1024"
    data.mkdir(parents=True)
    for i in range(files_val):
        write_shard(data / f"fineweb_val_{i:06d}.bin", _tokens(500, 100 + i))
    for i in range(files_train):
        write_shard(data / f"fineweb_train_{i:06d}.bin", _tokens(700, i))
    (root / "tokenizers").mkdir()
    (root / "tokenizers" / sp_model.name).write_bytes(sp_model.read_bytes())
    (root / "tokenizers" / "fineweb_1024_bpe.vocab").write_text("vocab")
    manifest = {
        "datasets": [{"name": "fineweb10B_sp1024", "tokenizer_name": "sp_bpe_1024",
                      "stats": {"files_train": files_train, "files_val": files_val}}],
        "tokenizers": [{"name": "sp_bpe_1024", "vocab_size": 400,
                        "model_path": f"tokenizers/{sp_model.name}", "vocab_path": "tokenizers/fineweb_1024_bpe.vocab"}],
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return data


def test_parameter_golf_layout_finds_tokenizer_two_levels_up(tmp_path, sp_model):
    data = _hub_tree(tmp_path, sp_model)
    ds = Dataset.open(data)
    assert ds.layout == "parameter-golf" and ds.tokenizer_path == tmp_path / "tokenizers" / sp_model.name
    assert [f.name for f in ds.split_files("val")] == ["fineweb_val_000000.bin"]
    assert len(ds.split_files("train")) == 3 and ds.bos_id == 1
    explicit = Dataset.open(data, tokenizer=str(sp_model))
    assert explicit.tokenizer_path == sp_model
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(DataError, match="has no tokenizer"):
        Dataset.open(data)


def test_unchecked_open_reads_both_layouts_as_the_checked_one(tmp_path, sp_model):
    """check=False (the exported script) resolves the same dataset, only without the checks."""
    def seen(ds):
        return ds.layout, ds.tokenizer_path, ds.split_files("train"), ds.split_files("val"), ds.vocab_size, ds.bos_id

    for d in (_golflab_dir(tmp_path, sp_model), _hub_tree(tmp_path / "hub", sp_model)):
        assert seen(open_dataset(d, check=False)) == seen(Dataset.open(d))
        assert seen(open_dataset(d, str(sp_model), check=False)) == seen(Dataset.open(d, str(sp_model)))
    (tmp_path / "bad").mkdir()
    d = _golflab_dir(tmp_path / "bad", sp_model, vocab_size=1024)  # a wrong manifest goes unnoticed
    assert open_dataset(d, check=False).vocab_size == 400


def test_prepare_fineweb_from_local_hub_copy(tmp_path, sp_model):
    hub = tmp_path / "hub"
    _hub_tree(hub, sp_model)
    fetched = []

    def fetch(rel):
        fetched.append(rel)
        return hub / rel

    out = tmp_path / "fw"
    manifest = download_fineweb(out, "sp1024", 2, fetch)
    assert fetched[0] == "manifest.json"
    assert "datasets/fineweb10B_sp1024/fineweb_train_000002.bin" not in fetched
    ds = Dataset.open(out)
    assert [f.name for f in ds.split_files("train")] == ["fineweb_train_000000.bin", "fineweb_train_000001.bin"]
    assert manifest["splits"]["train"]["tokens"] == 1400 and manifest["splits"]["val"]["tokens"] == 500
    assert ds.tokenizer_path.name == sp_model.name and ds.vocab_size == 400
    with pytest.raises(DataError, match="between 1 and 3"):
        download_fineweb(tmp_path / "x", "sp1024", 4, fetch)
    with pytest.raises(DataError, match="no dataset fineweb10B_sp4096"):
        download_fineweb(tmp_path / "y", "sp4096", 1, fetch)


def test_prepare_fineweb_validates_downloaded_shards(tmp_path, sp_model):
    hub = tmp_path / "hub"
    data = _hub_tree(hub, sp_model)
    (data / "fineweb_train_000000.bin").write_bytes(b"\0" * 2048)
    with pytest.raises(DataError, match=r"fineweb_train_000000\.bin has magic 0"):
        download_fineweb(tmp_path / "fw", "sp1024", 1, lambda rel: hub / rel)


def test_hub_fetcher_offline_gives_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    fetch = hub_fetcher("nobody/no-such-golflab-repo", "datasets")
    with pytest.raises(DataError, match=r"could not download datasets/manifest\.json from the Hugging Face dataset"):
        fetch("manifest.json")
    assert not os.path.exists(tmp_path / "fw")

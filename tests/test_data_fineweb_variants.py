"""prepare fineweb's variant table: which Hugging Face repo holds each tokenizer variant the records
use, and the paths and URLs built from it (offline: nothing is downloaded)."""

import subprocess
import sys

import pytest

from golflab.data import fineweb
from golflab.data.fineweb import PG_REPO, VARIANTS, download_fineweb, hub_url, remote_path, variant_source
from golflab.errors import DataError


def test_the_records_variants_come_from_the_repos_they_name():
    assert variant_source("sp1024") == (PG_REPO, "datasets")
    # records 2026-04-01 (sp4096) and 2026-04-05 (sp8192): MATCHED_FINEWEB_REPO_ID=kevclark/parameter-golf
    assert variant_source("sp4096") == ("kevclark/parameter-golf", "datasets")
    assert variant_source("sp8192") == ("kevclark/parameter-golf", "datasets")
    assert all(v.source and v.train_shards > 0 for v in VARIANTS.values())


def test_explicit_repo_and_root_win_and_an_unknown_variant_needs_a_repo():
    assert variant_source("sp8192", "me/mine", "") == ("me/mine", "")
    assert variant_source("sp2048", "me/mine") == ("me/mine", "datasets")
    with pytest.raises(DataError, match=r"unknown fineweb variant 'sp2048'.*--repo-id"):
        variant_source("sp2048")


def test_remote_paths_and_urls():
    rel = "datasets/fineweb10B_sp8192/fineweb_val_000000.bin"
    assert remote_path("datasets", rel) == "datasets/" + rel
    assert remote_path("/", rel) == rel
    assert hub_url(*variant_source("sp8192"), rel) == \
        "https://huggingface.co/datasets/kevclark/parameter-golf/resolve/main/datasets/" + rel


def test_download_uses_the_variants_repo(tmp_path, monkeypatch):
    asked = []

    def fake_fetcher(repo_id, remote_root):
        asked.append((repo_id, remote_root))

        def fetch(rel):
            raise DataError(f"offline: {rel}")
        return fetch

    monkeypatch.setattr(fineweb, "hub_fetcher", fake_fetcher)
    with pytest.raises(DataError, match=r"offline: manifest\.json"):
        download_fineweb(tmp_path / "fw", "sp8192", 1)
    assert asked == [("kevclark/parameter-golf", "datasets")]


def test_cli_unknown_variant_is_one_error_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "golflab", "prepare", "fineweb", "--variant", "sp2048",
                          "--out", str(tmp_path / "fw")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown fineweb variant 'sp2048'" in lines[0] and "Traceback" not in res.stderr

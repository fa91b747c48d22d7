"""`golflab prepare fineweb`: download parameter-golf's published FineWeb exports.

Each tokenizer variant lives in a Hugging Face dataset repo (VARIANTS: sp1024 in the challenge's own,
sp4096 / sp8192 in kevclark/parameter-golf, where the records that use them point). Remote layout
(relative to the export root, `datasets` in both):
  manifest.json                                   datasets[] (name, tokenizer_name, stats.files_train/val)
                                                  tokenizers[] (name, model_path / vocab_path / path)
  datasets/fineweb10B_<variant>/fineweb_val_000000.bin ..., fineweb_train_000000.bin ...
  tokenizers/fineweb_1024_bpe.model ...
Downloads go through a `fetch(relative_path) -> local Path` callable (hf_hub_download by default),
so tests can serve a local directory. The shards keep their names; a golflab manifest.json makes the
directory a golflab dataset (`Dataset.open(DIR)`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golflab.data.dataset import FORMAT, FORMAT_VERSION, sha256_file, write_manifest
from golflab.data.shards import read_header
from golflab.data.tokenizers import load_tokenizer
from golflab.errors import DataError

Fetch = Callable[[str], Path]

PG_REPO = "willdepueoai/parameter-golf"  # the challenge's own export (openai/parameter-golf data/README.md)


@dataclass(frozen=True)
class Variant:
    repo_id: str
    remote_root: str
    train_shards: int  # what the records download (each shard 100M tokens)
    source: str  # where that is stated


VARIANTS: dict[str, Variant] = {
    "sp1024": Variant(PG_REPO, "datasets", 80, "openai/parameter-golf data/README.md (default: 80 train shards)"),
    "sp4096": Variant("kevclark/parameter-golf", "datasets", 143,
                      "records/track_10min_16mb/2026-04-01_Vocab4096_MLPMult4_WD085/README.md"),
    "sp8192": Variant("kevclark/parameter-golf", "datasets", 128,
                      "records/track_10min_16mb/2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2/README.md"),
}


def variant_source(variant: str, repo_id: str = "", remote_root: str | None = None) -> tuple[str, str]:
    """(repo id, export root) of a variant: the ones given, else the table's; an unknown variant needs a repo."""
    known = VARIANTS.get(variant)
    if not repo_id and known is None:
        raise DataError(f"unknown fineweb variant {variant!r} (known: {', '.join(VARIANTS)}); "
                        "name the dataset repo that holds it with --repo-id")
    root = remote_root if remote_root is not None else (known.remote_root if known else "datasets")
    return repo_id or known.repo_id, root  # type: ignore[union-attr]


def remote_path(remote_root: str, rel: str) -> str:
    """Path inside the repo of `rel` (relative to the export root)."""
    return f"{remote_root.strip('/')}/{rel}" if remote_root.strip("/") else rel


def hub_url(repo_id: str, remote_root: str, rel: str) -> str:
    """The download URL of `rel` (what hf_hub_download fetches; for messages and tests, no network)."""
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, remote_path(remote_root, rel), repo_type="dataset")


def hub_fetcher(repo_id: str = PG_REPO, remote_root: str = "datasets") -> Fetch:
    """fetch(rel) downloads `<remote_root>/<rel>` of the HF dataset repo and returns the cached file."""

    def fetch(rel: str) -> Path:
        from huggingface_hub import hf_hub_download

        remote = remote_path(remote_root, rel)
        try:
            return Path(hf_hub_download(repo_id=repo_id, filename=remote, repo_type="dataset"))
        except Exception as exc:  # offline, missing file, auth: one clear line
            raise DataError(
                f"could not download {remote} from the Hugging Face dataset {repo_id}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None

    return fetch


def _entries(manifest: dict[str, Any], variant: str) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"fineweb10B_{variant}"
    dataset = next((d for d in manifest.get("datasets", []) if d.get("name") == name), None)
    if dataset is None:
        known = ", ".join(str(d.get("name", "?")).removeprefix("fineweb10B_") for d in manifest.get("datasets", []))
        raise DataError(f"the export's manifest.json has no dataset {name} (variants: {known})")
    tok_name = dataset.get("tokenizer_name")
    tok = next((t for t in manifest.get("tokenizers", []) if t.get("name") == tok_name), None)
    if tok is None:
        raise DataError(f"the export's manifest.json has no tokenizer {tok_name!r} for {name}")
    return dataset, tok


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src.resolve(), tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def download_fineweb(
    out: str | Path, variant: str, train_shards: int, fetch: Fetch | None = None,
    on_file: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fetch all val shards, the first `train_shards` train shards and the tokenizer into `out` (from the
    variant's repo in VARIANTS unless `fetch` says otherwise)."""
    fetch = fetch or hub_fetcher(*variant_source(variant))
    out = Path(out)
    remote_manifest = json.loads(fetch("manifest.json").read_text(encoding="utf-8"))
    dataset, tok_entry = _entries(remote_manifest, variant)
    stats = dataset.get("stats") or {}
    n_train, n_val = int(stats.get("files_train", 0)), int(stats.get("files_val", 0))
    if not 1 <= train_shards <= n_train:
        raise DataError(f"--train-shards must be between 1 and {n_train} for {variant}, got {train_shards}")
    if n_val < 1:
        raise DataError(f"the export's manifest.json lists no val shards for {variant}")
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"datasets/{dataset['name']}"
    names = [f"fineweb_val_{i:06d}.bin" for i in range(n_val)]
    names += [f"fineweb_train_{i:06d}.bin" for i in range(train_shards)]
    tokens = {"train": 0, "val": 0}
    for name in names:
        dst = out / name
        if not dst.is_file():
            _link_or_copy(fetch(f"{prefix}/{name}"), dst)
        count = read_header(dst)  # validates magic, version and size
        tokens["val" if name.startswith("fineweb_val") else "train"] += count
        if on_file:
            on_file(name)
    tok_files = [str(tok_entry[k]) for k in ("model_path", "vocab_path", "path") if tok_entry.get(k)]
    if not tok_files:
        raise DataError(f"the export's tokenizer entry {tok_entry.get('name')!r} names no file")
    for rel in tok_files:
        _link_or_copy(fetch(rel), out / Path(rel).name)
    tok_path = out / Path(tok_files[0]).name
    tok = load_tokenizer(tok_path)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "fineweb",
        "variant": variant,
        "tokenizer": {"file": tok_path.name, "kind": tok.kind, "vocab_size": tok.vocab_size, "bos_id": tok.bos_id,
                      "sha256": sha256_file(tok_path), "trained": False},
        "splits": {
            "train": {"prefix": "fineweb_train", "shards": train_shards, "tokens": tokens["train"]},
            "val": {"prefix": "fineweb_val", "shards": n_val, "tokens": tokens["val"]},
        },
        "source": {"remote_dataset": dataset["name"], "stats": stats},
    }
    write_manifest(out, manifest)
    return manifest

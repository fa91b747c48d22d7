"""`golflab prepare fineweb`: download parameter-golf's published FineWeb export.

Remote layout (relative to the export root, `datasets` in willdepueoai/parameter-golf):
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
from pathlib import Path
from typing import Any

from golflab.data.dataset import FORMAT, FORMAT_VERSION, sha256_file, write_manifest
from golflab.data.shards import read_header
from golflab.data.tokenizers import load_tokenizer
from golflab.errors import DataError

Fetch = Callable[[str], Path]


def hub_fetcher(repo_id: str = "willdepueoai/parameter-golf", remote_root: str = "datasets") -> Fetch:
    """fetch(rel) downloads `<remote_root>/<rel>` of the HF dataset repo and returns the cached file."""

    def fetch(rel: str) -> Path:
        from huggingface_hub import hf_hub_download

        remote = f"{remote_root.strip('/')}/{rel}" if remote_root.strip("/") else rel
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
    """Fetch all val shards, the first `train_shards` train shards and the tokenizer into `out`."""
    fetch = fetch or hub_fetcher()
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

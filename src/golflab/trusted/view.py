"""The train-only view of a dataset: what a proposal's trainer is given instead of the dataset.

A directory with the train shards (hard links where the file system allows, else symbolic links), a
copy of the tokenizer and a golflab manifest listing the train split only (`"train_only": true`). The
val and test shards are not there, so a trainer that reaches for them fails instead of fitting them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from golflab.data.dataset import FORMAT, FORMAT_VERSION, Dataset, write_manifest


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src.resolve(), dst)
    except OSError:  # another file system
        dst.symlink_to(src.resolve())


def build_train_view(ds: Dataset, dest: Path) -> Path:
    """Write the view of `ds` at `dest` (which must not exist) and return it."""
    dest.mkdir(parents=True)
    files = ds.split_files("train")
    prefix = "train"
    for i, f in enumerate(files):
        _link(f, dest / f"{prefix}_{i:06d}.bin")
    tok = dest / ds.tokenizer_path.name
    shutil.copyfile(ds.tokenizer_path, tok)
    entry = dict(ds.manifest.get("tokenizer", {}))
    entry["file"] = tok.name
    entry.setdefault("bos_id", ds.bos_id)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "train_only": True, "tokenizer": entry,
                "splits": {"train": {"prefix": prefix, "shards": len(files)}}}
    write_manifest(dest, manifest)
    return dest

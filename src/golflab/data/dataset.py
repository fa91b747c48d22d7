"""Dataset: a directory of token shards plus the tokenizer that made them.

Two layouts are understood:

* golflab's own (written by `golflab prepare`): `manifest.json` with `"format": "golflab-dataset"`,
  shards `<prefix>_000000.bin ...` per split (prefix = split name unless the manifest says otherwise)
  and the tokenizer file, named by the manifest, next to them.
* a parameter-golf dataset dir (`fineweb_train_*.bin`, `fineweb_val_*.bin`, no golflab manifest). The
  tokenizer is the one passed in, or the one that parameter-golf's own `manifest.json` two levels up
  (ROOT/manifest.json for ROOT/datasets/<name>/) assigns to a dataset called <name>.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from golflab.data.tokenizers import Tokenizer, load_tokenizer
from golflab.errors import DataError
from golflab.fileio import write_atomic

MANIFEST = "manifest.json"
FORMAT = "golflab-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: str | Path, manifest: dict[str, Any]) -> Path:
    """Write DIR/manifest.json atomically (temp name, then rename)."""
    return write_atomic(Path(directory) / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def _read_json(path: Path, check: bool = True) -> dict[str, Any]:
    """The JSON object in `path`; `check`: a DataError saying what is wrong when there is none."""
    if not check:
        return json.loads(path.read_text(encoding="utf-8"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold a JSON object")
    return data


@dataclass
class Dataset:
    path: Path
    manifest: dict[str, Any]  # golflab's, or one describing a parameter-golf dir (no "format")
    tokenizer_path: Path

    @classmethod
    def open(cls, path: str | Path, tokenizer: str = "", check: bool = True) -> Dataset:
        """open_dataset(path, tokenizer, check)."""
        return open_dataset(path, tokenizer, check)

    def check_files(self) -> None:
        """The manifest's shard counts, the splits a run needs, and the tokenizer's file, vocab and hash."""
        manifest_path = self.path / MANIFEST
        splits = self.manifest.get("splits", {})
        for split in SPLITS:
            expected = splits.get(split, {}).get("shards")
            found = len(self.split_files(split))
            if expected is not None and found != expected:
                raise DataError(f"{manifest_path} lists {expected} {split} shards but {self.path} holds {found}")
        # a train-only view (golflab.trusted.view: what a proposal's trainer sees) has no val split
        for split in ("train",) if self.manifest.get("train_only") else ("train", "val"):
            if not self.split_files(split):
                raise DataError(f"dataset {self.path} has no {split} shards ({self._prefix(split)}_*.bin)")
        if not self.tokenizer_path.is_file():
            raise DataError(f"tokenizer {self.tokenizer_path} of dataset {self.path} does not exist")
        entry = self.manifest.get("tokenizer", {})
        expected_vocab = entry.get("vocab_size")
        vocab = self.tokenizer.vocab_size
        if expected_vocab is not None and vocab != int(expected_vocab):
            raise DataError(
                f"tokenizer {self.tokenizer_path} has vocab {vocab} but the shards' manifest says {expected_vocab}"
            )
        expected_hash = entry.get("sha256")
        if expected_hash and sha256_file(self.tokenizer_path) != expected_hash:
            raise DataError(
                f"tokenizer {self.tokenizer_path} differs from the one the shards were made with "
                f"(sha256 mismatch with {manifest_path})"
            )

    @property
    def layout(self) -> str:
        """"golflab" or "parameter-golf": what golflab's manifest says (`golflab prepare --layout`), else
        "parameter-golf" for a bare parameter-golf dir."""
        return self.manifest.get("layout", "golflab" if self.manifest.get("format") == FORMAT else "parameter-golf")

    def _prefix(self, split: str) -> str:
        return str(self.manifest.get("splits", {}).get(split, {}).get("prefix", split))

    def split_files(self, split: str) -> list[Path]:
        """Sorted shard files of "train", "val" or "test" (empty when the split does not exist); a split
        named by a user is checked before it gets here (eval_tokens: val or test only)."""
        assert split in SPLITS, f"unknown split {split!r}; expected one of {', '.join(SPLITS)}"
        return sorted(self.path.glob(f"{self._prefix(split)}_*.bin"))

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.tokenizer_path)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def bos_id(self) -> int | None:
        entry = self.manifest.get("tokenizer", {})
        if "bos_id" in entry:  # the manifest's (None: no BOS), without loading the tokenizer
            return entry["bos_id"]
        return self.tokenizer.bos_id

    def byte_table(self):  # -> golflab.eval.bpb.ByteTable
        return self.tokenizer.byte_table()


def open_dataset(path: str | Path, tokenizer: str = "", check: bool = True) -> Dataset:
    """Open a dataset dir; `tokenizer` overrides the one the manifest names. `check` validates it
    (check_layout, Dataset.check_files): golflab's runs and CLI do; the exported script passes False (a
    bad dataset then fails there at its first use, less clearly)."""
    root = Path(path)
    manifest_path = root / MANIFEST
    manifest = _read_json(manifest_path, check) if manifest_path.is_file() else {}
    if check:
        check_layout(root, manifest, tokenizer)
    if manifest.get("format") != FORMAT:
        manifest = _parameter_golf_manifest(root, tokenizer, check)
    ds = Dataset(root, manifest, Path(tokenizer) if tokenizer else root / manifest["tokenizer"]["file"])
    if check:
        ds.check_files()
    return ds


def check_layout(root: Path, manifest: dict[str, Any], tokenizer: str) -> None:
    """Dataset.open's checks before it reads a dataset dir (`manifest`: its golflab manifest, or {}): it
    exists, is golflab's current format or holds parameter-golf shards, and names its tokenizer."""
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise DataError(f"dataset directory {root} does not exist")
    if manifest.get("format") == FORMAT:
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise DataError(f"{manifest_path} has format_version {version}, expected {FORMAT_VERSION}")
        if not tokenizer and not manifest.get("tokenizer", {}).get("file"):
            raise DataError(f"{manifest_path} names no tokenizer file (tokenizer.file)")
    elif not any(root.glob("fineweb_train_*.bin")) and not any(root.glob("fineweb_val_*.bin")):
        raise DataError(f"{root} holds neither a golflab {MANIFEST} nor parameter-golf fineweb_*.bin shards")


def _parameter_golf_manifest(root: Path, tokenizer: str, check: bool = True) -> dict[str, Any]:
    """A parameter-golf dataset dir described as golflab's manifest would: its shard prefixes and, unless
    `tokenizer` is given, the tokenizer file (absolute) and vocab that ROOT/manifest.json (parameter-golf's)
    assigns to dataset root.name (`check`: with an error saying what that manifest lacks)."""
    manifest: dict[str, Any] = {"splits": {s: {"prefix": f"fineweb_{s}"} for s in SPLITS}}
    if tokenizer:
        return manifest
    pg_root = root.resolve().parent.parent
    pg_manifest = pg_root / MANIFEST
    hint = "pass the tokenizer explicitly (data.tokenizer / --tokenizer)"
    if check and not pg_manifest.is_file():
        raise DataError(f"dataset {root} has no tokenizer: no {pg_manifest} to name one; {hint}")
    pg = _read_json(pg_manifest, check)
    dataset = next((d for d in pg.get("datasets", []) if d.get("name") == root.name), None)
    if check and dataset is None:
        raise DataError(f"{pg_manifest} lists no dataset named {root.name}; {hint}")
    name = dataset.get("tokenizer_name")
    entry = next((t for t in pg.get("tokenizers", []) if t.get("name") == name), None)
    rel = entry and (entry.get("model_path") or entry.get("path"))
    if check and not rel:
        raise DataError(f"{pg_manifest} has no tokenizer file for {name!r} (dataset {root.name}); {hint}")
    manifest["tokenizer"] = {"file": str(pg_root / rel), "vocab_size": entry.get("vocab_size")}
    return manifest

"""A small demo corpus that every Python install carries: standard-library docstrings and the
pydoc topic texts (no download). One document per module and per pydoc topic, in a fixed order."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import os
import pkgutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from golflab.errors import DataError

# Importing these has side effects (opening windows, printing, starting things) or is slow.
_SKIP_PREFIXES = ("antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3",
                  "ensurepip", "venv", "pydoc_data", "__main__", "xxsubtype", "msvcrt", "winreg", "winsound",
                  "_")


def _module_doc(name: str) -> str:
    """The module docstring plus the docstrings of its public classes and functions ("" on failure)."""
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            mod = importlib.import_module(name)
    except (Exception, SystemExit):  # anything a module raises on import means "skip it"
        return ""
    parts = [f"Module {name}\n\n{inspect.cleandoc(mod.__doc__ or '')}".rstrip()]
    for attr in sorted(getattr(mod, "__all__", None) or dir(mod)):
        if attr.startswith("_"):
            continue
        obj = getattr(mod, attr, None)
        if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
            continue
        if getattr(obj, "__module__", name) != name:
            continue
        doc = inspect.getdoc(obj)
        if doc:
            parts.append(f"{attr}\n\n{doc}")
        if inspect.isclass(obj):  # public methods defined by the class itself
            for meth_name, meth in sorted(vars(obj).items()):
                mdoc = None if meth_name.startswith("_") else getattr(meth, "__doc__", None)
                if isinstance(mdoc, str) and mdoc.strip():
                    parts.append(f"{attr}.{meth_name}\n\n{inspect.cleandoc(mdoc)}")
    text = "\n\n".join(parts)
    return text if len(parts) > 1 or mod.__doc__ else ""


def _module_names() -> list[str]:
    """Top-level standard-library modules and the public submodules of its packages, sorted."""
    names = set()
    for top in sorted(getattr(sys, "stdlib_module_names", ())):
        if top.startswith(_SKIP_PREFIXES):
            continue
        names.add(top)
        spec = importlib.util.find_spec(top) if top not in sys.builtin_module_names else None
        if spec is None or not spec.submodule_search_locations:
            continue
        found = pkgutil.walk_packages(spec.submodule_search_locations, prefix=f"{top}.", onerror=lambda _: None)
        for info in found:
            leaf = info.name.rsplit(".", 1)[-1]
            if not leaf.startswith("_") and "test" not in info.name:
                names.add(info.name)
    return sorted(names)


def iter_demo_documents() -> Iterator[str]:
    """Standard-library module docs (sorted by module name), then the pydoc topics (sorted)."""
    for name in _module_names():
        if name.startswith(_SKIP_PREFIXES):
            continue
        doc = _module_doc(name)
        if doc:
            yield doc
    try:
        from pydoc_data.topics import topics
    except ImportError:
        topics = {}
    for key in sorted(topics):
        text = topics[key].strip()
        if text:
            yield f"Topic {key}\n\n{text}"


def build_demo_dataset(out: Path, vocab: int = 512) -> Path:
    """Write the demo corpus and prepare it into OUT/data (train/val/test); return OUT/data.

    Reuses OUT/data when it already holds a dataset built with the same vocab.
    """
    from golflab.data.dataset import Dataset
    from golflab.data.prepare import PrepareOptions, prepare_text

    out = Path(out)
    data = out / "data"
    if (data / "manifest.json").is_file():
        ds = Dataset.open(data)
        if ds.vocab_size == vocab:
            return data
        raise DataError(f"{data} holds a demo dataset with vocab {ds.vocab_size}, not {vocab}; remove it")
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.jsonl"
    tmp = corpus.with_name(f".{corpus.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for doc in iter_demo_documents():
            f.write(json.dumps({"text": doc}, ensure_ascii=False) + "\n")
    os.replace(tmp, corpus)
    opts = PrepareOptions(vocab=vocab, val_frac=0.05, test_frac=0.05, seed=0, shard_tokens=10_000_000)
    prepare_text([corpus], data, opts)
    return data

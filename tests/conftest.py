"""Shared fixtures: a small prepared dataset built once per test session from synthetic text."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = " ".join([
    "the model trains on shards of tokens and the lab judges each change with several seeds",
    "while the optimizer orthogonalises every update matrix before it is applied to the weights",
    "parameter golf counts bytes of code and compressed weights under sixteen million",
]).split()


def synthetic_corpus(path: Path, docs: int = 400, seed: int = 0) -> Path:
    """JSON Lines of word-salad documents with some structure (repeated phrases, digits, punctuation)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(docs):
            n = rng.randint(60, 400)
            words = [rng.choice(WORDS) for _ in range(n)]
            for j in range(0, n, 17):
                words[j] = words[j].capitalize() + rng.choice([".", ",", ";", f" {rng.randint(0, 999)}"])
            f.write(json.dumps({"text": f"Document {i}: " + " ".join(words) + "\n"}) + "\n")
    return path


@pytest.fixture(scope="session", autouse=True)
def _script_cache(tmp_path_factory):
    """Rendered scripts go to this session's folder (shared by the xdist workers), not the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GOLFLAB_SCRIPT_CACHE", str(tmp_path_factory.getbasetemp().parent / "script-cache"))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    from golflab.data.prepare import PrepareOptions, prepare_text

    root = tmp_path_factory.mktemp("tiny_dataset")
    src = synthetic_corpus(root / "corpus.jsonl")
    out = root / "data"
    prepare_text([src], out, PrepareOptions(vocab=320, val_frac=0.1, test_frac=0.05, seed=0, workers=1))
    return out

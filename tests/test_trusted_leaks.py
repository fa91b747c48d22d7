"""Models that see what they must not are rejected by the trusted harness with the reason: the next
token added to the hidden state, the next window's first token, a model that peeks only once the probes
are over, and a trainer that trains on the val tokens (absent from its train-only view)."""

from __future__ import annotations

import pytest

from tests.test_auto_agent import copy_checkout
from tests.trusted_support import cheat, propose, trusted_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_checkout(tmp_path_factory.mktemp("leaks") / "repo")


@pytest.mark.parametrize("mode, reason", [
    ("peek", "leakage probe (random tokens): changing the tokens after position"),
    ("peek-next-row", "leakage probe (random tokens): changing other rows of a batch changed the scores of an "
                      "untouched row"),
    ("peek-after-probes", "leakage spot check during the evaluation: changing the tokens after position"),
])
def test_a_model_that_sees_future_tokens_is_rejected(repo, tiny_dataset, tmp_path, mode, reason):
    prop = propose(repo, tmp_path, cheat(mode))
    assert not prop.rejected
    res = trusted_run(prop.code, tiny_dataset, tmp_path / "run", repo / "src")
    assert res["status"] == "failed" and res["rejected"].startswith(reason), res["error"]
    assert res.get("val_bpb") is None


def test_training_on_the_val_split_finds_no_val_split(repo, tiny_dataset, tmp_path):
    prop = propose(repo, tmp_path, cheat("val-train"))
    res = trusted_run(prop.code, tiny_dataset, tmp_path / "run", repo / "src")
    assert res["status"] == "failed" and "the proposal's trainer failed" in res["error"]
    assert "no shard files" in res["error"]

"""Score-first test-time training (golflab.eval.ttt): no token is scored by a model an update has shown
it, epochs=0 is exactly the plain eval, TTT adapts and then restores the model, bad settings are errors,
and a tiny training run reports the artifact's TTT score."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from golflab.config import load_config
from golflab.config.schema import ModelConfig, TTTConfig
from golflab.errors import ConfigError
from golflab.eval.bpb import ByteTable
from golflab.eval.evaluate import evaluate
from golflab.eval.ttt import _tt_check_scored, score_first_ttt, ttt_chunks, ttt_evaluate
from golflab.model.gpt import build_model


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls: on a shared CPU more threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def flat_table(vocab: int) -> ByteTable:
    return ByteTable(np.full(vocab, 2), np.zeros(vocab, dtype=bool), np.zeros(vocab, dtype=bool))


class SeenTokensModel(torch.nn.Module):
    """The val stream is arange(N), so a token's value is its position in the stream. In training mode the
    model records every token an update sees (inputs and targets); in scoring its nats for a target are 1
    when that token was seen by an update before, else 0. The eval's own mask decides which targets count,
    so val_loss is the fraction of scored tokens that an earlier update had trained on."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: set[int] = set()
        self.updates = 0

    def forward(self, x, y, reduction="mean"):
        if torch.is_grad_enabled() and self.training:
            self.seen.update(x.reshape(-1).tolist())
            self.seen.update(y.reshape(-1).tolist())
            self.updates += 1
            return self.w.square()  # something to step on; what matters is what the update saw
        seen = torch.tensor([int(t) in self.seen for t in y.reshape(-1).tolist()], dtype=torch.float32)
        return seen if reduction == "none" else seen.mean()


def run_seen(stride: int, n: int = 1001):
    model = SeenTokensModel()
    ttt = TTTConfig(enabled=True, chunk_tokens=96, epochs=2, lr=0.1, batch_seqs=3)
    res = ttt_evaluate(model, lambda x, y: model(x, y, reduction="none"), torch.arange(n), 32, flat_table(n), ttt,
                       stride=stride, batch_seqs=4)
    return model, res


@pytest.mark.parametrize("stride", [0, 8, 32])
def test_no_scored_token_was_seen_by_an_earlier_update(stride):
    model, res = run_seen(stride)
    plain = evaluate(lambda x, y: torch.zeros(x.numel()), torch.arange(1001), 32, flat_table(1001), stride=stride)
    assert model.updates > 0 and len(model.seen) > 500  # it did train, on most of the split
    assert res.tokens == plain.tokens  # every target scored once, as in the plain eval
    assert res.val_loss == 0.0  # and none of them after an update had seen it


def test_the_check_fails_when_chunks_are_scored_after_training_on_them():
    """Swap the order (train on a chunk, then score it) by deferring each chunk's scoring one step: the
    instrumented model then sees its own training tokens being scored, so the test above can fail."""
    n, seq = 1001, 32
    model, tokens = SeenTokensModel(), torch.arange(n)
    from golflab.eval.bpb import BpbAccumulator
    from golflab.eval.evaluate import eval_windows, score_windows

    starts, score_from = eval_windows(n, seq, 0)
    acc, pending = BpbAccumulator(torch.device("cpu")), []

    def score_late(s, f):
        pending.append((s, f))
        if len(pending) > 1:  # the previous chunk, which has been trained on meanwhile
            score_windows(acc, lambda x, y: model(x, y, reduction="none"), tokens, *pending.pop(0), seq,
                          flat_table(n), 4, None)

    ttt = TTTConfig(enabled=True, chunk_tokens=96, epochs=1, lr=0.1, batch_seqs=3)
    score_first_ttt(model, score_late, tokens, starts, score_from, seq, ttt)
    assert acc.tokens > 0 and acc.result()[0] > 0.5  # most scored tokens were trained on first


def test_an_update_past_the_scored_tokens_is_refused():
    _tt_check_scored(torch.tensor([0, 32, 64]), 32, 96)
    with pytest.raises(RuntimeError, match="TTT order violated"):
        _tt_check_scored(torch.tensor([0, 32, 64]), 32, 95)


def test_windows_go_to_the_chunk_of_their_first_scored_position():
    starts = np.array([0, 8, 16, 24, 32])
    score_from = np.array([0, 24, 24, 24, 24])  # first scored positions 0, 32, 40, 48, 56
    chunks = ttt_chunks(starts, score_from, 32, 40)
    assert [c.tolist() for c in chunks] == [[0, 1], [2, 3, 4]]


def tiny_gpt(vocab: int, seq: int) -> torch.nn.Module:
    cfg = ModelConfig(vocab_size=vocab, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1, seq_len=seq)
    return build_model(cfg, seed=0)


@pytest.mark.parametrize("stride", [0, 16])
def test_zero_epochs_is_exactly_the_plain_eval(stride):
    vocab, seq = 40, 32
    model = tiny_gpt(vocab, seq).eval()
    tokens = torch.randint(0, vocab, (700,), generator=torch.Generator().manual_seed(0))
    nats = lambda x, y: model(x, y, reduction="none")  # noqa: E731
    plain = evaluate(nats, tokens, seq, flat_table(vocab), stride=stride, batch_seqs=5)
    tt = ttt_evaluate(model, nats, tokens, seq, flat_table(vocab), TTTConfig(enabled=True, chunk_tokens=64, epochs=0),
                      stride=stride, batch_seqs=5)
    assert (tt.tokens, tt.bytes) == (plain.tokens, plain.bytes)
    assert tt.val_loss == pytest.approx(plain.val_loss, rel=1e-6)


def pattern_setup():
    """An untrained tiny GPT and 1160 tokens repeating a 29-token pattern: unpredictable to it, easy to learn."""
    model = tiny_gpt(24, 32)
    pattern = torch.randint(0, 24, (29,), generator=torch.Generator().manual_seed(1))
    nats = lambda x, y: model(x, y, reduction="none")  # noqa: E731
    return model, pattern.repeat(40), nats, TTTConfig(enabled=True, chunk_tokens=128, epochs=3, lr=0.5, batch_seqs=4)


def test_ttt_learns_a_repeated_pattern_and_restores_the_weights():
    model, tokens, nats, ttt = pattern_setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = evaluate(nats, tokens, 32, flat_table(24), batch_seqs=8)
    tt = ttt_evaluate(model, nats, tokens, 32, flat_table(24), ttt, batch_seqs=8)
    assert tt.val_loss < plain.val_loss - 0.3
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.requires_grad for p in model.parameters()) and model.training


def test_bad_settings_are_config_errors():
    model = tiny_gpt(16, 32)
    nats = lambda x, y: model(x, y, reduction="none")  # noqa: E731
    with pytest.raises(ConfigError, match=r"eval\.ttt\.chunk_tokens"):
        ttt_evaluate(model, nats, torch.zeros(200, dtype=torch.int64), 32, flat_table(16),
                     TTTConfig(enabled=True, chunk_tokens=16))
    with pytest.raises(ConfigError, match=r"eval\.ttt\.momentum"):
        ttt_evaluate(model, nats, torch.zeros(200, dtype=torch.int64), 32, flat_table(16),
                     TTTConfig(enabled=True, momentum=1.0))
    # and when the config loads, before any training
    with pytest.raises(ConfigError, match=r"eval\.ttt\.chunk_tokens"):
        load_config(preset="tiny", overrides=["eval.ttt.enabled=true", "eval.ttt.chunk_tokens=16"])


@pytest.mark.slow
def test_a_tiny_run_reports_the_artifacts_ttt_score(tiny_dataset, tmp_path):
    from golflab.train.loop import train
    from golflab.train.sources import sources_from_config

    cfg = load_config(preset="tiny", budget="4steps", extra={"data": {"path": str(tiny_dataset)}},
                      overrides=["eval.val_every=0", "eval.stride=0", "eval.ttt.enabled=true",
                                 "eval.ttt.chunk_tokens=16384", "eval.ttt.epochs=1", "eval.ttt.lr=0.01"])
    assert train(cfg, tmp_path / "run", sources_from_config(cfg))["status"] == "ok"
    art = json.loads((tmp_path / "run" / "result.json").read_text())["artifact"]
    assert art["ttt_seconds"] > 0 and abs(art["ttt_val_bpb"] - art["val_bpb"]) < 0.2
    assert art["ttt_val_bpb"] != art["val_bpb"]  # the updates changed the later chunks' scores


def test_the_exported_script_holds_ttt_only_when_the_config_uses_it():
    from golflab.artifact.export import render_script

    plain = render_script(load_config(preset="golf-baseline"))
    with_ttt = render_script(load_config(preset="golf-baseline", overrides=["eval.ttt.enabled=true"]))
    assert "score_first_ttt" not in plain and "def ttt_run" not in plain
    assert "def score_first_ttt" in with_ttt and "def ttt_run" in with_ttt
    compile(with_ttt, "train_gpt.py", "exec")


def _ttt_rank(rank: int, world: int, init_file: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        model, tokens, nats, ttt = pattern_setup()
        res = ttt_evaluate(model, nats, tokens, 32, flat_table(24), ttt, batch_seqs=8, rank=rank, world_size=world)
        torch.save({"loss": res.val_loss, "tokens": res.tokens, "sd": model.state_dict()}, f"{out}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_score_every_token_once_agree_and_learn(tmp_path):
    torch.multiprocessing.spawn(_ttt_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    model, tokens, nats, _ = pattern_setup()
    plain = evaluate(nats, tokens, 32, flat_table(24), batch_seqs=8)
    assert r0["loss"] == r1["loss"] and r0["tokens"] == r1["tokens"] == plain.tokens
    assert r0["loss"] < plain.val_loss - 0.3  # the ranks' all-reduced updates learn the pattern too
    for k, v in model.state_dict().items():  # and each rank's model is restored
        assert torch.equal(r0["sd"][k], v) and torch.equal(r1["sd"][k], v), k

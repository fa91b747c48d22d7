"""`golflab record check` on real and crafted record folders, and the margin test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from golflab.errors import GolflabError
from golflab.record.check import check_record
from golflab.record.logs import parse_log, seed_losses
from golflab.record.margin import record_margin

# openai/parameter-golf records/track_10min_16mb/2026-03-20_10L_Int5MLP_MuonWD04_SWA50, trimmed (README there)
REAL = Path(__file__).parent / "data" / "pg_record_10L_Int5MLP"
REAL_LOSSES = [1.92987577, 1.92923337, 1.92941613]  # seeds 1337, 2024, 42: their final_..._exact lines


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "golflab", "record", "check", *args], capture_output=True,
                          text=True, timeout=120)


def _by_rule(results):
    return {r.rule: r for r in results}


def test_a_real_record_parses_and_passes_every_rule():
    log = parse_log(REAL / "train_seed42.log")
    assert (log.seed, log.val_loss, log.val_bpb) == (42, 1.92941613, 1.14271194)
    assert log.metric == "final_int8_zlib_roundtrip_exact" and log.train_ms == 600037 and log.wallclock_stop
    assert log.eval_ms == 168421 and log.total_bytes == 15965978
    assert len(log.gpus) == 8 and all("H100" in g for g in log.gpus)
    assert seed_losses(REAL) == REAL_LOSSES
    results = _by_rule(check_record(REAL))
    assert all(r.passed for r in results.values()), results
    assert "600.037 s" in results["train time"].value and "max 15,965,978 bytes" in results["size"].value


def _crafted(tmp_path: Path, edit: dict[str, tuple[str, str]] | None = None, drop: str = "") -> Path:
    """A copy of the real record with one line replaced in some logs ({log name: (old, new)})."""
    out = tmp_path / "rec"
    shutil.copytree(REAL, out)
    for name, (old, new) in (edit or {}).items():
        text = (out / name).read_text()
        assert old in text
        (out / name).write_text(text.replace(old, new))
    if drop:
        (out / drop).unlink()
    return out


@pytest.mark.parametrize(("edit", "drop", "failing"), [
    ({"train_seed42.log": ("stopping_early: wallclock_cap train_time:600037ms", "done train_time:700000ms")}, "",
     "train time"),
    ({"train_seed42.log": ("eval_time:168421ms", "eval_time:600001ms")}, "", "eval time"),
    ({"train_seed1337.log": ("Total submission size int8+zlib: 15830186 bytes",
                             "Total submission size int8+zlib: 16000001 bytes")}, "", "size"),
    ({"train_seed2024.log": ("NVIDIA H100 80GB HBM3", "NVIDIA A100 80GB PCIe")}, "", "hardware"),
    ({}, "train_seed2024.log", "seeds"),
    ({"train_seed2024.log": ("seed:2024", "seed:42")}, "", "seeds"),
])
def test_each_rule_fails_on_a_crafted_record(tmp_path, edit, drop, failing):
    results = _by_rule(check_record(_crafted(tmp_path, edit, drop)))
    assert not results[failing].passed
    assert all(r.passed for name, r in results.items() if name != failing), results


def test_margin_is_a_one_sided_welch_test_against_the_previous_records_seeds():
    new = [1.9200, 1.9210, 1.9195]
    p, passed, lcb = record_margin(new, REAL_LOSSES, 0.005, 0.01)
    ref = stats.ttest_ind([x - 0.005 for x in REAL_LOSSES], new, equal_var=False, alternative="greater")
    assert p == pytest.approx(ref.pvalue) and passed and 0.005 < lcb < 0.0095
    p2, passed2, _ = record_margin([x - 0.004 for x in REAL_LOSSES], REAL_LOSSES)  # 0.004 nats: not enough
    assert not passed2 and p2 > 0.5
    assert record_margin(new, [1.94])[1]  # a single previous value is taken as exact
    with pytest.raises(GolflabError, match="at least 2 new seeds"):
        record_margin([1.9], REAL_LOSSES)


def test_cli_passes_fails_and_rejects_bad_input(tmp_path):
    ok = _cli(str(REAL), "--sota-values", "1.945,1.946", "--sota-values", "1.944")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "margin" in ok.stdout and "pass" in ok.stdout
    beaten = _cli(str(REAL), "--against", str(REAL))  # no gain over itself
    assert beaten.returncode == 1 and "FAIL" in beaten.stdout
    over = _crafted(tmp_path, {"train_seed42.log": ("eval_time:168421ms", "eval_time:600001ms")})
    assert _cli(str(over)).returncode == 1
    for bad in ([str(tmp_path / "missing")], [str(REAL), "--sota-values", "abc"],
                [str(REAL), "--against", str(REAL), "--sota-values", "1.9"]):
        r = _cli(*bad)
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

"""modded-nanogpt's record tables: Runs, Time mu sigma +/- p, Loss mu sigma +/- p.

Worked out from the PR #200 tables (tests/test_stats_speedrun.py reproduces them digit for digit):
- mu, sigma: mean and sample standard deviation (ddof 1) over the runs;
- +/-: mean minus the baseline row's mean (0 on the baseline row);
- Loss p: one-sided one-sample t test that the mean loss is below the target (scipy ttest_1samp,
  alternative "less"), over independent runs;
- Time p: one-sided paired t test that the times are lower than the baseline's (scipy ttest_rel,
  alternative "less"): NaN on the baseline row (every difference 0), and the column is left out when
  the run counts differ (as the PR's 10-vs-8 tables do). Pass time_test="welch" for Welch instead.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as sps


def speedrun_table(times: list[float], losses: list[float], target: float,
                   baseline_times: list[float] | None = None, baseline_losses: list[float] | None = None,
                   time_test: str = "paired") -> dict:
    """One row; without baseline lists the row is the baseline (+/- 0, Time p NaN)."""
    t, loss = np.asarray(times, float), np.asarray(losses, float)
    bt = t if baseline_times is None else np.asarray(baseline_times, float)
    bl = loss if baseline_losses is None else np.asarray(baseline_losses, float)
    row = {"runs": len(loss), "time_mean": float(t.mean()), "time_sd": _sd(t),
           "time_diff": float(t.mean() - bt.mean()), "time_p": None,
           "loss_mean": float(loss.mean()), "loss_sd": _sd(loss), "loss_diff": float(loss.mean() - bl.mean()),
           "loss_p": float(sps.ttest_1samp(loss, target, alternative="less").pvalue)}
    if baseline_times is None:
        row["time_p"] = math.nan
    elif time_test == "welch":
        row["time_p"] = float(sps.ttest_ind(t, bt, equal_var=False, alternative="less").pvalue)
    elif len(t) == len(bt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            row["time_p"] = float(sps.ttest_rel(t, bt, alternative="less").pvalue)
    return row


def _sd(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if len(x) >= 2 else math.nan


COLUMNS = [("Runs", "runs"), ("Time μ", "time_mean"), ("Time σ", "time_sd"), ("Time +/-", "time_diff"),
           ("Time p", "time_p"), ("Loss μ", "loss_mean"), ("Loss σ", "loss_sd"), ("Loss +/-", "loss_diff"),
           ("p", "loss_p")]


def format_speedrun_table(rows: dict[str, dict]) -> str:
    """The table as the speedrun prints it (4 decimals; Time p only when every row has one)."""
    cols = [(h, k) for h, k in COLUMNS if k != "time_p" or all(r["time_p"] is not None for r in rows.values())]
    width = max(len(n) for n in rows) + 2
    lines = [" " * width + " ".join(f"{h:>{max(len(h), 8 if k != 'runs' else 4)}}" for h, k in cols)]
    for name, r in rows.items():
        cells = []
        for h, k in cols:
            w = max(len(h), 8 if k != "runs" else 4)
            v = r[k]
            cells.append(f"{v:>{w}d}" if k == "runs" else f"{'NaN' if math.isnan(v) else f'{v:.4f}':>{w}}")
        lines.append(f"{name:<{width}}" + " ".join(cells))
    return "\n".join(lines)

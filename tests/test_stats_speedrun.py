"""modded-nanogpt PR #200: every table rebuilt from its raw lists, to the digits printed there."""

from __future__ import annotations

import math

from golflab.stats import format_speedrun_table, speedrun_table

TARGET = 3.28

# PR #200, first table (record 60 baseline vs unified-optimizer, 8 runs each)
B60_L = [3.2777, 3.2785, 3.2790, 3.2785, 3.2788, 3.2791, 3.2766, 3.2784]
B60_T = [105.3690, 105.5950, 105.4140, 105.5520, 105.5610, 105.5820, 105.6090, 105.6070]
U60_L = [3.2781, 3.2803, 3.2767, 3.2799, 3.2794, 3.2767, 3.2767, 3.2780]
U60_T = [104.6490, 104.4420, 104.2430, 104.4540, 104.4860, 104.3220, 104.6550, 104.4120]
# second and third tables (record 59 baseline, 8 runs; early untie 8 runs; final 10 runs)
B59_L = [3.2814, 3.2777, 3.2788, 3.2767, 3.2803, 3.2779, 3.2793, 3.2812]
B59_T = [107.1350, 107.1030, 107.0080, 107.2160, 107.0990, 107.0060, 107.0510, 107.1800]
EARLY_L = [3.2773, 3.2781, 3.2790, 3.2765, 3.2784, 3.2786, 3.2790, 3.2798]
EARLY_T = [106.9750, 106.8150, 106.8060, 106.7930, 106.9450, 106.8430, 106.8120, 106.7900]
U59_L = [3.2788, 3.2795, 3.2782, 3.2792, 3.2795, 3.2789, 3.2800, 3.2791, 3.2789, 3.2783]
U59_T = [106.4900, 106.4900, 106.5200, 106.4550, 106.5010, 106.4950, 106.5390, 106.4620, 106.5000, 106.4880]

KEYS = ["runs", "time_mean", "time_sd", "time_diff", "time_p", "loss_mean", "loss_sd", "loss_diff", "loss_p"]


def _printed(row: dict, keys=KEYS) -> str:
    out = []
    for k in keys:
        v = row[k]
        out.append(str(v) if k == "runs" else "NaN" if math.isnan(v) else f"{v:.4f}")
    return " ".join(out)


def test_first_table_with_time_p():
    # baseline              8 105.5361  0.0923    0.0000     NaN  3.2783  0.0008    0.0000 0.0003
    # unified-optimizer     8 104.4579  0.1430   -1.0782  0.0000  3.2782  0.0015   -0.0001 0.0060
    base = speedrun_table(B60_T, B60_L, TARGET)
    new = speedrun_table(U60_T, U60_L, TARGET, B60_T, B60_L)
    assert _printed(base) == "8 105.5361 0.0923 0.0000 NaN 3.2783 0.0008 0.0000 0.0003"
    assert _printed(new) == "8 104.4579 0.1430 -1.0782 0.0000 3.2782 0.0015 -0.0001 0.0060"


def test_second_table_without_time_p():
    # Baseline            8 107.0998  0.0763    0.0000  3.2792  0.0017    0.0000 0.1039
    # unified-optimizer  10 106.4940  0.0245   -0.6058  3.2790  0.0006   -0.0001 0.0002
    keys = [k for k in KEYS if k != "time_p"]
    base = speedrun_table(B59_T, B59_L, TARGET)
    new = speedrun_table(U59_T, U59_L, TARGET, B59_T, B59_L)
    assert new["time_p"] is None  # 10 runs against 8: no paired time test, as the table leaves out
    assert _printed(base, keys) == "8 107.0998 0.0763 0.0000 3.2792 0.0017 0.0000 0.1039"
    assert _printed(new, keys) == "10 106.4940 0.0245 -0.6058 3.2790 0.0006 -0.0001 0.0002"


def test_third_table_and_format():
    # baseline                  8 107.0998  0.0763    0.0000  3.2792  0.0017    0.0000 0.1039
    # uniform-optims-early-untie 8 106.8474  0.0718   -0.2524  3.2783  0.0010   -0.0008 0.0014
    # unified-optimizer-all-reduce-5stps 10 106.4940 0.0245 -0.6058 3.2790 0.0006 -0.0001 0.0002
    rows = {"baseline": speedrun_table(B59_T, B59_L, TARGET),
            "uniform-optims-early-untie": speedrun_table(EARLY_T, EARLY_L, TARGET, B59_T, B59_L),
            "unified-optimizer-all-reduce-5stps": speedrun_table(U59_T, U59_L, TARGET, B59_T, B59_L)}
    keys = [k for k in KEYS if k != "time_p"]
    assert _printed(rows["uniform-optims-early-untie"], keys) == \
        "8 106.8474 0.0718 -0.2524 3.2783 0.0010 -0.0008 0.0014"
    text = format_speedrun_table(rows)
    lines = text.splitlines()
    assert "Time p" not in lines[0] and lines[0].split()[0] == "Runs"
    assert " ".join(lines[2].split()) == "uniform-optims-early-untie 8 106.8474 0.0718 -0.2524 3.2783 0.0010 " \
        "-0.0008 0.0014"
    first = format_speedrun_table({"baseline": speedrun_table(B60_T, B60_L, TARGET),
                                   "unified-optimizer": speedrun_table(U60_T, U60_L, TARGET, B60_T, B60_L)})
    assert " ".join(first.splitlines()[1].split()) == "baseline 8 105.5361 0.0923 0.0000 NaN 3.2783 0.0008 0.0000 0.0003"

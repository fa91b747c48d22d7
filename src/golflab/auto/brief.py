"""The brief an agent gets: the goal, the current best config and code, what it must not touch, the
answer format, and every experiment so far with its verdict and diff stat (so it does not repeat them).

Two renderings of one dict: `golflab_brief.json` for scripts and GOLFLAB_BRIEF.md for a coding agent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from golflab.config.loader import dumps_toml
from golflab.engine.harness import HARNESS
from golflab.fileio import write_atomic

ANSWER_FORMAT = """\
Answer in one or both of these ways, then exit:
1. Config change: write TOML to the file $GOLFLAB_ANSWER, e.g.
       description = "SwiGLU MLP at the same width"
       overrides = ["model.mlp=swiglu", "model.mlp_mult=2.0"]
2. Code change: edit files in this worktree (the current directory). Commit them, or leave them
   uncommitted and golflab commits them as "agent: <description>". Runs import golflab from a clean
   export of that commit (only committed files: nothing ignored, untracked or hidden from git), with
   the config golflab resolves (presets and defaults are resolved before the run, so change
   hyperparameters through overrides, and behaviour through code).
   Your code trains; the harness measures: it trains on the train split only, then asks your model
   (golflab.model.gpt.build_model + model.logits(idx)) for scores on input windows, checks that they
   depend on no future token, and computes val/test loss and bits per byte with its own code.
No change at all counts as "no idea"; golflab stops after a few of those in a row."""


def diff_stat(diff: str) -> str:
    """'path (+a -b), ...' of a unified diff."""
    stats: dict[str, list[int]] = {}
    cur = None
    for line in diff.splitlines():
        m = re.match(r"diff --git a/(\S+) b/(\S+)", line)
        if m:
            cur = m.group(2)
            stats[cur] = [0, 0]
        elif cur and line.startswith("+") and not line.startswith("+++"):
            stats[cur][0] += 1
        elif cur and line.startswith("-") and not line.startswith("---"):
            stats[cur][1] += 1
    return ", ".join(f"{p} (+{a} -{b})" for p, (a, b) in stats.items())


def history(decisions: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for d in decisions:
        get = (lambda k, _d=d: _d.get(k)) if isinstance(d, dict) else (lambda k, _d=d: getattr(_d, k, None))
        rows.append({k: get(k) for k in ("idx", "name", "status", "mean", "delta", "p", "note", "overrides",
                                         "description", "code_rev")}
                    | {"diff_stat": diff_stat(get("diff") or "")})
    return rows


def build_brief(*, proposal: str, number: int, settings: Any, base_config: dict[str, Any], base_commit: str,
                branch: str, worktree: Path, answer: Path, decisions: list[Any], earlier: list[dict[str, Any]],
                protected_paths: tuple[str, ...], repeats: list[str] = ()) -> dict[str, Any]:
    cfg = {k: v for k, v in base_config.items() if k != "seed"}
    hist = history(decisions)
    tried = [h for h in history(earlier) + hist
             if h["name"] != "baseline" and (h["description"] or h["overrides"] or h["diff_stat"])]
    r = settings.rule
    goal = (f"Lower {settings.metric} of the {settings.preset or 'default'} preset at budget {settings.budget}. "
            f"A change is kept only if it improves on the current best by more than {r.min_effect} on shared seeds "
            f"(sequential paired test at alpha {r.alpha}) and then again on fresh seeds: the harness measures, "
            "so only a real improvement counts.")
    return {
        "proposal": proposal, "number": number, "goal": goal, "metric": settings.metric,
        "budget": settings.budget, "preset": settings.preset, "alpha": r.alpha,
        "min_effect": r.min_effect, "branch": branch, "base_commit": base_commit,
        "worktree": str(worktree), "answer_file": str(answer), "answer_format": ANSWER_FORMAT,
        "base_config_toml": dumps_toml(cfg),
        "protected": {"config_prefixes": [k for k in HARNESS if k.endswith(".")], "config_keys": [k for k in HARNESS if not k.endswith(".")],
                      "paths": list(protected_paths)},
        "history": hist, "earlier_history": history(earlier),
        "ideas_tried": [f"{h['name']} [{h['status']}]: " + (h["description"] or " ".join(h["overrides"] or []))
                        for h in tried] + list(repeats),
    }


def _f(x: Any) -> str:
    return "-" if x is None else f"{x:.4g}"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    out = ["| # | name | status | mean | Δ | p | note | overrides | description | diff |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for h in rows:
        cells = [str(h["idx"]), h["name"], h["status"], _f(h["mean"]), _f(h["delta"]), _f(h["p"]), h["note"] or "",
                 " ".join(h["overrides"] or []), h["description"] or "", h["diff_stat"]]
        out.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    return out


def render_md(b: dict[str, Any]) -> str:
    lines = [f"# golflab auto: brief for proposal {b['proposal']}", "", "## Goal", "", b["goal"], "",
             "## Current best", "", f"Code: commit `{b['base_commit']}` (branch `{b['branch']}`), checked out in "
             f"this worktree.", "", "Config (resolved; the seed varies per run):", "", "```toml",
             b["base_config_toml"].strip(), "```", "", "## Protected (a proposal touching these is rejected)", "",
             "Config keys: " + ", ".join([f"`{p}*`" for p in b["protected"]["config_prefixes"]]
                                         + [f"`{k}`" for k in b["protected"]["config_keys"]]),
             "", "Paths: " + ", ".join(f"`{p}`" for p in b["protected"]["paths"]), "",
             "## How to answer", "", b["answer_format"], "", f"Answer file: `{b['answer_file']}`", "",
             "## History", ""]
    if b["earlier_history"]:
        lines += ["Earlier sessions in the same output folder:", "", *_table(b["earlier_history"]), "",
                  "This session:", ""]
    lines += _table(b["history"]) or ["(none yet)"]
    lines += ["", "## Ideas already tried", ""]
    lines += [f"- {t}" for t in b["ideas_tried"]] or ["(none yet)"]
    return "\n".join(lines) + "\n"


def write_brief(b: dict[str, Any], md: Path, js: Path) -> None:
    write_atomic(md, render_md(b))
    write_atomic(js, json.dumps(b, indent=1))

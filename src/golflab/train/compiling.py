"""What a run does around torch.compile: warm-up steps only while the graphs still change, and a compile
cache that a lab keeps in its own folder and can carry to a fresh machine (torch.compiler's portable
cache artifacts)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

COMPILE_CACHE_ENV = "GOLFLAB_COMPILE_CACHE"  # a folder of cache artifacts; the lab backends set it to <lab>/compile-cache
QUIET_WARMUP_STEPS = 2  # the warm-up ends after this many consecutive steps that compiled nothing


def graphs_compiled() -> int:
    """Graphs torch.compile has built in this process so far (recompiles included)."""
    from torch._dynamo.utils import counters

    return sum(counters["stats"].values()) + sum(counters["aot_autograd"].values())


def graphs_from_cache() -> int:
    """Compiled graphs this process took from a cache (AOTAutograd and Inductor FX-graph hits)."""
    from torch._dynamo.utils import counters

    return counters["aot_autograd"]["autograd_cache_hit"] + counters["inductor"]["fxgraph_cache_hit"]


def warm_up_compile(step: Callable[[], None], max_steps: int, compiled: Callable[[], int] = graphs_compiled) -> int:
    """Run `step` until QUIET_WARMUP_STEPS steps in a row compiled nothing, or max_steps; return the steps run.
    A fixed count either wastes steps (20 in parameter-golf, about 6 s on an H100) or stops while a
    graph (the backward, a recompile on the second step) is still to be built inside the timed run."""
    quiet = 0
    for n in range(1, max_steps + 1):
        before = compiled()
        step()
        quiet = quiet + 1 if compiled() == before else 0
        if quiet >= QUIET_WARMUP_STEPS:
            return n
    return max_steps


def compile_model(model, regional: bool = False):
    """The model to call: compiled whole (one graph for the step, the fastest to run), or regionally, each
    block and the head compiled in place. Dynamo traces a block's code once and reuses the graph for every
    block it guards equal (their parameters are graph inputs), so the compile costs about one block's."""
    import torch

    if not regional:
        return torch.compile(model, dynamic=False, fullgraph=True)
    for part in (*model.blocks, model.head):
        part.compile(dynamic=False, fullgraph=True)
    return model


KEYS_PER_RESET = 4  # configs whose graphs a process keeps at once (each holds a train and an eval graph or two)
RECOMPILE_LIMIT = 128  # dynamo's per-function limit (8 by default), past which it silently runs eager; a
# regional compile keeps a train and an eval graph or two per distinct block of each config
_compiled_for: set[str] = set()  # the keys this process's compiled graphs were traced for (see fresh_graphs_unless)
_sdp_of_graphs: str | None = None  # the SDPA flags they were traced under


def fresh_graphs_unless(key: dict) -> bool:
    """Drop this process's compiled graphs unless dynamo can tell them from `key`'s (the model config,
    batch shape, autocast dtype and SDPA kernel flags); return True when they were dropped. A persistent
    worker runs many jobs in one process. Dynamo guards what it traced (the model's attributes, shapes,
    autocast), so the graphs of other configs are kept, and reused when their config comes back, as it
    does in a lab that alternates arms. Its guards do not see the SDPA flags (a cuDNN run kept the flash
    graph on the H200, bench/RESULTS.md), so a change of flags drops them all; so does a key beyond
    KEYS_PER_RESET, before the recompile limit (raised to RECOMPILE_LIMIT) is reached."""
    global _sdp_of_graphs
    import torch

    name = json.dumps(key, sort_keys=True, default=str)
    sdp = json.dumps(key.get("sdp"), sort_keys=True)
    stale = bool(_compiled_for) and (sdp != _sdp_of_graphs or (name not in _compiled_for
                                                                and len(_compiled_for) >= KEYS_PER_RESET))
    if stale:
        torch._dynamo.reset()
        _compiled_for.clear()
    _compiled_for.add(name)
    _sdp_of_graphs = sdp
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    return stale


def sdp_flags() -> dict[str, bool]:
    """The SDPA kernels enabled now: torch.compile picks one when it traces."""
    import torch

    c = torch.backends.cuda
    return {"flash": c.flash_sdp_enabled(), "cudnn": c.cudnn_sdp_enabled(),
            "efficient": c.mem_efficient_sdp_enabled(), "math": c.math_sdp_enabled()}


def set_sdp_flags(on: dict[str, bool]) -> None:
    """Enable exactly the SDPA kernels `on` names (the keys of sdp_flags), and name them in the compile
    caches' key: the kernel is chosen when a graph is traced, and the AOTAutograd and FX-graph cache keys do
    not see these flags (a cuDNN run on the H200 took its flash graph from the cache, bench/RESULTS.md)."""
    import torch

    c = torch.backends.cuda
    c.enable_flash_sdp(on["flash"])
    c.enable_cudnn_sdp(on["cudnn"])
    c.enable_mem_efficient_sdp(on["efficient"])
    c.enable_math_sdp(on["math"])
    user_tag = os.environ.get("TORCH_COMPILE_CACHE_KEY_TAG", "")
    torch.compiler.config.cache_key_tag = user_tag + "|sdpa:" + ",".join(k for k in sorted(on) if on[k])


def compile_cache_dir() -> Path | None:
    value = os.environ.get(COMPILE_CACHE_ENV, "")
    return Path(value) if value else None


def load_compile_cache(say: Callable[[str], None]) -> int:
    """Load every artifact file of the cache folder into torch's caches; return how many were read. A
    cache is only ever a speed-up: a file torch refuses (another torch version, a truncated copy) is
    skipped with a line in the log, never a failed run."""
    import torch  # here, not at the top: the engine reads COMPILE_CACHE_ENV without loading torch

    folder = compile_cache_dir()
    if folder is None or not folder.is_dir():
        return 0
    loaded = 0
    for f in sorted(folder.glob("*.bin")):
        try:
            ok = torch.compiler.load_cache_artifacts(f.read_bytes()) is not None  # None: refused (it warns)
        except Exception as exc:  # any failure of an optional cache
            say(f"compile cache: skipped {f.name} ({type(exc).__name__}: {exc})")
            continue
        if ok:
            loaded += 1
        else:
            say(f"compile cache: skipped {f.name} (torch read no artifacts from it)")
    return loaded


def save_compile_cache(key: dict, say: Callable[[str], None]) -> Path | None:
    """Write what this process compiled as one artifact file named by `key` (the shapes that select the
    graphs); rewritten in place, so runs of one shape share one file. Runs after training: a failure
    here is logged and the run's result stands."""
    import torch

    folder = compile_cache_dir()
    if folder is None:
        return None
    try:
        saved = torch.compiler.save_cache_artifacts()
        if saved is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = folder / f"{name}.bin"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(saved[0])
        tmp.replace(path)
        return path
    except Exception as exc:  # a failure to save costs speed next time, not this result
        say(f"compile cache: not saved ({type(exc).__name__}: {exc})")
        return None

"""Where a session's runs go, as `lab run` and `auto` take it from the command line: the backend (this
machine or a Ray cluster), GPU ids, persistent workers, the tracker every run mirrors itself to."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from golflab.engine.backend import Backend, Executor, Slot, make_slots
from golflab.errors import ConfigError, GolflabError

BackendOpt = Annotated[str, typer.Option("--backend", help="Where runs execute: local (this machine) or ray "
                                         "(a Ray cluster; needs the ray extra, see docs/cluster.md).")]
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", help="Ray cluster to join, e.g. head:6379 "
                                                   "(default: start a local Ray instance).")]


def parse_gpus(text: str | None) -> list[int] | None:
    if text is None or text == "auto":
        try:
            import torch

            n = torch.cuda.device_count()
        except Exception:  # no torch / no driver: CPU slots
            n = 0
        return list(range(n)) or None
    if text in ("", "none", "cpu"):
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise GolflabError(f"--gpus {text!r}: expected e.g. 0,1,2,3, auto or cpu") from None


def track_env(track: str | None) -> dict[str, str]:
    """The environment that makes every run mirror itself to a tracker (golflab.track reads it)."""
    if track is None:
        return {}
    from golflab.track import check_tracker

    check_tracker(track)
    return {"GOLFLAB_TRACK": track}


def use_workers(flag: bool | None, slots: list[Slot]) -> bool:
    """Persistent workers unless --no-workers (on one H200 they raised a 6-run lab's training share from
    71% to 87%, bench/RESULTS.md issue 19)."""
    return True if flag is None else flag


def make_backend(kind: str, ray_address: str | None, gpus: str | None, procs_per_run: int, parallel: int,
                 cache_dir: Path, executor: Executor, timeout_s: float | None = None, workers: bool | None = None,
                 log: Callable[[str], None] | None = None) -> tuple[Backend, str]:
    """The backend `--backend` names, and where its runs go in words (for the start line)."""
    if kind == "local":
        if ray_address:
            raise ConfigError("--ray-address needs --backend ray")
        from golflab.engine.local import LocalBackend

        slots = make_slots(parse_gpus(gpus), procs_per_run, parallel)
        backend = LocalBackend(slots, cache_dir, executor, timeout_s, workers=use_workers(workers, slots))
        return backend, "slots " + ", ".join(s.label for s in slots)
    if kind != "ray":
        raise ConfigError(f"--backend {kind!r}: expected local or ray")
    from golflab.engine.ray_backend import RayBackend, import_ray

    import_ray()  # without the extra: one line saying how to install it
    use_gpus = None if gpus in (None, "auto") else gpus not in ("", "none", "cpu")
    if use_gpus and not ray_address:  # the local instance sees only the GPUs asked for
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, parse_gpus(gpus) or []))
    # a local instance shares this machine's cores among --parallel runs, as the local backend does
    cores = os.cpu_count() or 1
    cpus = 1 if ray_address else max(1, cores // max(1, parallel))
    backend = RayBackend(executor, timeout_s, ray_address, procs_per_run, cpus, use_gpus=use_gpus,
                         local_cpus=None if ray_address else cores, log=log)
    unit = f"{procs_per_run} GPU(s)" if backend.use_gpus else f"{backend.cpus_per_run} CPU(s)"
    return backend, f"ray {ray_address or 'local instance'}: {backend.slots()} slot(s) of {unit}"

"""A private mount namespace for the proposal's processes, where the kernel lets us make one (root, or
unprivileged user namespaces): the original dataset is hidden under an empty read-only tmpfs (the
train-only view's hard links still reach the train shards), and the run directory (but RUN/untrusted/),
the trusted golflab and Python's library directories are read-only. Without it the harness still
measures, but a proposal's process can read the val shards by absolute path (docs/auto.md).

The namespace is set up by a small wrapper run with `python -I -S` (no site hooks), then exec'd into the
child's command: `unshare --mount --propagation private -- python -I -S -c WRAPPER SPEC -- CMD...`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import golflab

WRAPPER = """
import json, os, subprocess, sys
spec, cmd = json.loads(sys.argv[1]), sys.argv[3:]
def mount(*args):
    subprocess.run(["mount", *args], check=True, stdout=subprocess.DEVNULL)
for d in spec["read_only"]:
    mount("--bind", d, d)
    mount("-o", "remount,bind,ro", d)
for d in spec["writable"]:  # a bind inside a read-only one starts read-only too
    mount("--bind", d, d)
    mount("-o", "remount,bind,rw", d)
for d in spec["hidden"]:
    mount("-t", "tmpfs", "-o", "ro,size=4k,mode=0555", "golflab-hidden", d)
os.execvp(cmd[0], cmd)
"""


def library_dirs() -> list[Path]:
    """Where the harness's Python code comes from: the stdlib, site-packages, the trusted golflab."""
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.add(str(Path(golflab.__file__).resolve().parent))
    return sorted({Path(p).resolve() for p in paths if Path(p).is_dir()})


def _outermost(paths: list[Path]) -> list[Path]:
    """The paths not inside another one (a bind mount of the parent covers them)."""
    return [p for p in paths if not any(q != p and q in p.parents for q in paths)]


class Jail:
    def __init__(self, hidden: list[Path], read_only: list[Path], writable: list[Path]):
        self.spec = {"hidden": [str(p) for p in _outermost(sorted({p.resolve() for p in hidden}))],
                     "read_only": [str(p) for p in _outermost(sorted({p.resolve() for p in read_only}))],
                     "writable": [str(p.resolve()) for p in writable]}
        self.reason = self._probe()

    def _prefix(self) -> list[str]:
        ns = ["--mount", "--propagation", "private"] if os.geteuid() == 0 else \
            ["--user", "--map-root-user", "--mount", "--propagation", "private"]
        return [shutil.which("unshare") or "unshare", *ns, "--", sys.executable, "-I", "-S", "-c", WRAPPER,
                json.dumps(self.spec), "--"]

    def _probe(self) -> str:
        """"" when the namespace can be made here, else why not."""
        if os.environ.get("GOLFLAB_TRUSTED_ISOLATION", "auto") == "off":
            return "turned off (GOLFLAB_TRUSTED_ISOLATION=off)"
        if not shutil.which("unshare") or not shutil.which("mount"):
            return "no unshare or mount command"
        try:
            proc = subprocess.run([*self._prefix(), "true"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"unshare failed: {exc}"
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return "" if proc.returncode == 0 else f"unshare failed: {tail[-200:]}"

    @property
    def active(self) -> bool:
        return not self.reason

    def wrap(self, cmd: list[str]) -> list[str]:
        return [*self._prefix(), *cmd] if self.active else cmd

    def record(self) -> dict:
        return {"mount_namespace": True, **self.spec} if self.active else {"mount_namespace": False,
                                                                           "reason": self.reason}

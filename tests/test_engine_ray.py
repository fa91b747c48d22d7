"""The Ray run backend on a simulated 2-node cluster (ray.cluster_utils.Cluster, one per module): the same
verdicts and stored metrics as the local backend, a killed driver loses and repeats nothing, a lost node's
run is re-queued, cancel leaves no trainer alive. Fake trainer (tests/lab_fake_trainer.py) unless said.
Without ray the cluster tests skip; the install hint and the hardware rule are tested without a cluster."""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from golflab.engine.backend import DataRef, Executor, RunSpec, alive, find_pid, make_slots
from golflab.engine.local import LocalBackend
from golflab.engine.ray_backend import INSTALL_HINT, actor_name, mixed_hardware, time_budgeted
from golflab.engine.store import Store
from golflab.lab.plan import load_plan
from golflab.lab.runner import default_store_path, lab_dir_of, lab_session

# one worker of `pytest -n 2 --dist loadgroup` holds this module's cluster: two clusters would share two cores
pytestmark = pytest.mark.xdist_group("ray-cluster")
ROOT = Path(__file__).resolve().parents[1]
FAKE = [sys.executable, str(ROOT / "tests" / "lab_fake_trainer.py")]
PLAN = """name = "ray"
budget = "8steps"
seeds = { min = 2, max = 3 }
[baseline]
preset = "tiny"
[[arm]]
name = "swiglu"
overrides = ["model.mlp=swiglu"]
[[arm]]
name = "gelu"
overrides = ["model.mlp=gelu"]
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def _fake(log: Path, **knobs: str) -> list[str]:
    """The fake trainer with its knobs on the command line: a Ray worker's environment is the cluster's,
    not this process's."""
    return ["env", f"FAKE_LOG={log}", *(f"{k}={v}" for k, v in knobs.items()), *FAKE]


def _starts(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [ln.split(" ", 1)[1] for ln in log.read_text().splitlines() if ln.startswith("train ")]


def _wait_for(pred, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


# -- without a cluster
def test_backend_ray_without_ray_says_how_to_install(tmp_path):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['golflab', 'lab', 'run', sys.argv[1], "
            "'--backend', 'ray', '--quiet']; from golflab.cli import main; main()")
    res = subprocess.run([sys.executable, "-c", code, str(plan)], env=_env(), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2
    assert INSTALL_HINT in " ".join(res.stderr.split()) and "Traceback" not in res.stderr
    assert not (tmp_path / "ray.lab.sqlite").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["lab", "run", "PLAN", "--backend", "slurm"], "--backend 'slurm': expected local or ray"),
    (["lab", "run", "PLAN", "--ray-address", "head:6379"], "--ray-address needs --backend ray"),
    (["auto", "--plan", "PLAN", "--data", ".", "--ray-address", "head:6379"], "--ray-address needs --backend ray"),
])
def test_backend_options_are_checked(tmp_path, args, message):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    argv = [str(plan) if a == "PLAN" else a for a in args]
    res = subprocess.run([sys.executable, "-m", "golflab", *argv], env=_env(), capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_a_time_budget_refuses_mixed_gpu_types():
    def node(i: int, kind: str | None, gpus: float = 8) -> dict:
        res = {"CPU": 32.0, "GPU": gpus, **({f"accelerator_type:{kind}": 1.0} if kind else {})}
        return {"NodeID": f"n{i}", "Alive": True, "Resources": res}

    assert mixed_hardware([node(0, "H100"), node(1, "H100"), node(2, None, gpus=0)]) is None
    why = mixed_hardware([node(0, "H100"), node(1, "A100")])
    assert why is not None and "A100, H100" in why and "step budget" in why
    dead = {**node(1, "A100"), "Alive": False}
    assert mixed_hardware([node(0, "H100"), dead]) is None
    assert time_budgeted('[budget]\nseconds = 600.0\n') and not time_budgeted('[budget]\nseconds = 0.0\nsteps = 8\n')


# -- on a simulated cluster
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    scratch = tmp_path_factory.mktemp("ray-nodes")
    saved = {k: os.environ.get(k) for k in ("GOLFLAB_RAY_RUNS", "PYTHONPATH")}
    os.environ.update(_env())  # the nodes' workers import this checkout's golflab
    os.environ["GOLFLAB_RAY_RUNS"] = str(scratch)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    c.add_node(num_cpus=2)
    c.wait_for_nodes()
    ray.init(address=c.address, namespace="golflab", log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _ray_backend(cluster, launcher: list[str], **kw):
    from golflab.engine.ray_backend import RayBackend

    return RayBackend(Executor(launcher=launcher), address=cluster.address, **kw)


def _lab(plan_path: Path, backend) -> Store:
    plan = load_plan(plan_path)
    lab_session(plan, backend, default_store_path(plan), poll_s=0.05).run()
    return Store(default_store_path(plan), write=False)


@pytest.mark.slow
def test_same_verdicts_and_metrics_as_the_local_backend(cluster, tmp_path):
    stores = {}
    for kind in ("local", "ray"):
        (tmp_path / kind).mkdir()
        plan = tmp_path / kind / "ray.toml"
        plan.write_text(PLAN)
        log = tmp_path / kind / "fake.log"
        if kind == "local":
            backend = LocalBackend(make_slots(None, parallel=2), lab_dir_of(default_store_path(load_plan(plan))),
                                   Executor(launcher=_fake(log)))
        else:
            backend = _ray_backend(cluster, _fake(log))
            assert backend.slots() == 4  # 2 nodes x 2 CPUs
        stores[kind] = _lab(plan, backend)
    local, on_ray = stores["local"], stores["ray"]
    verdicts = {k: {d["name"]: (d["status"], d["verdict"], d["mean"], d["p"]) for d in s.decisions()}
                for k, s in stores.items()}
    assert verdicts["local"] == verdicts["ray"] and verdicts["ray"]["swiglu"][1] == "win"
    runs = {k: {(r.key, r.seed): r for r in s.runs()} for k, s in stores.items()}
    assert runs["local"].keys() == runs["ray"].keys() and len(runs["ray"]) >= 6
    for ident, r in runs["ray"].items():
        assert r.ok and r.values == runs["local"][ident].values
        assert on_ray.metrics(*ident) == local.metrics(*ident) != []
        assert (Path(r.run_dir) / "result.json").is_file()  # shipped back from the node
        assert ":" in r.node and r.node != runs["local"][ident].node  # host:node id
    assert len({r.node for r in runs["ray"].values()}) == 2  # both nodes trained


@pytest.mark.slow
def test_a_killed_driver_loses_and_repeats_nothing(cluster, tmp_path):
    plan = tmp_path / "ray.toml"
    plan.write_text(PLAN)
    db = tmp_path / "ray.lab.sqlite"
    log = tmp_path / "fake.log"
    cmd = [sys.executable, "-m", "golflab", "lab", "run", str(plan), "--backend", "ray", "--ray-address",
           cluster.address, "--quiet", "--launcher", shlex.join(_fake(log, FAKE_SLEEP="2"))]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stored() -> int:
        return len(Store(db, write=False).runs()) if db.exists() else 0

    # runs stored, and runs training that are not stored yet
    _wait_for(lambda: stored() >= 1 and len(_starts(log)) > stored() + 1)
    proc.send_signal(signal.SIGKILL)  # its actors are detached: they live on
    proc.wait()
    before = {(r.key, r.seed): r for r in Store(db, write=False).runs()}
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    store = Store(db, write=False)
    after = {(r.key, r.seed): r for r in store.runs()}
    for k, r in before.items():
        assert (after[k].finished_at, after[k].values) == (r.finished_at, r.values)
    starts = _starts(log)
    assert len(starts) == len(set(starts)) == len(after)  # every run trained exactly once
    assert any(r.adopted for r in after.values())  # the runs in flight were waited for
    assert {d["name"] for d in store.decisions()} == {"baseline", "swiglu", "gelu"}


def _spec(tmp_path: Path, i: int) -> RunSpec:
    toml = (f'seed = {i}\n[model]\nmlp = "relu2"\n[budget]\nseconds = 0.0\nsteps = 8\n'
            f'[data]\npath = "{tmp_path}"\n')
    return RunSpec(f"k{i}", i, tmp_path / "runs" / f"r{i}", toml, label=f"run {i}")


def _drain(backend, n: int, timeout: float = 90.0) -> list:
    done: list = []
    end = time.time() + timeout
    while len(done) < n and time.time() < end:
        done += backend.poll()
        time.sleep(0.1)
    return done


@pytest.mark.slow
def test_removing_a_node_requeues_its_runs(cluster, tmp_path):
    node = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    log, lines = tmp_path / "fake.log", []
    backend = _ray_backend(cluster, _fake(log, FAKE_SLEEP="3"), log=lines.append)
    _wait_for(lambda: backend.slots() == 6, 20)
    for i in range(6):  # every CPU of the 3 nodes: two runs are on the third
        backend.submit(_spec(tmp_path, i))
    _wait_for(lambda: len(_starts(log)) == 6)
    cluster.remove_node(node)
    done = _drain(backend, 6)
    assert sorted(o.spec.seed for o in done) == list(range(6)) and all(o.status == "ok" for o in done)
    assert sum("re-queued" in ln for ln in lines) == 2 and len(_starts(log)) == 8
    assert backend.running() == []


@pytest.mark.slow
def test_cancel_leaves_no_trainer_process_alive(cluster, tmp_path):
    log = tmp_path / "fake.log"
    # the trainer under a shell that starts a second one: the whole tree must go
    tree = ["sh", "-c", '"$@" & "$@"; wait', "sh", *_fake(log, FAKE_HANG="relu2/seed0")]
    backend = _ray_backend(cluster, tree)
    spec = _spec(tmp_path, 0)
    backend.submit(spec)
    _wait_for(lambda: len(_starts(log)) == 2)
    node_dir = _starts(log)[0]
    pid = find_pid(node_dir)
    assert pid and alive(pid, node_dir)
    backend.cancel(spec.ident)
    assert find_pid(node_dir) is None and backend.running() == []

    def actor_gone() -> bool:
        try:
            backend.ray.get_actor(actor_name(spec.run_dir), namespace="golflab")
        except ValueError:
            return True
        return False

    _wait_for(actor_gone, 10)


@pytest.mark.slow
def test_a_node_with_other_data_fails_that_run_and_a_code_proposal_travels_with_its_run(cluster, tmp_path):
    log = tmp_path / "fake.log"
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text('{"shards": 1}')
    code = tmp_path / "proposal"
    (code / "src").mkdir(parents=True)
    (code / "src" / "marker.txt").write_text("the proposal's code\n")
    # the proposal's copy on the node is first on the trainer's PYTHONPATH: it prints the copy's file
    show = 'cat "${PYTHONPATH%%:*}/marker.txt"; exec "$@"'
    backend = _ray_backend(cluster, ["sh", "-c", show, "sh", *_fake(log)])
    good = dataclasses.replace(_spec(tmp_path, 1), data=DataRef.of(data), code=code, code_rev="abc")
    other = dataclasses.replace(_spec(tmp_path, 2), data=DataRef(str(data), "0" * 64))
    backend.submit(good)
    backend.submit(other)
    done = {o.spec.seed: o for o in _drain(backend, 2)}
    assert done[1].status == "ok" and "the proposal's code" in (good.run_dir / "stdout.log").read_text()
    assert done[2].status == "crashed" and "differs from the one the plan was started with" in done[2].error
    assert len(_starts(log)) == 1  # the run on other data never trained


@pytest.mark.slow
def test_auto_runs_on_ray(cluster, tmp_path):
    from golflab.auto.proposers import SpaceProposer
    from golflab.auto.search import search_session
    from golflab.auto.space import load_space
    from golflab.engine.session import Settings

    space = tmp_path / "s.toml"
    space.write_text('[[param]]\nkey = "model.mlp"\nchoices = ["relu2", "swiglu", "gelu", "silu"]\n')
    out = tmp_path / "out"
    settings = Settings(preset="tiny", data=str(tmp_path / "no-data"), budget="8steps", max_experiments=3,
                        seeds_max=2)
    backend = _ray_backend(cluster, _fake(tmp_path / "fake.log"))
    session = search_session(settings, SpaceProposer(load_space(space, "tiny"), seed=3, fidelity=1.0), out,
                             backend, poll_s=0.05)
    decisions = session.run()
    assert len(decisions) == 4 and session.stop_reason.startswith("--max-experiments")
    runs = Store(out / "auto.sqlite", write=False).runs()
    assert runs and all(r.ok and ":" in r.node for r in runs)


@pytest.mark.slow
def test_a_run_past_its_timeout_is_stopped_on_its_node(cluster, tmp_path):
    log = tmp_path / "fake.log"
    backend = _ray_backend(cluster, _fake(log, FAKE_HANG="relu2/seed3"), timeout_s=1.5)
    backend.submit(_spec(tmp_path, 3))
    (out,) = _drain(backend, 1, timeout=60)
    assert out.status == "timeout" and "timed out after 2s" in out.error
    assert find_pid(_starts(log)[0]) is None

"""How workers start (harness.worker_start, harness.forkserver), with real warm parents and real backends:
a forked worker inherits no framework state from its parent - and the same checks catch a parent that
created a session before forking -, a worker that crashes, hangs or runs out of memory is still a record,
a warm parent that dies is replaced, latency measured in a forked worker equals a fresh spawn's, and the
caches a sweep shares are made once and read without hashing."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from test_worker import QUICK, _workers_of, job, needs, tiny_nets

from harness import worker_start
from harness.backends.base import get_backend
from harness.executors import SweepRequest, get_executor
from harness.forkserver import open_device_files
from harness.measure.sweep import SweepSpec
from harness.results.records import Config
from harness.results.store import ResultsStore
from harness.worker import spawn_and_store, spawn_worker
from harness.worker_start import ParentKey, WarmParents, parent_key, sweep_workers

BACKENDS = ("pytorch", "onnxruntime", "opencv", "caffe")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(worker_start.FORK_SERVER_ENV, raising=False)


def available(backend: str) -> None:
    info = type(get_backend(backend)).probe()
    if not info.available:
        pytest.skip(f"{backend} is not available: {info.reason}")


def fresh_import_threads(key: ParentKey) -> int:
    """Threads of a fresh interpreter (the parent's, with its environment) that imported what the warm parent
    imports: what a warm parent may hold at a fork, and no more."""
    code = (f"from harness.forkserver import warm_up; warm_up({key.backend!r}); import os; "
            "print(len(os.listdir('/proc/self/task')))")
    done = subprocess.run([key.python, "-c", code], capture_output=True, text=True, env=dict(key.env), check=True)
    return int(done.stdout.split()[-1])


def assert_clean(state: dict, fresh_threads: int) -> None:
    """The isolation a forked worker must have: what the tests below check of every backend's warm parent."""
    assert state["live_framework_objects"] == {}, "the parent had loaded a network or created a session"
    assert state["dynamo_graphs"] == 0, "the parent had compiled with dynamo"
    assert not state["torch_cuda_initialized"] and state["device_files"] == [], "the parent had touched a GPU"
    assert state["threads"] == 1
    assert state["parent_threads_at_fork"] <= fresh_threads, "a thread pool was running in the parent"


def inherited(parents: WarmParents, key: ParentKey) -> dict:
    state = parents.call(key, "inherited-state")
    assert state is not None, "the warm parent did not fork"
    return state


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forked_worker_inherits_no_framework_state(backend: str) -> None:
    """The warm parent of each backend, as a sweep starts it, forks children that hold no network, session,
    compiled graph, CUDA context or thread pool of their parent's: only imported modules."""
    available(backend)
    key = parent_key(backend)
    assert key is not None
    parents = WarmParents()
    try:
        parents.prestart([key])
        assert_clean(inherited(parents, key), fresh_import_threads(key))
        assert_clean(inherited(parents, key), fresh_import_threads(key))  # and again: forking left nothing behind
    finally:
        parents.close()


DIRTY_PARENT = textwrap.dedent("""
    # Runs at interpreter start, before the warm parent's own warm-up: a parent that loaded networks, as a
    # backend's load does, and then forks. Once: the interpreters torch.compile starts must not do it again.
    import os, sys
    NET = os.environ.pop("HARNESS_TEST_NET", None)
    KEEP = []
    if NET:
        sys.path[:0] = os.environ["HARNESS_TEST_PATHS"].split(os.pathsep)
        from harness.backends.base import RunTarget, get_backend
        from harness.ir.build import load_graph
        graph = load_graph(NET)
        for backend, mode in (("onnxruntime", None), ("pytorch", "compile")):
            session = get_backend(backend).load(RunTarget(graph, "tiny", 1, mode=mode))
            session.forward()
            KEEP.append(session)
""")


def test_the_isolation_checks_fail_when_the_parent_created_a_session(tmp_path: Path) -> None:
    """The same checks on a warm parent that created an ONNX Runtime session and compiled a PyTorch module
    before forking: its child reports the live session and module, the compiled graph and the parent's
    running thread pools, so the checks above would fail."""
    needs("torch")
    needs("onnxruntime")
    (net,) = tiny_nets(tmp_path, 1)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(DIRTY_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
           "HARNESS_TEST_PATHS": os.pathsep.join(sys.path), "HARNESS_TEST_NET": net}
    key = ParentKey.of(sys.executable, "onnxruntime", env)
    parents = WarmParents()
    try:
        parents.prestart([key])
        state = inherited(parents, key)
    finally:
        parents.close()
    assert state["live_framework_objects"].get("onnxruntime.InferenceSession", 0) >= 1
    assert state["live_framework_objects"].get("torch.nn.Module", 0) >= 1
    assert state["dynamo_graphs"] >= 1
    with pytest.raises(AssertionError):
        assert_clean(state, fresh_import_threads(parent_key("onnxruntime")))  # type: ignore[arg-type]
    assert state["parent_threads_at_fork"] > fresh_import_threads(parent_key("onnxruntime"))  # type: ignore[arg-type]


HAZARDS = textwrap.dedent("""
    import json, numpy as np, onnxruntime, torch
    from harness.forkserver import fork_hazards, thread_ids
    baseline = thread_ids()
    before = fork_hazards(baseline)
    torch.nn.functional.conv2d(torch.ones(1, 3, 64, 64), torch.ones(8, 3, 3, 3))  # starts torch's intra-op pool
    print(json.dumps({"before": before, "after": fork_hazards(baseline)}))
""")


def test_a_parent_refuses_to_fork_once_a_thread_pool_runs() -> None:
    """The check a warm parent makes before every fork: a thread started since its warm-up (here torch's
    intra-op pool, started by one convolution) is a hazard; so is an open NVIDIA device file."""
    needs("torch")
    needs("onnxruntime")
    if os.cpu_count() == 1:
        pytest.skip("one CPU: torch's intra-op pool has no thread of its own")
    done = subprocess.run([sys.executable, "-c", HAZARDS], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["before"] == [] and "thread(s) started since the warm-up" in report["after"][0]
    with open(__file__) as held:
        assert open_device_files((held.name,)) == [held.name]


def test_crash_hang_and_kill_of_forked_workers_become_records(tmp_path: Path) -> None:
    """In one sweep of forked workers: a worker killed by a signal (as the OOM killer would) and a worker
    stuck past its time limit become ``failed`` records, and the configurations after them still run."""
    needs("torch")
    nets = tiny_nets(tmp_path, 3)
    out = tmp_path / "res"
    records = []
    with sweep_workers(["pytorch"]) as workers:
        workers.ready([Config(n, "pytorch", 1) for n in nets])

        def kill_when_running() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                pids = _workers_of(os.getpid())
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    return
                time.sleep(0.1)

        killer = threading.Thread(target=kill_when_running)
        killer.start()
        records.append(spawn_and_store(job(nets[0], out, min_s=60, min_window_s=60)))
        killer.join()
        records.append(spawn_and_store(job(nets[1], out, min_s=120, min_window_s=120, worker_timeout_s=4)))
        records.append(spawn_and_store(job(nets[2], out)))
    assert [r.status for r in records] == ["failed", "failed", "ok"], [r.message for r in records]
    assert records[0].message.startswith("worker killed by signal SIGKILL")
    assert records[1].message.startswith("worker stuck: no result within 4 s")
    assert records[2].metadata["worker_start"]["how"] == "forked"
    for record in records[:2]:  # written by the parent, which knows the worker it lost was forked, and from where
        assert record.metadata["recorded_by"] == "parent"
        assert record.metadata["worker_start"] == {**records[2].metadata["worker_start"],
                                                   "parent_threads_at_fork": record.metadata["worker_start"][
                                                       "parent_threads_at_fork"]}
    assert [r.status for r in ResultsStore(out).records()][-3:] == ["failed", "failed", "ok"]
    assert not _workers_of(os.getpid())


@pytest.mark.needs_pycaffe
def test_a_caffe_abort_in_a_forked_worker_leaves_its_warm_parent_serving(tmp_path: Path) -> None:
    """Caffe's CHECK failure aborts the forked worker, not its warm parent: the abort is a record with
    Caffe's fatal line, and the next configuration is forked from the same parent."""
    from test_worker import CEIL_MODE

    (net,) = tiny_nets(tmp_path, 1)
    bad = tmp_path / "ceil.prototxt"
    bad.write_text(CEIL_MODE)
    spec = SweepSpec(networks=[str(bad), net], backends=["caffe"], batches=[1], settings=QUICK)
    records = get_executor("local")().run(SweepRequest(spec, tmp_path / "res"))
    assert [r.status for r in records] == ["failed", "ok"], [r.message for r in records]
    assert "ceil_mode" in records[0].message
    assert records[1].metadata["worker_start"]["how"] == "forked"


def test_a_warm_parent_that_dies_is_replaced_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """A warm parent killed between configurations (the OOM killer may pick it: it is large) is noticed at the
    next fork, said once, and replaced; one killed while its worker runs leaves that worker to finish and
    record. Every configuration has its record."""
    needs("torch")
    nets = tiny_nets(tmp_path, 3)
    out = tmp_path / "res"
    notes: list[str] = []
    with sweep_workers(["pytorch"], notes.append) as workers:
        workers.ready([Config(n, "pytorch", 1) for n in nets])
        first = spawn_and_store(job(nets[0], out))
        os.kill(first.metadata["worker_start"]["parent_pid"], signal.SIGKILL)
        time.sleep(0.5)
        second = spawn_and_store(job(nets[1], out, min_s=3, min_window_s=3))
        parent = second.metadata["worker_start"]["parent_pid"]
        assert parent != first.metadata["worker_start"]["parent_pid"]
        assert any("warm parent of pytorch died" in n and "starting a new warm parent" in n for n in notes), notes
        key = parent_key("pytorch")
        assert worker_start._active is not None and key is not None
        running = worker_start._active  # the same parents: kill this one while its next worker measures

        def kill_parent_soon() -> None:
            time.sleep(1.0)
            os.kill(running.parents[key].proc.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_parent_soon)
        killer.start()
        third = spawn_and_store(job(nets[2], out, min_s=4, min_window_s=4))
        killer.join()
    assert [first.status, second.status, third.status] == ["ok", "ok", "ok"], third.message
    assert len(ResultsStore(out).records()) == 3


REFUSING_PARENT = textwrap.dedent("""
    # A warm parent whose check before every fork finds a hazard (as one whose framework started a thread
    # pool after its warm-up would): it stays alive and refuses every fork.
    import os, sys, threading, time
    def refuse():
        for _ in range(6000):
            main = sys.modules.get("__main__")
            spec = getattr(main, "__spec__", None)
            if spec is not None and spec.name != "harness.forkserver":
                return
            real = getattr(main, "fork_hazards", None)
            if real is not None:
                main.fork_hazards = lambda baseline: [*real(baseline), "a hazard the test made"]
                return
            time.sleep(0.005)
    if os.environ.get("HARNESS_TEST_REFUSE"):
        threading.Thread(target=refuse, daemon=True).start()
""")


def test_a_warm_parent_that_refuses_to_fork_is_replaced_then_given_up(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent that refuses to fork is replaced as a dead one is (what it refuses for does not go away), but
    kept alive until the sweep ends (its children in other lanes go on measuring); after MAX_RESTARTS of them
    its workers are spawned without asking again. A spawned worker that
    hangs is recorded by the parent as spawned."""
    needs("torch")
    monkeypatch.setattr(worker_start, "MAX_RESTARTS", 2)
    (net,) = tiny_nets(tmp_path, 1)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(REFUSING_PARENT)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
           "HARNESS_TEST_REFUSE": "1"}
    notes: list[str] = []
    with sweep_workers(["pytorch"], notes.append):
        parents = worker_start._active
        assert parents is not None
        first = spawn_worker(job(net, tmp_path / "res"), env_extra=env).record
        refused = [n for n in notes if "refused to fork" in n and "a hazard the test made" in n]
        assert len(refused) == len(notes) == 2, notes
        assert refused[0].endswith("starting a new warm parent")
        assert refused[1].endswith("after 2 warm parents, its workers are spawned fresh from now on")
        (key,) = parents.spawn_only
        assert parents.restarts[key] == 2 and key not in parents.parents
        retired = list(parents.retired)
        assert len(retired) == 2 and all(p.proc.poll() is None for p in retired)
        stuck = spawn_worker(job(net, tmp_path / "res", min_s=120, min_window_s=120, worker_timeout_s=4)).record
        stuck_env = spawn_worker(job(net, tmp_path / "res", min_s=120, min_window_s=120, worker_timeout_s=4),
                                 env_extra=env).record
        assert len(notes) == 2  # not asked again
    assert all(p.proc.wait(timeout=30) is not None for p in retired)  # closed with the sweep
    assert first.status == "ok" and first.metadata["worker_start"] == {"how": "spawned"}, first.message
    assert stuck.metadata["worker_start"]["how"] == "forked"  # the other parent of pytorch was not affected
    assert stuck_env.message.startswith("worker stuck") and stuck_env.metadata["recorded_by"] == "parent"
    assert stuck_env.metadata["worker_start"] == {"how": "spawned"}


SLOW_PARENT = "import os, time\ntime.sleep(float(os.environ.get('HARNESS_TEST_SLOW_START', 0)))\n"


def test_a_parent_still_importing_stalls_no_other_parents_forks(tmp_path: Path) -> None:
    """While a lane waits for one warm parent to get ready (a replacement importing its framework), a fork
    from another parent goes ahead: each parent has its own lock."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    fast = ParentKey.of(sys.executable, "opencv", env)
    slow = ParentKey.of(sys.executable, "opencv", {**env, "HARNESS_TEST_SLOW_START": "15"})
    parents = WarmParents()
    try:
        parents.prestart([fast])
        parents.wait_ready()
        waiting = threading.Thread(target=parents.call, args=(slow, "inherited-state"))
        parents.prestart([slow])
        waiting.start()
        time.sleep(0.5)  # the slow parent's lock is held now, while it sleeps before importing anything
        assert parents.call(fast, "inherited-state") is not None
        assert waiting.is_alive(), "the fork from the ready parent waited for the slow one"
        waiting.join()
    finally:
        parents.close()


def test_a_backend_whose_parent_cannot_start_is_spawned(tmp_path: Path) -> None:
    """A warm parent that cannot import its framework (here: blocked) is not a lost configuration: the worker
    is spawned and records what it met, as it does without the fork server."""
    (net,) = tiny_nets(tmp_path, 1)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "import sys\nclass B:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'torch':\n            raise ModuleNotFoundError('no torch here')\n"
        "sys.meta_path.insert(0, B())\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    with sweep_workers(["pytorch"]):
        outcome = spawn_worker(job(net, tmp_path / "res"), env_extra=env)
    without = spawn_worker(job(net, tmp_path / "res"), env_extra=env)  # no sweep: no fork server
    assert outcome.record.message == without.record.message and "no torch here" in (outcome.record.message or "")
    assert outcome.record.status == without.record.status != "ok"
    assert outcome.record.metadata["worker_start"] == {"how": "spawned"}


@pytest.mark.slow
def test_latency_in_a_forked_worker_equals_a_fresh_spawns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same configuration measured in forked and in spawned workers, interleaved: the ratio of their
    median latencies is within the noise of the runs of one kind."""
    needs("torch")
    out = tmp_path / "res"
    config_job = job("squeezenet_v1.1", out, min_s=1.0, min_window_s=1.0, min_iters=20)
    medians: dict[str, list[float]] = {"forked": [], "spawned": []}
    # first set here, so that the end of the test puts back no sweep (not the one below, closed by then)
    monkeypatch.setattr(worker_start, "_active", None)
    with sweep_workers(["pytorch"]) as workers:
        workers.ready([config_job.config])
        parents = worker_start._active
        for _ in range(5):
            for how in ("forked", "spawned"):
                monkeypatch.setattr(worker_start, "_active", parents if how == "forked" else None)
                record = spawn_worker(config_job).record
                assert record.status == "ok" and record.metadata["worker_start"]["how"] == how, record.message
                medians[how].append(record.latency.median_s)
    ratio = statistics.median(medians["forked"]) / statistics.median(medians["spawned"])
    spread = max(max(v) / min(v) for v in medians.values())  # how far apart runs of one kind were
    assert abs(ratio - 1) <= max(spread - 1, 0.05), (ratio, medians)


def test_a_stamped_cache_is_not_hashed_again_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.convert import cache

    folder = tmp_path / "c"
    folder.mkdir()
    primary = folder / "a.bin"

    def build(path: Path) -> list[Path]:
        cache.write_atomic(path, lambda tmp: tmp.write_bytes(b"x" * 1000))
        return [path]

    cache.cached(primary, build)
    hashed: list[Path] = []
    sha = cache._sha256
    monkeypatch.setattr(cache, "_sha256", lambda path: hashed.append(path) or sha(path))
    assert cache.intact(primary) and len(hashed) == 1  # fresh: too new to be stamped, so hashed
    monkeypatch.setattr(cache, "SETTLED_S", 0.0)
    time.sleep(0.05)
    assert cache.intact(primary) and len(hashed) == 2  # hashed, and now stamped
    assert cache.intact(primary) and cache.intact(primary) and len(hashed) == 2  # trusted: not read again
    before = primary.stat()
    primary.write_bytes(b"y" * 1000)  # same size; the modification time set back as well
    os.utime(primary, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not cache.intact(primary) and len(hashed) == 3  # the change time moved: hashed, and damaged


def test_the_shared_artefacts_are_made_once_and_an_onnx_worker_needs_no_torch(tmp_path: Path) -> None:
    """prepare_shared makes each artefact once per sweep (the weights once per network for every batch, an
    export per batch); an ONNX Runtime session whose export is cached then loads without importing torch."""
    needs("torch")
    needs("onnxruntime")
    (net,) = tiny_nets(tmp_path, 1)
    configs = [Config(net, b, batch) for b in ("pytorch", "onnxruntime", "opencv") for batch in (1, 2)]
    worker_start.prepare_shared(configs)
    cache = Path(os.environ["HARNESS_CACHE_DIR"])
    assert len(list((cache / "weights").glob("*.npy"))) == 1
    assert len([p for p in (cache / "onnx").glob("*.onnx") if not p.name.endswith(".probe.onnx")]) == 2
    code = textwrap.dedent(f"""
        import sys
        from harness.backends.base import RunTarget, get_backend
        from harness.ir.build import load_graph
        with get_backend("onnxruntime").load(RunTarget(load_graph({net!r}), {net!r}, 2)) as session:
            session.forward()
        print("torch" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "False", done.stderr[-2000:]

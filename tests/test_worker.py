"""The per-configuration worker (``python -m harness.worker``) and the local executor, with real worker
processes and real backends: a record appended by the worker itself, a worker killed mid-sweep, a stuck
worker, a Caffe abort, real out-of-memory under an address-space limit, and the interpreter rule (the
worker needs only the standard library and numpy, as under pycaffe's interpreter)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.backends.base import BackendInfo, runs_on
from harness.executors import SweepRequest, get_executor
from harness.measure.settings import CPU_SETTINGS, apply_overrides
from harness.measure.sweep import SweepSpec
from harness.results.records import Config, Placement
from harness.results.store import ResultsStore
from harness.worker import PROCESS_NAME, Job, spawn_and_store, spawn_worker

QUICK = {"warmup_iters": 1, "warmup_s": 0, "min_iters": 2, "min_s": 0, "min_window_s": 0, "idle_s": 0}
TINY = """name: "tiny{n}"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: 3 dim: 8 dim: 8 }} }} }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param {{ num_output: {n} kernel_size: 3 }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" }}
layer {{ name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param {{ num_output: 5 }} }}
"""


def tiny_nets(folder: Path, count: int) -> list[str]:
    paths = []
    for n in range(2, 2 + count):
        path = folder / f"tiny{n}.prototxt"
        path.write_text(TINY.format(n=n))
        paths.append(str(path))
    return paths


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


def needs(module: str) -> None:
    pytest.importorskip(module, reason=f"{module} is not installed")


def job(network: str, results: Path, backend: str = "pytorch", batch: int = 1, **settings: float) -> Job:
    return Job(Config(network, backend, batch), apply_overrides(CPU_SETTINGS, {**QUICK, **settings}), str(results),
               placement=Placement(executor="test", host="here"))


def test_a_worker_loads_measures_and_appends_its_own_record(tmp_path: Path) -> None:
    needs("torch")
    (net,) = tiny_nets(tmp_path, 1)
    outcome = spawn_worker(job(net, tmp_path / "res"))
    record = outcome.record
    assert record.status == "ok", record.message
    assert outcome.stored  # the worker wrote it itself
    (stored,) = ResultsStore(tmp_path / "res").records()
    assert stored == record
    assert record.placement.worker_pid not in (None, os.getpid()) and record.placement.shard == "results.jsonl"
    assert record.latency.median_s > 0 and record.metadata["backend_precision"] == "fp32"


def _parent_of(pid: int) -> int | None:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None


def _workers_of(pid: int) -> list[int]:
    """PIDs of worker processes (named ``harness-worker``, spawned or forked from a warm parent) that descend
    from ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_bytes().strip()
        except OSError:
            continue
        if comm != PROCESS_NAME:
            continue
        ancestor = _parent_of(int(entry.name))
        while ancestor not in (None, 0, 1, pid):
            ancestor = _parent_of(ancestor)
        if ancestor == pid:
            found.append(int(entry.name))
    return found


def test_a_worker_killed_mid_sweep_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """The middle configuration's worker is killed from outside (as the kernel's OOM killer would):
    its record says so and the next configuration still runs, in a fresh worker."""
    needs("torch")
    nets = tiny_nets(tmp_path, 3)
    spec = SweepSpec(networks=nets, backends=["pytorch"], batches=[1],
                     settings={**QUICK, "min_s": 1.0, "min_window_s": 1.0})
    killed: list[int] = []
    started: list[str] = []

    def on_start(config: Config) -> None:
        started.append(config.network)
        if config.network == nets[1]:
            def kill() -> None:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not killed:
                    for pid in _workers_of(os.getpid()):
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    time.sleep(0.2)
            threading.Thread(target=kill, daemon=True).start()

    records = get_executor("local")().run(SweepRequest(spec, tmp_path / "res", on_start=on_start))
    assert killed and started == nets
    assert [r.status for r in records] == ["ok", "failed", "ok"]
    assert records[1].message.startswith("worker killed by signal SIGKILL")
    assert records[1].metadata["recorded_by"] == "parent"
    assert [r.status for r in ResultsStore(tmp_path / "res").records()] == ["ok", "failed", "ok"]
    assert len({r.placement.worker_pid for r in (records[0], records[2])}) == 2  # a fresh worker each


def test_a_stuck_worker_is_killed_and_recorded(tmp_path: Path) -> None:
    needs("torch")
    (net,) = tiny_nets(tmp_path, 1)
    started = time.monotonic()
    record = spawn_and_store(job(net, tmp_path / "res", min_s=120, min_window_s=120, worker_timeout_s=4))
    assert time.monotonic() - started < 60
    assert record.status == "failed" and record.message.startswith("worker stuck: no result within 4 s")
    assert ResultsStore(tmp_path / "res").records() == [record]
    assert not _workers_of(os.getpid())


BLOCKER = textwrap.dedent("""
    # What the harness's interpreter has and pycaffe's need not: none of it may be imported.
    import sys
    BLOCKED = {"torch", "yaml", "rich", "pandas", "pynvml", "onnx", "onnxruntime", "cv2", "matplotlib", "pyarrow"}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"blocked in this test: {name}")
            return None

    sys.meta_path.insert(0, Blocker())
""")



def test_the_worker_needs_only_the_standard_library_and_numpy(tmp_path: Path) -> None:
    """A Caffe worker runs under the interpreter that has pycaffe, which need not have torch, yaml, rich,
    pandas or nvidia-ml-py: the worker, the measurement window and the Caffe backend import without them,
    and a configuration still ends as a record."""
    from harness.backends.base import get_backend
    from harness.errors import BackendUnavailable

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    (net,) = tiny_nets(tmp_path, 1)
    try:
        _, pycaffe_env = get_backend("caffe").worker_python()
    except BackendUnavailable:
        pycaffe_env = {}
    path = pycaffe_env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), path])}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env={**os.environ, **env}, capture_output=True)
    assert b"blocked in this test: torch" in probe.stderr  # the blocker is active
    outcome = spawn_worker(job(net, tmp_path / "res", backend="caffe"), env_extra=env)
    assert outcome.record.status in ("ok", "unavailable"), outcome.record.message
    assert "blocked in this test" not in (outcome.record.message or ""), outcome.log_tail


def test_devices_a_backend_runs_on() -> None:
    gpu_build = BackendInfo("caffe", True, devices=["cpu", "cuda:N"])
    torch_two = BackendInfo("pytorch", True, devices=["cpu", "cuda:0", "cuda:1"])
    assert runs_on(gpu_build, "cuda:7") and runs_on(gpu_build, "cpu")
    assert runs_on(torch_two, "cuda:1") and not runs_on(torch_two, "cuda:2")
    assert not runs_on(BackendInfo("x", False, devices=["cpu"]), "cpu")


CEIL_MODE = TINY.format(n=3).replace(
    'layer { name: "relu"',
    'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"\n'
    "        pooling_param { pool: MAX kernel_size: 2 stride: 2 ceil_mode: false } }\n"
    'layer { name: "relu"')


@pytest.mark.needs_pycaffe
def test_caffe_runs_in_a_worker_and_an_abort_becomes_a_record(tmp_path: Path) -> None:
    nets = tiny_nets(tmp_path, 1)
    bad = tmp_path / "ceil.prototxt"
    bad.write_text(CEIL_MODE)
    spec = SweepSpec(networks=[str(bad), *nets], backends=["caffe"], batches=[1], settings=QUICK)
    records = get_executor("local")().run(SweepRequest(spec, tmp_path / "res"))
    assert [r.status for r in records] == ["failed", "ok"], [r.message for r in records]
    # Caffe aborts with its parse error; a cuDNN build's engine rewrite reads the file with Caffe's own
    # caffe.proto first and refuses it there
    assert "ceil_mode" in records[0].message and ("caffe aborted: F" in records[0].message
                                                  or "caffe.proto refuses it" in records[0].message)
    ok = records[1]
    assert ok.config.mode == "caffe" and ok.metadata["backend_engine"] == "CAFFE"
    assert ok.placement.worker_pid not in (None, os.getpid())
    assert Path(ok.metadata["backend_python"]).name.startswith("python")


OOM_BACKENDS = ("pytorch", "onnxruntime", "opencv", "caffe")


@pytest.mark.parametrize("backend", OOM_BACKENDS)
def test_a_real_out_of_memory_is_recorded_oom_and_final(backend: str, tmp_path: Path) -> None:
    """Each installed backend really runs out of host memory under an address-space limit on its worker
    (alexnet at B=512 needs several GB): the record is ``oom``, larger batches are inferred, not run."""
    from harness.backends.base import get_backend

    info = type(get_backend(backend)).probe()
    if not info.available:
        pytest.skip(f"{backend} is not available: {info.reason}")
    spec = SweepSpec(networks=["alexnet"], backends=[backend], batches=[512, 1024],
                     settings={**QUICK, "worker_address_space_bytes": 2.5e9})
    launched: list[str] = []
    records = get_executor("local")().run(SweepRequest(spec, tmp_path / "res", on_start=lambda c: launched.append(c)))
    assert [r.status for r in records] == ["oom", "oom"], [r.message for r in records]
    assert records[1].inferred_from == records[0].key and [c.batch for c in launched] == [512]
    if os.environ.get("HARNESS_FORK_SERVER", "1") != "0":  # a sweep's workers are forked from warm parents
        assert records[0].metadata["worker_start"]["how"] == "forked"


SYNTHETIC_NVML = Path(__file__).parent / "data" / "synthetic_nvml"


def test_cuda_n_is_pinned_by_uuid_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench --device cuda:1` on a machine with two (synthetic, see tests/data/synthetic_nvml) GPUs: the
    worker is pinned to the second GPU's UUID, the record carries its UUID and model, and its key the
    model, so results of another GPU model never stand for it. This torch has no CUDA: the configuration
    ends `unavailable`, with the reason, after a real worker and a real poller process ran."""
    needs("torch")
    import json

    from harness.cli.main import main
    from harness.measure import devices

    gpus = [{"uuid": "GPU-5e000000-0000-4000-8000-00000000000a", "name": "Synthetic A"},
            {"uuid": "GPU-5e000000-0000-4000-8000-00000000000b", "name": "Synthetic B"}]
    monkeypatch.setenv("HARNESS_SYNTHETIC_NVML", json.dumps({"gpus": gpus}))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SYNTHETIC_NVML), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(SYNTHETIC_NVML))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "cuda_driver_uuids", lambda: None)  # no libcuda here: the NVML route
    (net,) = tiny_nets(tmp_path, 1)
    flags = [f"--set={k}={v}" for k, v in QUICK.items()]
    assert main(["bench", net, "--backend", "pytorch", "--device", "cuda:1", "--batch", "1",
                 "--out", str(tmp_path / "res"), *flags]) == 1  # ran, nothing measured
    (record,) = ResultsStore(tmp_path / "res").records()
    assert record.status == "unavailable" and "CUDA device" in record.message
    assert record.config.device == "cuda:1" and record.config.hardware == "Synthetic B"
    assert "|cuda[Synthetic B]|" in record.key
    assert record.placement.gpu_uuid == gpus[1]["uuid"] and record.placement.cuda_visible_devices == gpus[1]["uuid"]


def test_a_gpu_build_of_caffe_is_selected_for_any_cuda_device(cudnn_caffe: Path) -> None:
    from harness.backends.caffe.backend import CaffeBackend
    from harness.measure.sweep import available_backends

    info = CaffeBackend.probe()
    assert info.available, info.reason
    assert "cuda:N" in info.devices and info.details["cudnn"] is True
    assert "caffe" in available_backends("cuda:3")
    assert CaffeBackend().modes("cuda:3") == ["cudnn", "caffe"]
    assert CaffeBackend().modes("cpu") == ["caffe"]


@pytest.mark.slow
def test_compile_of_more_than_eight_networks_in_one_sweep_never_falls_back(tmp_path: Path) -> None:
    """In one process dynamo's recompile limit (8) turns the 9th network into eager without a word; a
    sweep runs each configuration in a fresh worker - forked from one warm parent, which never compiles -
    so all nine really run compiled, and say so."""
    needs("torch")
    nets = tiny_nets(tmp_path, 9)
    spec = SweepSpec(networks=nets, backends=["pytorch"], batches=[1], modes=["compile"], settings=QUICK)
    records = get_executor("local")().run(SweepRequest(spec, tmp_path / "res"))
    assert [r.status for r in records] == ["ok"] * 9, [r.message for r in records]
    for record in records:
        compiled = record.metadata["backend_compile"]
        assert compiled["compiled_graph_ran"] is True and record.metadata["backend_compile_s"] > 0
    assert len({r.placement.worker_pid for r in records}) == 9
    assert {r.metadata["worker_start"]["how"] for r in records} == {"forked"}
    assert len({r.metadata["worker_start"]["parent_pid"] for r in records}) == 1

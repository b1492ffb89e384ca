"""``--executor multi-gpu``: the lane logic, which is all that can run without GPUs. Two CPU lanes measure
for real (series handed to lanes whole, in ascending batch order, one shard per lane, resume across
shards); lanes of GPUs come from synthetic NVML (tests/data/synthetic_nvml: made-up GPUs, no
measurement), one per UUID, each series once per GPU model, every worker placed on its lane's GPU -
where torch then finds no GPU and says so. The real multi-GPU run needs a machine with GPUs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from test_measure_nvml import UUID_A, UUID_B, synthetic_nvml  # noqa: F401  (a fixture)
from test_worker import QUICK, needs, tiny_nets

from harness.cli.main import main
from harness.executors import SweepRequest, get_executor
from harness.executors.multi_gpu import Lane, MultiGpuExecutor, all_gpus, gpu_lanes
from harness.measure import devices
from harness.measure.devices import identify
from harness.measure.sweep import SweepSpec
from harness.results.store import ResultsStore


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


def test_cpu_lanes_take_whole_series_and_write_their_own_shards(tmp_path: Path) -> None:
    needs("torch")
    nets = tiny_nets(tmp_path, 3)
    cpu = identify("cpu")
    executor = MultiGpuExecutor([Lane(cpu, "lane0"), Lane(cpu, "lane1")])
    spec = SweepSpec(networks=nets, backends=["pytorch"], batches=[2, 1], devices=["cpu"], settings=QUICK)
    out = tmp_path / "res"
    records = executor.run(SweepRequest(spec, out))
    assert sorted(r.status for r in records) == ["ok"] * 6, [r.message for r in records]
    shards = {r.placement.shard for r in records}
    assert shards == {"results-lane0.jsonl", "results-lane1.jsonl"}  # both lanes worked, each its own file
    for net in nets:
        series = [r for r in records if r.config.network == net]
        assert len({r.placement.shard for r in series}) == 1  # a series never splits across lanes
        assert [r.config.batch for r in series] == [1, 2]  # ascending, so the OOM rule holds inside it
    assert all(r.placement.executor == "multi-gpu" and r.config.hardware == cpu.model for r in records)
    assert len({r.placement.worker_pid for r in records}) == 6  # a fresh worker per configuration
    starts = [r.metadata["worker_start"] for r in records]  # forked, both lanes from one warm parent
    assert {s["how"] for s in starts} == {"forked"} and len({s["parent_pid"] for s in starts}) == 1

    skipped = []
    again = executor.run(SweepRequest(spec, out, on_done=lambda record, config: skipped.append(record)))
    assert again == [] and skipped == [None] * 6  # resume reads every lane's shard
    merged = ResultsStore(out).read()
    assert len(merged.records) == 6 and not merged.superseded and not merged.unreadable


def test_gpu_lanes_one_per_uuid_each_series_once_per_model(tmp_path: Path, synthetic_nvml, monkeypatch) -> None:  # noqa: F811
    needs("torch")
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A"}, {"uuid": UUID_B, "name": "Synthetic B"}])
    monkeypatch.setattr(devices, "cuda_driver_uuids", lambda: None)  # no libcuda here: the NVML route
    assert all_gpus() == ["cuda:0", "cuda:1"]
    host = socket.gethostname()
    lanes = gpu_lanes(["cuda:0", "cuda:1", "cuda:0"], host)
    assert [(lane.identity.uuid, lane.writer) for lane in lanes] == [(UUID_A, f"{host}-gpu0"), (UUID_B, f"{host}-gpu1")]

    nets = tiny_nets(tmp_path, 2)
    spec = SweepSpec(networks=nets, backends=["pytorch"], batches=[1], devices=["cuda:0", "cuda:1"],
                     modes=["eager-fp32"], settings={**QUICK, "poll_hz": 20})
    records = MultiGpuExecutor().run(SweepRequest(spec, tmp_path / "res"))
    # each network once on each GPU model; on its lane's GPU, pinned by UUID
    assert sorted((r.config.network, r.config.hardware) for r in records) == sorted(
        (n, m) for n in nets for m in ("Synthetic A", "Synthetic B"))
    for record in records:
        lane = lanes[0] if record.config.hardware == "Synthetic A" else lanes[1]
        assert record.placement.gpu_uuid == record.placement.cuda_visible_devices == lane.identity.uuid
        assert record.placement.shard == f"results-{lane.writer}.jsonl" and record.config.device == lane.device
        assert record.status == "unavailable"  # synthetic GPUs: torch sees no CUDA device, and says so


def test_multi_gpu_is_for_gpus(tmp_path: Path, capsys) -> None:
    (net,) = tiny_nets(tmp_path, 1)
    args = ["bench", net, "--backend", "pytorch", "--out", str(tmp_path / "res"), "--executor", "multi-gpu"]
    assert main([*args, "--device", "cpu"]) == 2
    assert "one lane per GPU; for cpu use --executor local" in capsys.readouterr().err
    assert main([*args, "--no-wait"]) == 2
    assert "--no-wait applies to --executor slurm" in capsys.readouterr().err
    assert get_executor("multi-gpu") is MultiGpuExecutor

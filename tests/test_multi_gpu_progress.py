"""``--executor multi-gpu``'s progress total: every series runs once per GPU MODEL (on any lane of that model),
so the total is the plan's size times the number of models, not of lanes. Three SYNTHETIC GPUs (two of one
model); workers are not started (each configuration's launch is a stand-in that returns its record)."""

from __future__ import annotations

from pathlib import Path

from test_measure_nvml import UUID_A, UUID_B, synthetic_nvml  # noqa: F401  (a fixture)
from test_worker import tiny_nets

from harness.executors import SweepRequest
from harness.executors.multi_gpu import MultiGpuExecutor
from harness.measure import devices, sweep
from harness.measure.sweep import SweepSpec
from harness.results.records import Record

UUID_A2 = "GPU-5e000000-0000-4000-8000-0000000000a2"


def test_progress_total_is_series_times_models(tmp_path: Path, synthetic_nvml, monkeypatch) -> None:  # noqa: F811
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A"}, {"uuid": UUID_A2, "name": "Synthetic A"},
                         {"uuid": UUID_B, "name": "Synthetic B"}])
    monkeypatch.setattr(devices, "cuda_driver_uuids", lambda: None)  # no libcuda here: the NVML route
    monkeypatch.setattr(sweep, "available_backends", lambda device: ["pytorch"])
    launched: list[Record] = []

    def launcher(self, request, lane, host):
        def launch(config):
            launched.append(Record(config=config, status="unavailable", message="stand-in launch"))
            return launched[-1]
        return launch

    monkeypatch.setattr(MultiGpuExecutor, "_launcher", launcher)
    totals: list[int] = []
    done: list[object] = []
    nets = tiny_nets(tmp_path, 2)
    spec = SweepSpec(networks=nets, backends=["pytorch"], batches=[1, 2], modes=["eager-fp32"],
                     devices=["cuda:0", "cuda:1", "cuda:2"])
    MultiGpuExecutor().run(SweepRequest(spec, tmp_path / "res", on_total=totals.append,
                                        on_done=lambda record, config: done.append(record)))
    # 2 networks x 2 batches, once on model A (either of its two lanes) and once on model B
    assert totals == [8] and len(launched) == len(done) == 8
    assert sorted({(r.config.network, r.config.batch, r.config.hardware) for r in launched}) == sorted(
        (n, b, m) for n in nets for b in (1, 2) for m in ("Synthetic A", "Synthetic B"))

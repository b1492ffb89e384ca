"""Who shares the GPU and the CPUs with a window, on users' own machines: the desktop's graphics processes are
recorded but do not flag a window; a multi-GPU sweep's lanes do not count each other as foreign.

GPU process lists come from tests/data/synthetic_nvml (SYNTHETIC: made-up GPUs and processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from test_measure_nvml import UUID_A, SleepSession, synthetic_nvml  # noqa: F401  (a fixture)

from harness.measure.contention import ContentionGuard, CpuTicks, ProcessTable, _Edge, is_desktop
from harness.measure.timer import TimingProtocol
from harness.measure.window import GpuTarget, MeasurementWindow, WindowSettings

MIB = 2**20


def test_graphics_only_and_desktop_processes_are_recorded_not_flagged() -> None:
    ours = os.getpid()
    guard = ContentionGuard(100.0, 100.0, gpu=True)
    guard.begin([[500, 80 * MIB, "G", "/usr/lib/xorg/Xorg"]])
    report = guard.end([[500, 80 * MIB, "G", "/usr/lib/xorg/Xorg"], [ours, 900 * MIB, "C", "python3"],
                        [777, 120 * MIB, "C+G", "/usr/bin/gnome-shell"], [888, 700 * MIB, "C", "/usr/bin/python3"]],
                       [[[600, 30 * MIB, "G", None]]])
    assert report.observed["gpu_other_pids"] == [888]  # the one compute context that is not the desktop's
    assert report.reasons == ["other process(es) on the GPU: pid 888"]
    desktop = {d["pid"]: d for d in report.observed["gpu_desktop_processes"]}
    assert set(desktop) == {500, 600, 777}
    assert desktop[777] == {"pid": 777, "type": "C+G", "name": "/usr/bin/gnome-shell"}


def test_desktop_rule() -> None:
    assert is_desktop("G", None) and is_desktop("C+G", "/usr/bin/kwin_wayland") and is_desktop("C", "Xwayland")
    assert not is_desktop("C", "/usr/bin/python3") and not is_desktop(None, None) and not is_desktop("C+G", "blender")


def test_a_desktop_beside_a_gpu_window_does_not_flag_it(synthetic_nvml) -> None:  # noqa: F811
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A"}], graphics=[[4242, 64 * MIB], [4343, 200 * MIB]],
                   processes=[[4343, 200 * MIB]], names={"4242": "/usr/lib/xorg/Xorg", "4343": "/usr/bin/gnome-shell"})
    settings = WindowSettings(protocol=TimingProtocol(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.0),
                              min_window_s=0.3, idle_s=0.1, contention_cpu_share=100.0,
                              contention_runnable_share=100.0)
    window = MeasurementWindow("cuda:0", settings, GpuTarget(UUID_A))
    window.begin()
    result = window.measure(SleepSession(), batch=1, macs_per_forward=None)  # type: ignore[arg-type]
    assert result.contention.flag() is None, result.contention.reasons
    seen = {d["pid"]: (d["type"], d["name"]) for d in result.contention.observed["gpu_desktop_processes"]}
    assert seen == {4242: ("G", "/usr/lib/xorg/Xorg"), 4343: ("C+G", "/usr/bin/gnome-shell")}
    assert result.timeline["process_memory"][0][0][2:] in (["G", "/usr/lib/xorg/Xorg"], ["C+G", "/usr/bin/gnome-shell"])


def test_lanes_are_the_harness_siblings_and_their_trees() -> None:
    table = ProcessTable(parent={50: 1, 100: 50, 101: 50, 102: 50, 103: 101, 104: 100, 200: 1},
                         ticks={50: 1, 100: 1, 101: 1, 102: 1, 103: 1, 104: 1, 200: 1})
    assert set(table.lanes(100, lambda pid: pid != 102)) == {101, 103}  # 102 is not the harness's
    assert set(table.tree(100)) == {100, 104}
    assert table.lanes(200, lambda pid: True) == {}  # a process of init has no sweep around it


def test_workers_forked_by_other_warm_parents_are_lanes() -> None:
    """Sweep 50 with warm parents 60 (ours: worker 100 and its sibling 101) and 70 (another backend's, whose
    worker 110 measures another GPU's lane at the same time); 120 is not the harness's."""
    table = ProcessTable(parent={50: 1, 60: 50, 70: 50, 120: 50, 100: 60, 101: 60, 104: 100, 110: 70},
                         ticks={pid: 1 for pid in (50, 60, 70, 120, 100, 101, 104, 110)})
    lanes = table.lanes(100, lambda pid: pid != 120, lambda pid: pid in (60, 70))
    assert set(lanes) == {60, 101, 70, 110}
    assert set(table.lanes(100, lambda pid: pid != 120)) == {101}  # without knowing 60 is a warm parent


def test_a_warm_parent_counts_with_its_own_ticks() -> None:
    """Warm parent 70 reaped another lane's worker during the window: its children's ticks (cutime) jump by
    the worker's whole life, which must not enter the window as lane time (it would hide others' load)."""
    def table(reaped: int) -> ProcessTable:
        return ProcessTable(parent={50: 1, 60: 50, 70: 50, 100: 60},
                            ticks={50: 5, 60: 3, 70: 4 + reaped, 100: 10}, own={50: 5, 60: 3, 70: 4, 100: 10})

    def warm(pid: int) -> bool:
        return pid in (60, 70)

    assert table(0).lanes(100, lambda pid: True, warm) == table(5000).lanes(100, lambda pid: True, warm)


def test_the_worker_name_the_guard_knows_is_the_workers() -> None:
    from harness.measure.contention import WORKER_PROCESS_NAME
    from harness.worker import PROCESS_NAME

    assert PROCESS_NAME.decode() == WORKER_PROCESS_NAME


def test_lanes_cpu_time_is_recorded_and_not_counted_as_others() -> None:
    guard = ContentionGuard(0.25, 100.0, gpu=False)
    ticks = 1.0 / os.sysconf("SC_CLK_TCK")
    # over 1 s: the CPUs were busy 200 ticks-worth; ours 50, the other lane's compile 150
    n = round(1.0 / ticks)
    guard._timed = [_Edge(0.0, CpuTicks(0, 0), {1: 0}, {2: 0}),
                    _Edge(1.0, CpuTicks(2 * n, 0), {1: n // 2}, {2: 2 * n - n // 2})]
    figures = guard._cpu_figures()
    assert figures["cpu_others_cores"] == 0.0 and figures["cpu_lanes_cores"] == 1.5


def test_a_sibling_lane_burning_cpu_is_a_lane_not_a_neighbour() -> None:
    """A sweep process with two harness children: one measures a window, the other burns a core (as one
    lane's torch.compile does). The window attributes the burner to the lanes."""
    sweep = textwrap.dedent(f"""
        import json, subprocess, sys
        burner = subprocess.Popen([sys.executable, "-c", "import time, harness; t = time.time()\\n"
                                   "while time.time() - t < 6: pass"])
        window = subprocess.run([sys.executable, "-c", {WINDOW_CODE!r}], capture_output=True, text=True)
        burner.kill()
        print(window.stdout.strip() or window.stderr)
    """)
    proc = subprocess.run([sys.executable, "-c", sweep], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    observed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert observed["lanes"] and observed["cpu_lanes_cores"] > 0, observed


WINDOW_CODE = """
import json, time, harness
from harness.measure.contention import ContentionGuard
guard = ContentionGuard(0.25, 100.0, gpu=False)
time.sleep(0.5)
guard.begin()
guard.timed_start()
time.sleep(2.0)
guard.timed_end()
observed = guard.end().observed
print(json.dumps({"lanes": sorted(guard._lanes), "cpu_lanes_cores": observed.get("cpu_lanes_cores")}))
"""

"""Writes every ``synthetic-*`` capture in this directory from ONE hand-made list of kernel executions.

Each file follows its tool's documented layout (see docs/kernels.md) but none was produced by the tool:
there was no GPU where this project was written. The kernel names are real names (see
tests/data/kernel_names.tsv); durations, grids and timestamps are invented. Every file carries
``harness.kernels.synthetic.MARKER`` inside (a first CSV line, a top-level JSON key, a one-row SQLite table), so
a renamed copy is still recognised as synthetic by ``harness profile --capture`` and ``harness kernels``. Run
from the repository root: ``python kernels_profiles/make_synthetic.py``; then ``python
kernels_profiles/make_synthetic.py --expected`` rewrites expected/*.json from the parsers (check the diff by
hand).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from harness.kernels.synthetic import MARKER_LINE, MARKER_TABLE  # noqa: E402  (the repository's own harness)

# (layer, mangled-or-plain name as the tool stores it, demangled name, duration ns, grid, block, registers)
KERNELS = [
    ("conv1", None, "void cudnn::detail::implicit_convolve_sgemm<float, float, 1024, 5, 5, 3, 3, 3, 1, true, false, "
     "true>(int, int, int, float const*, int, float*, float*, kernel_conv_params, int, float, float, int, float*, "
     "float*, int, int)",
     41000, (7, 196, 1), (128, 1, 1), 64),
    ("conv1/bn", None, "void gemmk1_kernel<float, 256, 5, false, false, false, false>(cublasGemmk1Params<float>)",
     9000, (98, 1, 1), (256, 1, 1), 30),
    ("conv1/bn", None, "void caffe::div_kernel<float>(int, float const*, float const*, float*)",
     6000, (784, 1, 1), (512, 1, 1), 16),
    ("conv2_1/dw", "_Z17im2col_gpu_kernelIfEviPKT_iiiiiiiiiiiiPS0_", "void caffe::im2col_gpu_kernel<float>"
     "(int, float const*, int, int, int, int, int, int, int, int, int, int, int, int, float*)",
     12000, (784, 1, 1), (512, 1, 1), 40),
    ("conv2_1/dw", "_Z13gemv2N_kernelIiiffffLi128ELi32ELi4ELi4ELi1ELb0E16cublasGemvParamsI30"
     "cublasGemvTensorStridedBatchedIKfES3_S1_IfEfEEvT11_", None, 30000, (3136, 1, 1), (128, 1, 1), 32),
    ("conv2_1/sep", None, "maxwell_scudnn_128x64_relu_interior_nn", 25000, (98, 1, 1), (256, 1, 1), 126),
    ("conv2_1/sep", None, "void cudnn::detail::activation_fw_4d_kernel<float, float, 128, 1, 4>"
     "(cudnnTensorStruct, float const*, cudnnTensorStruct, float*, float, float, float, int)", 4000,
     (784, 1, 1), (128, 1, 1), 20),
    ("pool6", None, "void caffe::AvePoolForward<float>(int, float const*, int, int, int, int, int, int, int, int, "
     "int, int, int, int, float*)", 3000, (2, 1, 1), (512, 1, 1), 28),
    ("fc7", "_Z17gemv2T_kernel_valIiiffffLi128ELi16ELi2ELi2ELb0ELb0E16cublasGemvParamsI30cublasGemvTensorStrided"
     "BatchedIKfES3_fEEvT11_", None, 55000, (250, 1, 1), (128, 1, 1), 48),
    ("prob", None, "void caffe::kernel_channel_max<float>(int, int, int, float const*, float*)", 2000,
     (1, 1, 1), (512, 1, 1), 18),
]
MEMCPY = ("data", "[CUDA memcpy HtoD]", 13000)  # one input copy before the layers
T0 = 1_000_000_000  # ns
DEVICE = "Tesla P100-PCIE-12GB (0)"


def _demangled(k) -> str:
    from harness.kernels.demangle import demangle
    return k[2] if k[2] is not None else demangle(k[1])


def _timeline():
    """(layer, stored name, demangled, start, dur, grid, block, regs, correlation) with 1 us gaps."""
    t, corr, rows = T0, 100, []
    rows.append((MEMCPY[0], MEMCPY[1], MEMCPY[1], t, MEMCPY[2], None, None, None, corr))
    t += MEMCPY[2] + 1000
    for k in KERNELS:
        corr += 1
        rows.append((k[0], k[1] or k[2], _demangled(k), t, k[3], k[4], k[5], k[6], corr))
        t += k[3] + 1000
    return rows


def _write_csv(path: Path, preamble: list[str], rows: list[list]) -> None:
    """The table under the tool's preamble, the synthetic marker line first (the parsers skip preambles)."""
    with path.open("w", newline="") as f:
        for line in [MARKER_LINE, *preamble]:
            f.write(line + "\n")
        csv.writer(f, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(rows)


def nvprof_trace(cuda8: bool) -> None:
    pre = ["==4242== NVPROF is profiling process 4242, command: ./build/tools/caffe time -gpu 0",
           "==4242== Profiling application: ./build/tools/caffe time -gpu 0", "==4242== Profiling result:"]
    cols = ["Start", "Duration", "Grid X", "Grid Y", "Grid Z", "Block X", "Block Y", "Block Z",
            "Registers Per Thread", "Static SMem", "Dynamic SMem", "Size", "Throughput"]
    cols += ([] if cuda8 else ["SrcMemType", "DstMemType"]) + ["Device", "Context", "Stream", "Name"]
    cols += [] if cuda8 else ["Correlation_ID"]
    units = ["ms", "us", "", "", "", "", "", "", "", "B", "B", "MB", "GB/s"] + ([] if cuda8 else ["", ""])
    units += ["", "", "", ""] + ([] if cuda8 else [""])
    rows = [cols, units]
    for _layer, _stored, name, start, dur, grid, block, regs, corr in _timeline():
        kernel = grid is not None
        g = list(grid) if kernel else ["", "", ""]
        b = list(block) if kernel else ["", "", ""]
        mem = [] if cuda8 else (["", ""] if kernel else ["Pageable", "Device"])
        shown = f"{name} [{corr}]" if cuda8 else name  # CUDA 8 appends the correlation id to the name
        row = [start / 1e6, dur / 1e3, *g, *b, regs if kernel else "", 0 if kernel else "", 0 if kernel else "",
               "" if kernel else 0.574219, "" if kernel else 43.13, *mem, DEVICE, "1", "7", shown]
        rows.append(row + ([] if cuda8 else [corr]))
    _write_csv(HERE / f"synthetic-nvprof-{'cuda8' if cuda8 else 'cuda9'}-gputrace.csv", pre, rows)


def _by_name():
    totals: dict[str, list] = {}
    for _l, _s, name, _st, dur, *_ in _timeline():
        totals.setdefault(name, [0, 0, []])
        totals[name][0] += dur
        totals[name][1] += 1
        totals[name][2].append(dur)
    return sorted(totals.items(), key=lambda kv: -kv[1][0])


def nvprof_summary(cuda8: bool) -> None:
    pre = ["==4242== NVPROF is profiling process 4242, command: ./build/tools/caffe time -gpu 0",
           "==4242== Profiling result:"]
    total = sum(v[0] for _, v in _by_name())
    head = ([] if cuda8 else ["Type"]) + ["Time(%)", "Time", "Calls", "Avg", "Min", "Max", "Name"]
    units = ([] if cuda8 else [""]) + ["%", "us", "", "us", "us", "us", ""]
    rows = [head, units]
    for i, (name, (ns, calls, durs)) in enumerate(_by_name()):
        typ = [] if cuda8 else (["GPU activities"] if i == 0 else [""])
        rows.append([*typ, 100.0 * ns / total, ns / 1e3, calls, ns / calls / 1e3, min(durs) / 1e3,
                     max(durs) / 1e3, name])
    if not cuda8:
        rows.append(["API calls", 61.2, 88123.4, 12, 7343.6, 3.1, 80211.0, "cudaMalloc"])
    _write_csv(HERE / f"synthetic-nvprof-{'cuda8' if cuda8 else 'cuda9'}-gpusummary.csv", pre, rows)


def nvprof_metrics() -> None:
    pre = ["==4242== NVPROF is profiling process 4242, command: ./build/tools/caffe time -gpu 0",
           "==4242== Some kernel(s) will be replayed on device 0 in order to collect all events/metrics.",
           "==4242== Profiling result:", "==4242== Metric result:"]
    rows: list[list] = [["Device", "Kernel", "Invocations", "Metric Name", "Metric Description", "Min", "Max",
                         "Avg"]]
    table = {  # per kernel: occupancy (fraction), efficiencies (%), levels (0-10), stall %
        "gemv2T": (_demangled(KERNELS[8]), 0.062, 80.7, 75.0, 1, 2, {"stall_memory_dependency": 40.0,
                   "stall_exec_dependency": 29.0, "stall_sync": 8.0, "stall_inst_fetch": 5.0, "stall_other": 8.6}),
        "gemv2N": (_demangled(KERNELS[4]), 0.062, 99.3, 100.0, 0, 1, {"stall_memory_dependency": 3.0,
                   "stall_exec_dependency": 50.0, "stall_sync": 22.0, "stall_not_selected": 12.8}),
        "gemmk1": (_demangled(KERNELS[1]), 0.118, 98.4, 96.0, 1, 1, {"stall_memory_dependency": 50.0,
                   "stall_exec_dependency": 17.5, "stall_sync": 8.4, "stall_pipe_busy": 16.1}),
    }
    for name, occ, wee, be, dram, sp, stalls in table.values():
        def row(metric, desc, value, name=name):
            return [DEVICE, name, 1, metric, desc, value, value, value]
        rows.append(row("achieved_occupancy", "Achieved Occupancy", occ))
        rows.append(row("warp_execution_efficiency", "Warp Execution Efficiency", f"{wee:.6f}%"))
        rows.append(row("branch_efficiency", "Branch Efficiency", f"{be:.6f}%"))
        rows.append(row("dram_utilization", "Device Memory Utilization", f"Low ({dram})"))
        rows.append(row("single_precision_fu_utilization", "Single-Precision Function Unit Utilization",
                        f"Low ({sp})"))
        for metric, value in stalls.items():
            rows.append(row(metric, "Issue Stall Reasons", f"{value:.6f}%"))
    _write_csv(HERE / "synthetic-nvprof-metrics.csv", pre, rows)


def nsys_csv() -> None:
    total = sum(v[0] for _, v in _by_name())
    new = [["Time (%)", "Total Time (ns)", "Instances", "Avg (ns)", "Med (ns)", "Min (ns)", "Max (ns)",
            "StdDev (ns)", "Name"]]
    old = [["Time(%)", "Total Time (ns)", "Instances", "Average", "Minimum", "Maximum", "StdDev", "Name"]]
    for name, (ns, calls, durs) in _by_name():
        if name.startswith("[CUDA"):
            continue  # the kernel summary lists kernels only
        new.append([round(100.0 * ns / total, 1), ns, calls, ns / calls, ns / calls, min(durs), max(durs), 0.0, name])
        old.append([round(100.0 * ns / total, 1), ns, calls, ns / calls, min(durs), max(durs), 0.0, name])
    _write_csv(HERE / "synthetic-nsys-cuda_gpu_kern_sum.csv",
               ["Processing [report.sqlite] with [cuda_gpu_kern_sum.py]... "], new)
    _write_csv(HERE / "synthetic-nsys-gpukernsum.csv", ["Using report.sqlite for SQL queries.",
                                                          "Running [gpukernsum.py report.sqlite]... "], old)
    trace = [["Start (ns)", "Duration (ns)", "CorrId", "GrdX", "GrdY", "GrdZ", "BlkX", "BlkY", "BlkZ", "Reg/Trd",
              "StcSMem (MB)", "DymSMem (MB)", "Bytes (MB)", "Throughput (MB/s)", "SrcMemKd", "DstMemKd", "Device",
              "Ctx", "GreenCtx", "Strm", "Name"]]
    for _l, _s, name, start, dur, grid, block, regs, corr in _timeline():
        k = grid is not None
        trace.append([start, dur, corr, *(grid or ("", "", "")), *(block or ("", "", "")), regs if k else "",
                      0.0 if k else "", 0.0 if k else "", "" if k else 0.602, "" if k else 46309.0,
                      "" if k else "Pageable", "" if k else "Device", "NVIDIA H100 80GB HBM3 (0)", 1, "", 7, name])
    _write_csv(HERE / "synthetic-nsys-cuda_gpu_trace.csv",
               ["Processing [report.sqlite] with [cuda_gpu_trace.py]... "], trace)


def _mark(db: sqlite3.Connection) -> None:
    """The synthetic marker as a one-row table (the parsers read only the tables they know)."""
    db.execute(f"CREATE TABLE {MARKER_TABLE} (note TEXT NOT NULL)")
    db.execute(f"INSERT INTO {MARKER_TABLE} VALUES (?)", (MARKER_LINE,))


def nsys_sqlite() -> None:
    path = HERE / "synthetic-nsys.sqlite"
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript("""
    CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
      contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER,
      shortName INTEGER, mangledName INTEGER, gridX INTEGER, gridY INTEGER, gridZ INTEGER, blockX INTEGER,
      blockY INTEGER, blockZ INTEGER, registersPerThread INTEGER, staticSharedMemory INTEGER,
      dynamicSharedMemory INTEGER);
    CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
      contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, bytes INTEGER,
      copyKind INTEGER, srcKind INTEGER, dstKind INTEGER);
    CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
      globalTid INTEGER, correlationId INTEGER, nameId INTEGER, returnValue INTEGER, callchainId INTEGER);
    CREATE TABLE NVTX_EVENTS (start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, rangeId INTEGER,
      category INTEGER, color INTEGER, text TEXT, globalTid INTEGER, endGlobalTid INTEGER, textId INTEGER,
      domainId INTEGER, uint64Value INTEGER, int64Value INTEGER, doubleValue REAL, uint32Value INTEGER,
      int32Value INTEGER, floatValue REAL, jsonTextId INTEGER, jsonText TEXT);
    """)
    strings: dict[str, int] = {}

    def sid(text: str) -> int:
        if text not in strings:
            strings[text] = len(strings) + 1
            db.execute("INSERT INTO StringIds VALUES (?, ?)", (strings[text], text))
        return strings[text]

    tid, host = 281474976710656, T0 - 500_000  # launches happen on the host before the GPU runs them
    layers: dict[str, list[int]] = {}
    for layer, stored, name, start, dur, grid, block, regs, corr in _timeline():
        launch = host
        host += 4000
        layers.setdefault(layer, [launch - 500, launch + 3000])[1] = launch + 3000
        db.execute("INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?,?,?,?,?,?,?,?)",
                   (launch, launch + 2500, 1, tid, corr, sid("cudaLaunchKernel_v7000"), 0, 0))
        if grid is None:
            db.execute("INSERT INTO CUPTI_ACTIVITY_KIND_MEMCPY VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (start, start + dur, 0, 1, 7, corr, 1, 602112, 1, 0, 2))
            continue
        db.execute("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (start, start + dur, 0, 1, 7, corr, 1, sid(name), sid(name.split("(")[0].split("<")[0]),
                    sid(stored), *grid, *block, regs, 0, 0))
    for layer, (a, b) in layers.items():
        if layer != "data":
            db.execute("INSERT INTO NVTX_EVENTS (start, end, eventType, text, globalTid) VALUES (?,?,?,?,?)",
                       (a, b, 59, f"layer:{layer}", tid))
    _mark(db)
    db.commit()
    db.close()


def nvprof_sqlite() -> None:
    path = HERE / "synthetic-nvprof.nvvp.sqlite"
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript("""
    CREATE TABLE StringTable (_id_ INTEGER PRIMARY KEY AUTOINCREMENT, value TEXT NOT NULL UNIQUE);
    CREATE TABLE CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL (_id_ INTEGER PRIMARY KEY AUTOINCREMENT,
      cacheConfig BLOB, sharedMemoryConfig INTEGER, registersPerThread INTEGER,
      partitionedGlobalCacheRequested INTEGER, partitionedGlobalCacheExecuted INTEGER, start INTEGER, end INTEGER,
      completed INTEGER, deviceId INTEGER, contextId INTEGER, streamId INTEGER, gridX INTEGER, gridY INTEGER,
      gridZ INTEGER, blockX INTEGER, blockY INTEGER, blockZ INTEGER, staticSharedMemory INTEGER,
      dynamicSharedMemory INTEGER, localMemoryPerThread INTEGER, localMemoryTotal INTEGER, correlationId INTEGER,
      gridId INTEGER, name INTEGER, reserved0 INTEGER);
    CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY (_id_ INTEGER PRIMARY KEY AUTOINCREMENT, copyKind INTEGER,
      srcKind INTEGER, dstKind INTEGER, flags INTEGER, bytes INTEGER, start INTEGER, end INTEGER,
      deviceId INTEGER, contextId INTEGER, streamId INTEGER, correlationId INTEGER, runtimeCorrelationId INTEGER);
    CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (_id_ INTEGER PRIMARY KEY AUTOINCREMENT, cbid INTEGER,
      start INTEGER, end INTEGER, processId INTEGER, threadId INTEGER, correlationId INTEGER, returnValue INTEGER);
    """)
    for _layer, stored, _name, start, dur, grid, block, regs, corr in _timeline():
        if grid is None:
            db.execute("INSERT INTO CUPTI_ACTIVITY_KIND_MEMCPY (copyKind, srcKind, dstKind, flags, bytes, start, "
                       "end, deviceId, contextId, streamId, correlationId, runtimeCorrelationId) "
                       "VALUES (1,0,2,0,602112,?,?,0,1,7,?,?)", (start, start + dur, corr, corr))
            continue
        db.execute("INSERT OR IGNORE INTO StringTable (value) VALUES (?)", (stored,))
        (name_id,) = db.execute("SELECT _id_ FROM StringTable WHERE value = ?", (stored,)).fetchone()
        db.execute("INSERT INTO CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL (registersPerThread, start, end, completed, "
                   "deviceId, contextId, streamId, gridX, gridY, gridZ, blockX, blockY, blockZ, correlationId, "
                   "name) VALUES (?,?,?,?,0,1,7,?,?,?,?,?,?,?,?)",
                   (regs, start, start + dur, start + dur, *grid, *block, corr, name_id))
    _mark(db)
    db.commit()
    db.close()


def ncu_csv() -> None:
    ids = ["ID", "Process ID", "Process Name", "Host Name", "Kernel Name", "Context", "Stream", "Block Size",
           "Grid Size", "Device", "CC"]
    details = [[*ids, "Section Name", "Metric Name", "Metric Unit", "Metric Value"]]
    raw_metrics = ["gpu__time_duration.sum", "launch__registers_per_thread",
                   "sm__warps_active.avg.pct_of_peak_sustained_active",
                   "smsp__thread_inst_executed_per_inst_executed.ratio",
                   "smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct",
                   "smsp__warp_issue_stalled_short_scoreboard_per_warp_active.pct",
                   "smsp__warp_issue_stalled_barrier_per_warp_active.pct"]
    raw = [[*ids, *raw_metrics], [*[""] * len(ids), "nsecond", "register/thread", "%", "", "%", "%", "%"]]
    for i, (_l, _s, name, _st, dur, grid, block, regs, _c) in enumerate(_timeline()):
        if grid is None:
            continue  # ncu profiles kernels only
        short = name.split("(")[0]
        ident = [i, 4242, "python3.11", "127.0.0.1", short, 1, 7, str(block), str(grid), 0, "9.0"]
        details.append([*ident, "GPU Speed Of Light Throughput", "Duration", "usecond", f"{dur / 1e3:,.2f}"])
        details.append([*ident, "Launch Statistics", "Registers Per Thread", "register/thread", regs])
        details.append([*ident, "Occupancy", "Achieved Occupancy", "%", "12.5"])
        raw.append([*ident, dur, regs, 12.5, 28.0, 30.0, 20.0, 10.0])
    _write_csv(HERE / "synthetic-ncu-details.csv", ["==PROF== Disconnected from process 4242"], details)
    _write_csv(HERE / "synthetic-ncu-raw.csv", [], raw)


def kineto_json() -> None:
    events: list[dict] = [{"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 1, "tid": 1,
                           "ts": (T0 - 600_000) / 1e3, "dur": 1200.0, "args": {}}]
    host = T0 - 500_000
    layers: dict[str, list[float]] = {}
    for layer, _s, name, start, dur, grid, block, regs, corr in _timeline():
        layers.setdefault(layer, [host - 500, host + 3000])[1] = host + 3000
        events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
                       "ts": host / 1e3, "dur": 2.5, "args": {"correlation": corr, "External id": corr + 1000}})
        gpu = {"ph": "X", "pid": 0, "tid": 7, "ts": start / 1e3, "dur": dur / 1e3, "name": name,
               "args": {"External id": corr + 1000, "device": 0, "stream": 7, "correlation": corr}}
        if grid is None:
            gpu.update(cat="gpu_memcpy", name="Memcpy HtoD (Pageable -> Device)")
        else:
            gpu["cat"] = "kernel"
            gpu["args"].update({"registers per thread": regs, "grid": list(grid), "block": list(block)})
        events.append(gpu)
        host += 4000
    for layer, (a, b) in layers.items():
        if layer != "data":
            events.append({"ph": "X", "cat": "user_annotation", "name": f"layer:{layer}", "pid": 1, "tid": 1,
                           "ts": a / 1e3, "dur": (b - a) / 1e3, "args": {}})
            events.append({"ph": "X", "cat": "cpu_op", "name": "aten::conv2d", "pid": 1, "tid": 1,
                           "ts": (a + 100) / 1e3, "dur": (b - a - 200) / 1e3, "args": {"External id": 1}})
    doc = {"harnessSynthetic": MARKER_LINE, "schemaVersion": 1,
           "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}],
           "traceEvents": events, "displayTimeUnit": "ms"}
    (HERE / "synthetic-kineto.json").write_text(json.dumps(doc, indent=1) + "\n")


def write_expected() -> None:
    from harness.kernels.attribution import attribute
    from harness.kernels.parsers import load_trace

    for path in sorted(HERE.glob("synthetic-*")):
        trace = load_trace(path)
        if not (trace.events or trace.summaries):
            continue
        a = attribute(trace)
        data = {"file": path.name, "source": a.source, "denominator": a.denominator,
                "total_ns": round(a.total_ns, 3),
                "families_pct": {f.family: round(f.pct, 4) for f in a.families},
                "layers_ns": {k: {f: round(v, 3) for f, v in fams.items()} for k, fams in sorted(a.layers.items())}}
        (HERE / "expected" / (path.name + ".json")).write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    if "--expected" in sys.argv:
        write_expected()
    else:
        for cuda8 in (True, False):
            nvprof_trace(cuda8)
            nvprof_summary(cuda8)
        nvprof_metrics()
        nsys_csv()
        nsys_sqlite()
        nvprof_sqlite()
        ncu_csv()
        kineto_json()

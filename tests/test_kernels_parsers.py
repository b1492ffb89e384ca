"""Every profiler format parses into the same table and gives its expected attribution (kernels_profiles/)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from harness.kernels.attribution import attribute
from harness.kernels.demangle import demangle, demangler_name
from harness.kernels.parsers import ProfileFormatError, load_trace
from harness.kernels.parsers.common import table_rows

PROFILES = Path(__file__).resolve().parent.parent / "kernels_profiles"
CAPTURES = sorted(p for p in PROFILES.glob("synthetic-*") if (PROFILES / "expected" / f"{p.name}.json").exists())


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_expected_attribution(path: Path) -> None:
    expected = json.loads((PROFILES / "expected" / f"{path.name}.json").read_text())
    a = attribute(load_trace(path))
    assert a.source == expected["source"]
    assert a.total_ns == pytest.approx(expected["total_ns"], rel=1e-9)
    assert {f.family: f.pct for f in a.families} == pytest.approx(expected["families_pct"], abs=1e-3)
    assert sorted(a.layers) == sorted(expected["layers_ns"])


def test_hand_computed_shares() -> None:
    # kernels_profiles/make_synthetic.py: 187 us of kernels + one 13 us HtoD copy; fc7's gemv2T runs 55 us,
    # conv2_1/dw's gemv2N 30 us, conv1/bn's gemmk1 9 us.
    a = attribute(load_trace(PROFILES / "synthetic-nvprof-cuda8-gputrace.csv"))
    assert a.total_ns == pytest.approx(200_000)
    assert a.paper_columns() == pytest.approx({"gemv2T": 27.5, "gemv2N": 15.0, "gemmk1": 4.5})
    assert attribute(load_trace(PROFILES / "synthetic-nvprof-cuda8-gputrace.csv"), include_memory=False
                     ).pct("gemv2T") == pytest.approx(100 * 55 / 187)
    assert "not wall time" in a.denominator and a.span_ns == pytest.approx(200_000 + 10 * 1000)


def test_cuda8_and_cuda9_traces_agree_and_keep_correlation_ids() -> None:
    old = load_trace(PROFILES / "synthetic-nvprof-cuda8-gputrace.csv")
    new = load_trace(PROFILES / "synthetic-nvprof-cuda9-gputrace.csv")
    assert [(e.name, e.correlation_id, e.grid, e.duration_ns) for e in old.events] == \
           [(e.name, e.correlation_id, e.grid, e.duration_ns) for e in new.events]
    assert not any(e.name.endswith("]") and "[CUDA" not in e.name for e in old.events)  # " [corr]" stripped


def test_summaries_are_aggregate_rows_not_events() -> None:
    t = load_trace(PROFILES / "synthetic-nvprof-cuda9-gpusummary.csv")
    assert t.is_summary and not t.events
    assert all(s.name != "cudaMalloc" for s in t.summaries)  # API rows are host time, dropped


def test_sqlite_names_are_demangled_and_layers_found() -> None:
    nvprof = load_trace(PROFILES / "synthetic-nvprof.nvvp.sqlite")
    assert any(e.name.startswith("void gemv2T_kernel_val<int, int, float") for e in nvprof.events)
    nsys = attribute(load_trace(PROFILES / "synthetic-nsys.sqlite"))
    assert nsys.layers["fc7"] == {"gemv2T": pytest.approx(55_000)}
    assert nsys.layers["conv2_1/dw"] == {"im2col": pytest.approx(12_000), "gemv2N": pytest.approx(30_000)}


def test_kineto_layers_match_nsys() -> None:
    kineto = attribute(load_trace(PROFILES / "synthetic-kineto.json"))
    nsys = attribute(load_trace(PROFILES / "synthetic-nsys.sqlite"))
    assert kineto.layers == nsys.layers  # integer ns in both captures


def test_ncu_events_have_no_timeline() -> None:
    t = load_trace(PROFILES / "synthetic-ncu-details.csv")
    assert t.events and all(e.start_ns is None for e in t.events) and t.span_ns() is None
    assert {e.registers_per_thread for e in t.events} >= {48, 32}


def test_demangler_present_here() -> None:
    assert demangler_name() != "none"
    assert demangle("_Z17im2col_gpu_kernelIfEviPKT_iiiiiiiiiiiiPS0_").startswith("void im2col_gpu_kernel<float>")


@pytest.mark.parametrize(("content", "message"), [
    ("hello,world\n1,2\n", "no known profiler header"),
    ('{"foo": 1}', "not a chrome trace"),
    ('"Start","Duration","Grid X","Block X","Name"\nfortnights,us,,,\n1,2,3,4,k\n', "time unit"),
])
def test_unknown_files_get_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "x.csv"
    f.write_text(content)
    with pytest.raises(ProfileFormatError, match=message) as err:
        load_trace(f)
    assert str(f) in str(err.value)


def test_sqlite_without_cupti_tables(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE t (x)")
    with pytest.raises(ProfileFormatError, match="without CUPTI kernel tables"):
        load_trace(db)


def test_damaged_sqlite_is_one_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "damaged.sqlite"
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 600)  # the magic, then garbage
    with pytest.raises(ProfileFormatError, match="not a readable SQLite export") as err:
        load_trace(db)
    assert str(db) in str(err.value)


def test_sqlite_export_missing_a_column_is_one_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "old.nvvp.sqlite"
    with sqlite3.connect(db) as c:  # kernel table without the grid columns
        c.execute("CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start, end, deviceId, streamId, correlationId, name)")
        c.execute("CREATE TABLE StringTable (_id_, value)")
    with pytest.raises(ProfileFormatError, match=r"not a readable SQLite export \(no such column"):
        load_trace(db)


def test_table_rows_strips_the_header_and_drops_short_rows() -> None:
    rows = [["==1== Profiling result:"], [" Name", "Time "], ["", "ms"], ["k", "1.5"], ["footer"]]
    table = table_rows(rows, ("Name", "Time"), "p.csv", "demo", units_row=True)
    assert (table.header, table.col, table.units) == (["Name", "Time"], {"Name": 0, "Time": 1},
                                                      {"Name": "", "Time": "ms"})
    assert table.rows == [["k", "1.5"]]
    with pytest.raises(ProfileFormatError, match=r"p.csv: no demo header \(Name, Time\)"):
        table_rows(rows[:2], ("Name", "Time"), "p.csv", "demo", units_row=True)  # no units row


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileFormatError, match="cannot read"):
        load_trace(tmp_path / "absent.csv")


def test_real_torch_profiler_trace_on_cpu(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile

    from harness.kernels.ranges import layer_range

    conv = torch.nn.Conv2d(3, 8, 3)
    with profile(activities=[ProfilerActivity.CPU]) as prof, layer_range("conv1"):
        conv(torch.randn(1, 3, 16, 16))
    path = tmp_path / "cpu.json"
    prof.export_chrome_trace(str(path))
    trace = load_trace(path)
    assert trace.source == "kineto-json" and not trace.events  # CPU only: no GPU kernels...
    assert any(op.name == "aten::conv2d" for op in trace.cpu_ops)  # ...but CPU ops are recorded
    assert [r.name for r in trace.ranges if r.name.startswith("layer:")] == ["layer:conv1"]
    assert any("no GPU kernels" in n for n in trace.notes)

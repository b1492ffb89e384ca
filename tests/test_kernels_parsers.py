"""Every profiler format parses into the same table and gives its expected attribution (kernels_profiles/)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from harness.kernels.attribution import attribute
from harness.kernels.demangle import demangle, demangler_name
from harness.kernels.parsers import ProfileFormatError, load_trace
from harness.kernels.parsers.common import CsvRow, table_rows

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


def test_table_rows_strips_the_header_and_counts_short_rows() -> None:
    rows = [CsvRow(i + 1, cells) for i, cells in enumerate(
        [["==1== Profiling result:"], [" Name", "Time "], ["", "ms"], ["k", "1.5"], [], ["==1== done"], ["footer"]])]
    table = table_rows(rows, ("Name", "Time"), "p.csv", "demo", units_row=True)
    assert (table.header, table.col, table.units) == (["Name", "Time"], {"Name": 0, "Time": 1},
                                                      {"Name": "", "Time": "ms"})
    assert [row.cells for row in table.data()] == [["k", "1.5"]]  # blank lines and tool messages are not data
    assert table.note() == "p.csv: skipped 1 of 2 rows (line 7: 1 field(s), the header has 2)"
    with pytest.raises(ProfileFormatError, match=r"p.csv:2: demo header without the units row"):
        table_rows(rows[:2], ("Name", "Time"), "p.csv", "demo", units_row=True)
    with pytest.raises(ProfileFormatError, match=r"p.csv: no demo header \(Name, Time, Calls\); the header at "
                                                 r"line 2 lacks 'Calls'"):
        table_rows(rows, ("Name", "Time", "Calls"), "p.csv", "demo")


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


# ---- bad files: one line naming the file and place; rows that cannot be read are counted ----------------

def _csv_with(tmp_path: Path, source: str, column: str, value: str, row: int = 0) -> Path:
    """``source`` (a synthetic capture) with ``column`` of its ``row``-th data row set to ``value``."""
    rows = list(csv.reader(io.StringIO((PROFILES / source).read_text())))
    h = next(i for i, r in enumerate(rows) if column in [c.strip() for c in r])
    first = h + 2 if rows[h + 1] and not any(c.replace(".", "").isdigit() for c in rows[h + 1]) else h + 1
    rows[first + row][[c.strip() for c in rows[h]].index(column)] = value
    out = tmp_path / source
    with out.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return out


DURATION_COLUMNS = [
    ("synthetic-nvprof-cuda9-gputrace.csv", "Duration"), ("synthetic-nvprof-cuda8-gputrace.csv", "Start"),
    ("synthetic-nvprof-cuda9-gpusummary.csv", "Time"), ("synthetic-nsys-cuda_gpu_trace.csv", "Duration (ns)"),
    ("synthetic-nsys-cuda_gpu_kern_sum.csv", "Total Time (ns)"), ("synthetic-ncu-raw.csv", "gpu__time_duration.sum"),
    ("synthetic-ncu-details.csv", "Metric Value"),
]


@pytest.mark.parametrize("source, column", DURATION_COLUMNS)
@pytest.mark.parametrize("value", ["1e999", "-5"])
def test_a_time_that_cannot_be_measured_is_an_error_naming_the_line(tmp_path: Path, source: str, column: str,
                                                                     value: str) -> None:
    if value == "-5" and column == "Start":
        value = "-1e999"  # a time stamp may be anything finite
    path = _csv_with(tmp_path, source, column, value)
    with pytest.raises(ProfileFormatError, match=rf"{re.escape(str(path))}:\d+: .*cannot be") as err:
        load_trace(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("source, column", DURATION_COLUMNS[:-2])
def test_unreadable_rows_are_skipped_and_counted(tmp_path: Path, source: str, column: str) -> None:
    path = _csv_with(tmp_path, source, column, "fast")
    trace = load_trace(path)
    assert any(re.fullmatch(rf".*: skipped 1 of 1\d rows \(line \d+: {re.escape(column)} 'fast' is not a number\)",
                            n) for n in trace.notes), trace.notes
    assert any("skipped 1 of" in n for n in attribute(trace).notes)  # and the attribution carries it on


def test_header_only_files_have_no_kernels_not_zero_ms(tmp_path: Path) -> None:
    for source, units_rows in (("synthetic-nvprof-cuda9-gputrace.csv", 1), ("synthetic-nsys-cuda_gpu_kern_sum.csv", 0)):
        text = (PROFILES / source).read_text().splitlines()
        header = next(i for i, line in enumerate(text) if line.startswith('"'))
        path = tmp_path / source
        path.write_text("\n".join(text[:header + 1 + units_rows]) + "\n")  # the header (and nvprof's units row)
        with pytest.raises(ProfileFormatError, match=r"no kernels in this .* file, only its header"):
            load_trace(path)


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", bytes(range(256)) * 4, b"\x1f\x8b\x08\x00" + b"\xff" * 100,
])
def test_binary_files_are_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "capture.csv"
    path.write_bytes(content)
    with pytest.raises(ProfileFormatError, match="binary data") as err:
        load_trace(path)
    assert str(path) in str(err.value)


def test_a_field_over_csvs_limit_is_one_clear_error(tmp_path: Path) -> None:
    path = _csv_with(tmp_path, "synthetic-nsys-cuda_gpu_trace.csv", "Name", "k" * 200_000)
    with pytest.raises(ProfileFormatError, match=r"capture|cuda_gpu_trace.csv:\d+: not readable as CSV \(field "
                                                 r"larger than field limit"):
        load_trace(path)


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    rows = list(csv.reader(io.StringIO((PROFILES / "synthetic-nvprof-cuda9-gputrace.csv").read_text())))
    path = tmp_path / "no-grid.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([r[:2] + r[3:] if len(r) > 3 else r for r in rows])  # drop "Grid X"
    header = next(i for i, r in enumerate(rows, 1) if "Start" in r)  # under the preamble (and synthetic marker)
    with pytest.raises(ProfileFormatError, match=rf"line {header} looks like nvprof --print-gpu-trace without the "
                                                 r"column 'Grid X'"):
        load_trace(path)
    summary = list(csv.reader(io.StringIO((PROFILES / "synthetic-nvprof-cuda9-gpusummary.csv").read_text())))
    path = tmp_path / "no-type.csv"
    with path.open("w", newline="") as f:  # without Type, the "API calls" row would pass for GPU time
        csv.writer(f).writerows([r[1:] if len(r) > 3 else r for r in summary])
    with pytest.raises(ProfileFormatError, match=r"Time\(%\) add up to 161.2 %"):
        load_trace(path)


@pytest.mark.parametrize("change, message", [
    ({"ts": "soon"}, r"traceEvents\[\d+\]: 'ts' must be a finite number, got 'soon'"),
    ({"dur": -3}, r"'dur' must be a finite number >= 0, got -3"),
    ({"dur": 1e999}, r"'dur' must be a finite number >= 0, got inf"),
    ({"args": [1]}, r"'args' must be an object, got \[1\]"),
    ({"name": 5}, r"'name' must be a string, got 5"),
    ({"args": {"correlation": "x"}}, r"'args.correlation' must be an integer, got 'x'"),
    ({"dur": 10**400}, r"'dur' must be a finite number >= 0, got 1000000000000000000000000000000000000000..."),
    ({"ts": -(10**400)}, r"'ts' must be a finite number, got -100000000000000000000000000000000000000..."),
    ({"args": {"stream": 2**64}}, r"'args.stream' must be an integer of 64 bits, got 18446744073709551616"),
])
def test_wrongly_typed_kineto_fields(tmp_path: Path, change: dict, message: str) -> None:
    doc = json.loads((PROFILES / "synthetic-kineto.json").read_text())
    kernel = next(e for e in doc["traceEvents"] if e.get("cat") == "kernel")
    kernel.update(change)
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileFormatError, match=message):
        load_trace(path)


@pytest.mark.parametrize("update, message", [
    ("SET start = 'soon'", r"CUPTI_ACTIVITY_KIND_KERNEL row \d+: 'start' is 'soon', not a time stamp"),
    ("SET \"end\" = start - 5", r"CUPTI_ACTIVITY_KIND_KERNEL row \d+: ends \(\d+\) before it starts"),
])
def test_wrongly_typed_sqlite_fields(tmp_path: Path, update: str, message: str) -> None:
    path = tmp_path / "capture.sqlite"
    shutil.copy(PROFILES / "synthetic-nsys.sqlite", path)
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE CUPTI_ACTIVITY_KIND_KERNEL {update} WHERE rowid = 2")
    with pytest.raises(ProfileFormatError, match=message):
        load_trace(path)


CSV_CAPTURES = [p for p in CAPTURES if p.suffix == ".csv"]


@pytest.mark.parametrize("path", CSV_CAPTURES, ids=lambda p: p.name)
def test_a_csv_cut_inside_a_quoted_field_skips_that_row_and_says_so(tmp_path: Path, path: Path) -> None:
    """A capture cut short in the middle of its last row's quoted field (a kernel name): that row is skipped
    and counted in the trace's note, never read as a kernel with half a name or half its fields."""
    text = path.read_text().rstrip("\n")
    cut = tmp_path / path.name
    cut.write_text(text[: text.rindex('"') - 3])  # inside the last quoted field
    trace = load_trace(cut)
    lines = text.count("\n") + 1
    assert any("skipped 1 of " in note and f"(line {lines}: the file ends inside its quoted field (cut short?))"
               in note for note in trace.notes), trace.notes


def test_a_quote_never_closed_mid_file_is_one_error_naming_its_line(tmp_path: Path) -> None:
    """A quote opened in the third data row and closed nowhere: Python's reader would take the rest of the
    file as one field, and the rows there would be lost unseen."""
    text = (PROFILES / "synthetic-nsys-cuda_gpu_trace.csv").read_text()
    lines = text.splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines) if line.startswith("1000056000,"))
    start = len("".join(lines[:row])) + len("1000056000,")
    path = tmp_path / "trace.csv"
    path.write_text(text[:start] + '"' + text[start:].replace('"', ""))
    with pytest.raises(ProfileFormatError, match=rf"trace.csv:{row + 1}: a quoted field opens on this line and runs "
                                                 rf"to line \d+ \(a quote never closed: the file is damaged\)"):
        load_trace(path)

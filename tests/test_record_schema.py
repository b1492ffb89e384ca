"""Stored records read back typed (harness/results/schema.py): a damaged line of a results store, or a
damaged kernel-profile record, is named (file:line and field), counted and skipped by `harness results` and
`harness report`, never a traceback and never exported; the merge compares only times with times."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import pytest
from cli_run import run_cli

from harness.kernels.profile_record import PROFILES_DIR, read_profiles
from harness.results.records import Config, Record
from harness.results.schema import SchemaError, build
from harness.results.store import ResultsStore, merge, read_results

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC = REPO / "tests" / "data" / "synthetic-gpu-results"


def good_record(network: str = "alexnet", finished: str = "2026-01-01T00:00:00.000+00:00") -> Record:
    return Record(config=Config(network, "pytorch", 1, "cpu", "eager-fp32", hardware="CPU X"), status="ok",
                  latencies_s=[0.01, 0.02], finished_at=finished, metadata={"host": "h", "ratio": 0.5},
                  contended={"reasons": ["cpu load"], "load": 3.0})


def damaged(path: str, value: Any) -> str:
    """A good record's JSON line with the value at ``path`` ("config.mode") replaced."""
    doc = good_record().to_dict()
    *parents, last = path.split(".")
    node = doc
    for name in parents:
        node = node[name]
    node[last] = value
    return json.dumps(doc)


# (field path, wrong value, what the warning says): the classes of the held-out fuzz and their neighbours
DAMAGE = [
    ("config", None, "config: expected an object, got null"),
    ("config.device", 5, "config.device: expected a string, got 5"),
    ("config.mode", {"a": 1}, "config.mode: expected a string or null, got an object"),
    ("config.batch", "1", "config.batch: expected an integer, got '1'"),
    ("config.batch", True, "config.batch: expected an integer, got true"),
    ("config.batch", 10**400, "config.batch: an integer of 401 digits is outside the range of a 64-bit integer"),
    ("contended", {"load": 1}, "contended.reasons: missing"),
    ("contended", {"reasons": 5}, "contended.reasons: expected a list, got 5"),
    ("contended", {"reasons": [1]}, "contended.reasons[0]: expected a string, got 1"),
    ("metadata", [1], "metadata: expected an object, got a list"),
    ("metadata.memory_total_bytes", "8 GB", "metadata.memory_total_bytes: expected an integer or null, got '8 GB'"),
    ("finished_at", 5, "finished_at: expected a string or null, got 5"),
    ("finished_at", "yesterday", "finished_at: 'yesterday' is not an ISO 8601 time stamp"),
    ("latencies_s", ["x"], "latencies_s[0]: expected a number, got 'x'"),
    ("latencies_s", [10**400], "latencies_s[0]: an integer of 401 digits is not a finite double"),
    ("status", "great", "status: expected one of 'ok', 'oom', 'unsupported', 'failed', 'unavailable', got 'great'"),
    ("schema", "2", "schema: expected an integer, got '2'"),
    ("timeline", {"t": 5}, "timeline.t: expected a list, got 5"),
    ("placement", {"executor": "local"}, "placement.host: missing"),
]


@pytest.mark.parametrize("path, value, reason", DAMAGE, ids=[f"{d[0]}={d[1]!r}"[:40] for d in DAMAGE])
def test_each_wrongly_typed_value_is_named_by_its_field(path: str, value: Any, reason: str) -> None:
    with pytest.raises(SchemaError) as err:
        Record.from_dict(json.loads(damaged(path, value)))
    assert str(err.value) == reason


def test_a_record_round_trips_and_old_schemas_still_read() -> None:
    record = good_record()
    assert Record.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    # jsonout writes a non-finite float as null: a plain float field reads it back as NaN, not as an error
    doc = record.to_dict()
    doc["latency"] = {"iterations": 1, "total_s": 1, "median_s": None, "mean_s": 1, "p90_s": 1, "min_s": 1,
                      "max_s": 1, "stddev_s": 0, "ci_low_s": 1, "ci_high_s": 1, "ci_coverage": None,
                      "warmup_iters": 0, "warmup_s": 0, "throughput_fps": 1}
    latency = Record.from_dict(doc).latency
    assert latency is not None and latency.median_s != latency.median_s and latency.ci_coverage is None
    for directory in ("tests/data/results-cpu-2026-11-24", "benchmarks/results/bench-all-cpu-2026-11-29",
                      "tests/data/synthetic-gpu-results"):
        merged = read_results([REPO / directory])
        assert merged.records and not merged.unreadable, directory


def test_a_dataclass_of_another_kind_validates_by_its_own_hints() -> None:
    """What a second record kind gets: its own dataclass is its schema."""
    from dataclasses import dataclass

    @dataclass
    class LayerTime:
        layer: str
        share: float
        kind: Literal["conv", "fc"] = "conv"
        config: Config | None = None

    assert build(LayerTime, {"layer": "c1", "share": 1, "extra": []}) == LayerTime("c1", 1.0)
    with pytest.raises(SchemaError, match=r"^config\.batch: expected an integer, got 'x'$"):
        build(LayerTime, {"layer": "c1", "share": 1, "config": {"network": "n", "backend": "b", "batch": "x"}})
    with pytest.raises(SchemaError, match=r"^kind: expected one of 'conv', 'fc', got 'pool'$"):
        build(LayerTime, {"layer": "c1", "share": 1, "kind": "pool"})


def test_results_export_skips_and_names_every_damaged_line_and_loses_no_record(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path, "good")
    goods = [good_record(f"net{i}") for i in range(3)]
    for record in goods:
        store.append(record)
    bad = [damaged(path, value) for path, value, _ in DAMAGE]
    bad += ["[" * 100_000 + "]" * 100_000,  # RecursionError in json before
            '{"config": NaN}', "\x1b[31mred\x1b[0m"]
    (tmp_path / "results-damaged.jsonl").write_text("\n".join(bad) + "\n")
    rc, out, err = run_cli(["results", str(tmp_path), "--format", "json"])
    assert rc == 0 and "Traceback" not in err
    exported = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert sorted(r["key"] for r in exported) == sorted(r.key for r in goods)  # 0 lost, 0 damaged exported
    (warning,) = [line for line in err.splitlines() if "results-damaged.jsonl" in line]
    assert f"skipped {len(bad)} unreadable line(s), kept on disk (line 1: config: expected an object, got null; " \
           "line 2: config.device: expected a string, got 5; line 3: config.mode: expected a string or null, got " \
           f"an object; and {len(bad) - 3} more)" in warning
    assert [u.reason for u in read_results([tmp_path]).unreadable][-3:] == [
        "not JSON: JSON nested too deeply to be a record",
        "not JSON: NaN is not JSON (the harness writes non-finite numbers as null)",
        "not JSON: Expecting value: line 1 column 1 (char 0)"]
    assert "\x1b" not in err


def test_merge_compares_times_not_text_and_never_mixed_types() -> None:
    older = good_record(finished="2026-01-01T10:00:00+01:00")  # 09:00 UTC
    newer = good_record(finished="2026-01-01T09:30:00.000+00:00")
    undated = good_record(finished=None)  # type: ignore[arg-type]
    winners, superseded = merge([newer, older, undated])
    assert winners == [newer] and superseded == [older, undated]
    naive = good_record(finished="2026-01-01T09:45:00")  # no zone: the harness writes UTC
    assert merge([newer, naive])[0] == [naive]


def test_report_names_and_skips_damaged_lines_and_profiles(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(SYNTHETIC, results)
    with (results / "results.jsonl").open("a") as fh:
        fh.write(damaged("config.mode", {"a": 1}) + "\n" + damaged("finished_at", 5) + "\n")
    profile = sorted((results / PROFILES_DIR).glob("*.json"))[0]
    doc = json.loads(profile.read_text())
    doc["attribution"]["families"][0]["pct"] = 10**400  # OverflowError in the report before
    profile.write_text(json.dumps(doc))
    rc, _, err = run_cli(["report", str(results), "--out", str(tmp_path / "report")])
    assert rc == 0 and "Traceback" not in err, err
    assert "skipped 2 unreadable line(s), kept on disk (line 32: config.mode: expected a string or null, got an " \
           "object; line 33: finished_at: expected a string or null, got 5)" in err
    assert f"warning: {profile}: malformed kernel-profile record (attribution.families[0].pct: an integer of 401 " \
           "digits is not a finite double); left out, kept on disk" in err
    assert len(read_profiles(results, skipped := [])) == 1 and len(skipped) == 1


def test_a_profiles_folder_entry_that_is_not_a_file_is_named_not_waited_on(tmp_path: Path) -> None:
    import os

    (tmp_path / PROFILES_DIR).mkdir()
    os.mkfifo(tmp_path / PROFILES_DIR / "x.json")
    skipped: list[str] = []
    assert read_profiles(tmp_path, skipped) == [] and "not a regular file" in skipped[0]


def test_parquet_export_of_free_form_metadata_of_mixed_types(tmp_path: Path) -> None:
    """Metadata is free-form: one record's version may be text, another's a number. Parquet holds one type
    per column, so such a column is written as text (pyarrow's ArrowTypeError was a traceback)."""
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    store = ResultsStore(tmp_path)
    store.append(Record(config=Config("a", "b", 1), status="ok", metadata={"version": "2.1", "n": 1}))
    store.append(Record(config=Config("c", "b", 1), status="ok", metadata={"version": 2.1, "n": 2}))
    rc, _, err = run_cli(["results", str(tmp_path), "--format", "parquet", "-o", str(tmp_path / "x.parquet")])
    assert rc == 0, err
    frame = pandas.read_parquet(tmp_path / "x.parquet")
    assert frame["meta.version"].tolist() == ["2.1", "2.1"] and frame["meta.n"].tolist() == [1, 2]

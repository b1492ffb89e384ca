"""Fuzzing the CLI with damaged inputs: the zoo prototxts (prototxts/) and the committed profiler files
(kernels_profiles/synthetic-*), mutated by a seeded generator and fed to ``harness analyze`` and
``harness kernels attribute`` (in-process through :func:`harness.cli.main.main`, plus a few runs of the
real ``python -m harness`` entry point), and sweep files fed to the sweep loader.

Every case must end with exit status 0 or 2, no traceback, one error line when it fails, and no hang
(each case has a time limit). The generators of :mod:`caffe_fuzz` add mutations aimed at each way a reader
can differ from protobuf and Caffe's Net, and random single layers of every BVLC type; where pycaffe is
available, BVLC Caffe judges those cases (``HARNESS_FUZZ_ORACLE_CASES``, default 400): the caffe convention
must refuse what Caffe refuses and give the shapes Caffe builds. Mutations that must not change the
meaning (comments, whitespace, CRLF line ends, JSON layout) must give the same totals as the original.
The cases are fixed by the seed (``HARNESS_FUZZ_SEED``, default 15) and their number by
``HARNESS_FUZZ_CASES`` (default 2400 per input kind: about a minute in all on a 2-core machine, and the
oracle's about a minute more). A failure names the seed, the case and the mutation,
and leaves the input in the test's temporary folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import caffe_fuzz
import pytest
from cli_run import run_cli, time_limit

from harness.errors import HarnessError
from harness.measure.sweep_file import load_sweep_yaml

REPO = Path(__file__).resolve().parents[1]
PROTOTXTS = sorted((REPO / "prototxts").glob("*.prototxt"))
PROFILES = sorted((REPO / "kernels_profiles").glob("synthetic-*"))
SEED = int(os.environ.get("HARNESS_FUZZ_SEED", "15"))
CASES = int(os.environ.get("HARNESS_FUZZ_CASES", "2400"))
ORACLE_CASES = int(os.environ.get("HARNESS_FUZZ_ORACLE_CASES", "400"))
CASE_SECONDS = 20  # far beyond any case's time: reaching it means a hang

# Pieces that break parsers: syntax, escapes, numbers at and beyond the limits, binary bytes, deep nesting.
TEXT_TOKENS = [
    "{", "}", "<", ">", "[", "]", ":", ";", ",", '"', "'", "\\", "#", "-", "+", ".", "0", "08", "010", "0x1F",
    "1f", "1e999", "-1", "2147483648", "99999999999999999999999", "nan", "-inf", '"\\8"', '"\\x"', '"\\u12"',
    "\x00", "\xff", "\u0663", "\ufeff", "\r", "\t", "\n", "name { }", "include { phase: 1 }", "include { phase: 0 }",
    'include { stage: "deploy" }', "exclude { phase: TEST }", 'phase: "TEST"', "{ " * 3000 + "}" * 3000,
    "{ " * 300, 'top: "x"', 'bottom: "nope"', "dim: 0", "dim: -3", "num_output: 3000000000", 'type: "Accuracy"',
    'type: "Pooling"', 'type: "InnerProduct"', "type: CONVOLUTION", 'type: "CONVOLUTION"', "kernel_size: 2f",
    "pool: 7", 'pool: "MAX"', "bias_term: 2", "axis: -9", "group: 0", "x" * 20000, '"' + "y" * 20000 + '"',
]
CSV_VALUES = ["", "x", "-1", "-0", "1e999", "nan", "NaN", "inf", "1,000", "99999999999999999999", "\x00", "0x10",
              "k" * 140_000, '"', "GPU activities", "API calls", "==1== note"]
JSON_VALUES = [None, True, "abc", -1, 1e308, [], {}, [1, 2], "\x00", 10**30, "inf"]


def run_case(argv: list[str]) -> tuple[int, str, str]:
    """``harness argv`` within CASE_SECONDS; an exception escaping main() fails the case."""
    return run_cli(argv, seconds=CASE_SECONDS)


def _checked_cli(argv: list[str]) -> None:
    rc, _, err = run_case(argv)
    check_outcome(argv, rc, err)


def check_outcome(argv: list[str], rc: int, err: str) -> None:
    assert rc in (0, 2), f"exit status {rc}"
    assert "Traceback" not in err, err[-2000:]
    if rc == 2:
        errors = [line for line in err.splitlines() if not line.startswith(("warning:", "note:"))]
        assert len(errors) == 1 and errors[0].startswith(f"harness {argv[0]}: error: "), err[-2000:]
        assert len(errors[0]) < 1000, errors[0][:300]


# ---- mutations --------------------------------------------------------------------------------------

def _span(rng: random.Random, n: int) -> tuple[int, int]:
    start = rng.randrange(n + 1)
    return start, min(n, start + rng.choice((1, 2, 5, 20, 200)))


def mutate_text(rng: random.Random, text: str) -> tuple[str, str]:
    """(damaged text, what was done) - anything may come out, valid or not."""
    op = rng.choice(("insert", "insert", "delete", "replace_number", "replace_string", "flip", "truncate",
                     "duplicate", "swap_lines"))
    a, b = _span(rng, len(text))
    if op == "insert":
        token = rng.choice(TEXT_TOKENS)
        return text[:a] + token + text[a:], f"insert {token[:20]!r} at {a}"
    if op == "delete":
        return text[:a] + text[b:], f"delete [{a}:{b}]"
    if op == "replace_number":
        numbers = list(re.finditer(r"-?\d+(?:\.\d+)?", text))
        if numbers:
            m, value = rng.choice(numbers), rng.choice(TEXT_TOKENS[14:27])
            return text[:m.start()] + value + text[m.end():], f"number at {m.start()} -> {value!r}"
    if op == "replace_string":
        strings = list(re.finditer(r'"[^"\n]*"', text))
        if strings:
            m, value = rng.choice(strings), rng.choice(['""', '"data"', '"conv1"', "unquoted", '"Softmax"', "5",
                                                         '"Flatten"', '"Concat"', '"Eltwise"', '"Crop"'])
            return text[:m.start()] + value + text[m.end():], f"string at {m.start()} -> {value!r}"
    if op == "flip" and text:
        i = rng.randrange(len(text))
        odd = rng.choice((0, 1, 0x7F, 0xA0, 0x2028))
        ch = chr(odd if rng.random() < 0.3 else ord(text[i]) ^ (1 << rng.randrange(7)))
        return text[:i] + ch + text[i + 1:], f"flip at {i}"
    if op == "truncate":
        return text[:a], f"truncate at {a}"
    if op == "duplicate":
        return text[:b] + text[a:b] + text[b:], f"duplicate [{a}:{b}]"
    lines = text.split("\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines), f"swap lines {i} and {j}"


def same_meaning_variants(text: str) -> dict[str, str]:
    """Rewritings protobuf's text format reads as the same message."""
    return {
        "crlf": text.replace("\n", "\r\n"),
        "comments": re.sub(r"([{}]|\"[^\"\n]*\"|\b\d+)\s*\n", lambda m: f"{m.group(1)}  # {{a}} \"note\" \\8\n", text),
        "whitespace": re.sub(r"\n\s*", lambda m: "\n\t  \n" + " " * (len(m.group()) % 5), text).replace(": ", " :\t"),
    }


def mutate_csv(rng: random.Random, text: str) -> tuple[str, str]:
    rows = list(csv.reader(io.StringIO(text)))
    op = rng.choice(("cell", "cell", "cell", "drop_column", "drop_row", "header_only", "text"))
    if op == "cell":
        i = rng.randrange(len(rows))
        if rows[i]:
            j = rng.randrange(len(rows[i]))
            value = rng.choice(CSV_VALUES)
            rows[i][j] = value
            how = f"row {i} cell {j} -> {value[:20]!r}"
        else:
            how = "nothing"
    elif op == "drop_column":
        j = rng.randrange(max(len(r) for r in rows))
        rows = [r[:j] + r[j + 1:] for r in rows]
        how = f"drop column {j}"
    elif op == "drop_row":
        i = rng.randrange(len(rows))
        del rows[i]
        how = f"drop row {i}"
    elif op == "header_only":
        i = max(range(len(rows)), key=lambda k: len(rows[k]) if k < 6 else 0)
        rows = rows[:i + rng.choice((1, 2))]
        how = "header only"
    else:
        return mutate_text(rng, text)
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue(), how


def mutate_json(rng: random.Random, text: str) -> tuple[str, str]:
    doc = json.loads(text)
    events = doc["traceEvents"]
    if rng.random() < 0.25:
        return mutate_text(rng, text)
    e = rng.choice(events)
    key = rng.choice([*e.keys(), "args"] if isinstance(e, dict) else ["ph"])
    if key == "args" and isinstance(e.get("args"), dict) and rng.random() < 0.5 and e["args"]:
        sub = rng.choice(list(e["args"]))
        e["args"][sub] = rng.choice(JSON_VALUES)
        how = f"args.{sub} of an event"
    else:
        e[key] = rng.choice(JSON_VALUES)
        how = f"{key} of an event"
    return json.dumps(doc), how


def mutate_sqlite(rng: random.Random, path: Path) -> str:
    if rng.random() < 0.4:
        data = bytearray(path.read_bytes())
        for _ in range(rng.choice((1, 4, 32))):
            i = rng.randrange(100, len(data))
            data[i] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        return "flipped bytes"
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        table = rng.choice(tables)
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        column = rng.choice(columns)
        value = rng.choice(["'text'", "NULL", "-1", "1e308", "X'00ff'", "9223372036854775807", "start - 1"])
        if value == "start - 1" and "start" not in columns:
            value = "NULL"
        rowids = [r[0] for r in db.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
        chosen = rng.sample(rowids, min(len(rowids), rng.choice((1, 3))))
        try:
            db.execute(f'UPDATE OR IGNORE {table} SET "{column}" = {value} '
                       f'WHERE rowid IN ({",".join(map(str, chosen))})')
        except sqlite3.IntegrityError:  # an INTEGER PRIMARY KEY takes integers only: the file stays as it was
            return f"{table}.{column} = {value} refused by SQLite"
    return f"{table}.{column} = {value}"


# ---- the cases --------------------------------------------------------------------------------------

def _report(failures: list[str]) -> None:
    assert not failures, f"{len(failures)} failing case(s), seed {SEED}:\n" + "\n".join(failures[:20])


def _analyze_totals(path: Path, convention: str) -> tuple[int, str]:
    argv = ["analyze", str(path), "--format", "csv", "--convention", convention]
    rc, out, err = run_case(argv)
    check_outcome(argv, rc, err)
    return rc, out


def test_damaged_prototxts(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    failures = []
    for case in range(CASES):
        source = rng.choice(PROTOTXTS)
        text, how = source.read_text(encoding="utf-8"), []
        for _ in range(rng.choice((1, 1, 2, 4))):
            text, step = mutate_text(rng, text)
            how.append(step)
        path = tmp_path / f"case{case}-{source.name}"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        argv = ["analyze", str(path), "--format", "csv", "--convention", rng.choice(("paper", "caffe"))]
        if rng.random() < 0.2:
            argv += ["--batch", str(rng.choice((1, 7, 10**6)))]
        _case(failures, f"case {case} ({source.name}: {'; '.join(how)})", path, _checked_cli, argv)
    _report(failures)


def test_aimed_mutations_and_random_layers_are_a_result_or_one_line(tmp_path: Path) -> None:
    failures = []
    for case in caffe_fuzz.cases(SEED + 3, CASES // 3):
        path = caffe_fuzz.write_case(tmp_path, case)
        convention = random.Random(case.name).choice(("paper", "caffe"))
        argv = ["analyze", str(path), "--format", "csv", "--convention", convention]
        _case(failures, f"{case.name} ({case.how})", path, _checked_cli, argv)
    _report(failures)


@pytest.mark.needs_pycaffe
def test_bvlc_caffe_agrees_with_the_caffe_convention(tmp_path: Path) -> None:
    """The oracle cases: a traceback, a net Caffe refuses but the harness accepts, or other shapes than
    Caffe's fail the test; a refusal of a net Caffe builds is reported only when there are many."""
    oracle = caffe_fuzz.Oracle()
    found: dict[str, list[str]] = {}
    judged = 0
    try:
        for case in caffe_fuzz.cases(SEED + 4, ORACLE_CASES):
            path = caffe_fuzz.write_case(tmp_path, case)
            with time_limit(CASE_SECONDS * 3):
                ours, theirs = caffe_fuzz.harness_outcome(path), oracle.judge(path)
            v = caffe_fuzz.verdict(ours, theirs, case.data)
            judged += v != "unknown"
            if v not in ("agree", "unknown"):
                said = ours.get("error") or "accepted"
                found.setdefault(v, []).append(f"{case.name} ({case.how[:200]}): harness {said} | caffe "
                                               f"{theirs.get('reason', 'built it')[:200]}")
            else:
                path.unlink()
    finally:
        oracle.close()
    wrong = [f for v in ("traceback", "wrong_success", "shape_mismatch") for f in found.get(v, [])]
    assert not wrong, f"{len(wrong)} of {judged} cases, seed {SEED + 4}:\n" + "\n".join(wrong[:20])
    refusals = found.get("wrong_refusal", [])
    assert len(refusals) <= 0.02 * judged, "\n".join(refusals[:20])


def _case(failures: list[str], label: str, path: Path, run: Callable[[Any], object], argument: Any) -> None:
    """``run(argument)``: a failure is recorded with the input kept in ``path``, a pass removes it."""
    try:
        run(argument)
    except Exception as exc:  # every escape is a finding
        failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:500]}")
    else:
        path.unlink()


def test_rewritings_that_keep_the_meaning_keep_the_totals(tmp_path: Path) -> None:
    failures = []
    for source in PROTOTXTS:
        for convention in ("paper", "caffe"):
            rc, expected = _analyze_totals(source, convention)
            assert rc == 0
            for name, variant in same_meaning_variants(source.read_text(encoding="utf-8")).items():
                path = tmp_path / source.name  # the same name: the network's name comes from the text
                path.write_text(variant, encoding="utf-8", newline="")
                rc, got = _analyze_totals(path, convention)
                if (rc, got.replace(str(path), str(source))) != (0, expected):
                    failures.append(f"{source.name} {name} ({convention}): exit {rc}, totals differ")
    _report(failures)


def _attribute(path: Path) -> tuple[int, str]:
    argv = ["kernels", "attribute", "--format", "json", str(path)]
    if "metrics" in path.name:
        argv = ["kernels", "metrics", "--format", "json", str(path)]
    rc, out, err = run_case(argv)
    check_outcome(argv, rc, err)
    return rc, out


def test_damaged_profiler_files(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    failures = []
    for case in range(CASES):
        source = rng.choice(PROFILES)
        path = tmp_path / f"case{case}-{source.name}"
        if source.suffix == ".sqlite":
            shutil.copy(source, path)
            how = mutate_sqlite(rng, path)
        else:
            text = source.read_text(encoding="utf-8")
            text, how = (mutate_json if source.suffix == ".json" else mutate_csv)(rng, text)
            path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        _case(failures, f"case {case} ({source.name}: {how})", path, _attribute, path)
    _report(failures)


def test_profiler_rewritings_that_keep_the_meaning_keep_the_totals(tmp_path: Path) -> None:
    failures = []
    for source in PROFILES:
        if source.suffix == ".sqlite":
            continue
        rc, expected = _attribute(source)
        assert rc == 0
        text = source.read_text(encoding="utf-8")
        variants = {"crlf": text.replace("\n", "\r\n")}
        if source.suffix == ".json":
            variants["layout"] = json.dumps(json.loads(text), indent=3, sort_keys=True)
        for name, variant in variants.items():
            path = tmp_path / source.name
            path.write_text(variant, encoding="utf-8", newline="")
            rc, got = _attribute(path)
            if rc != 0 or _without_paths(got) != _without_paths(expected):
                failures.append(f"{source.name} {name}: exit {rc}, attribution differs")
    _report(failures)


def _without_paths(out: str) -> object:
    docs = json.loads(out)
    for doc in docs:
        if isinstance(doc, dict):
            doc.pop("file", None)
    return docs


def test_damaged_sweep_files(tmp_path: Path) -> None:
    rng = random.Random(SEED + 2)
    good = ("networks: [alexnet, squeezenet_v1.1]\nbackends: [pytorch]\nbatches: [1, 8]\ndevices: [cpu]\n"
            "modes: [eager-fp32]\nseed: 3\nsettings: {min_s: 2, warmup_iters: 5}\n")
    tokens = ["[", "]", "{", "}", ":", "-", "true", "null", "[[1]]", "''", "0", "-1", "1.5", "cuda:x", "&a", "*a",
              "!!python/object:os.system", "\t", "\x00", "\xff", "\n  - ", "?", "%YAML 9.9"]
    failures = []
    for case in range(CASES):
        text = good
        for _ in range(rng.choice((1, 2, 3))):
            a, b = _span(rng, len(text))
            text = text[:a] + rng.choice([*tokens, ""]) + text[b:]
        path = tmp_path / "sweep.yaml"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        try:
            with time_limit(CASE_SECONDS):
                load_sweep_yaml(path)
        except HarnessError as exc:
            if "\n" in str(exc) or not str(exc).startswith(str(path)):
                failures.append(f"case {case}: {text!r}: not one line naming the file: {exc}")
        except Exception as exc:  # every escape is a finding
            failures.append(f"case {case}: {text!r}: {type(exc).__name__}: {str(exc)[:300]}")
    _report(failures)


@pytest.mark.parametrize("argv_of", [
    lambda tmp: ["analyze", str(_damaged(tmp, "alexnet.prototxt", '"\\9"'))],
    lambda tmp: ["kernels", "attribute", str(_damaged(tmp, "synthetic-nsys-cuda_gpu_trace.csv", "\x00"))],
    lambda tmp: ["analyze", str(tmp)],
])
def test_the_installed_entry_point_prints_one_line(tmp_path: Path, argv_of: Callable[[Path], list[str]]) -> None:
    argv = argv_of(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    check_outcome(argv, proc.returncode, proc.stderr)
    assert proc.returncode == 2


def _damaged(tmp: Path, name: str, insert: str) -> Path:
    source = next(p for p in [*PROTOTXTS, *PROFILES] if p.name == name)
    text = source.read_text(encoding="utf-8")
    path = tmp / name
    path.write_text(text[:len(text) // 2] + insert + text[len(text) // 2:], encoding="utf-8")
    return path


# ---- damaged results stores, profiler numbers and cut quotes, command-line values (issue 23, items 4-6) ----
# Kept apart from the prototxt generators above. Every case: exit 0 or 2, no traceback, one error line; a
# store's good records are all exported and each damaged line is either a record of the right types or
# counted as skipped (0 lost, none exported silently).

STORE_VALUES = [None, True, 0, -1, 1.5, 10**400, -(10**400), 2**63, "", "x", "NaN", "2026-13-45T99:00", [], [1],
                {}, {"a": None}, "\x1b[2J", "a\nb"]


def _paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every place in a JSON document (key paths into objects, indexes into lists)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc[:3]):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def damage_record_line(rng: random.Random, doc: dict) -> tuple[str, str]:
    """A damaged JSON line of a record (its own network name, so that its key is its own) and how."""
    op = rng.choice(("value", "value", "value", "drop", "text", "deep", "constant"))
    if op == "deep":
        depth = rng.choice((900, 5000, 100_000))
        return json.dumps(doc)[:-1] + ', "metadata": ' + "[" * depth + "]" * depth + "}", f"nesting {depth}"
    if op == "constant":
        return json.dumps(doc).replace("0.01", rng.choice(("NaN", "Infinity", "-Infinity")), 1), "NaN token"
    if op == "text":
        text, how = mutate_text(rng, json.dumps(doc))
        return text.replace("\n", " "), how
    *parents, last = rng.choice(list(_paths(doc)))
    node = doc
    for key in parents:
        node = node[key]
    if op == "drop" and isinstance(node, dict):
        del node[last]
        return json.dumps(doc), f"drop {'.'.join(map(str, (*parents, last)))}"
    node[last] = rng.choice(STORE_VALUES)
    return json.dumps(doc), f"{'.'.join(map(str, (*parents, last)))} = {node[last]!r:.30}"


def _store_record(network: str, rng: random.Random) -> dict:
    from harness.results.records import Config, LatencyFigures, Placement, Record

    latency = LatencyFigures(3, 0.03, 0.01, 0.01, 0.012, 0.009, 0.012, 0.001, 0.009, 0.012, 0.75, 1, 0.01, 100.0)
    record = Record(config=Config(network, "pytorch", 1, "cpu", "eager-fp32", hardware="CPU X"), status="ok",
                    latency=latency, latencies_s=[0.01, 0.011, 0.012],
                    metadata={"host": "h", "memory_total_bytes": 8, "version": rng.choice(("2.1", 2.1, None, [2]))},
                    contended={"reasons": ["cpu load"]}, started_at="2026-01-01T00:00:00.000+00:00",
                    finished_at="2026-01-01T00:00:01.000+00:00", placement=Placement("local", "h", 7))
    return record.to_dict()


def test_damaged_results_stores(tmp_path: Path) -> None:
    from harness.results.store import read_results

    rng = random.Random(SEED + 10)
    failures = []
    for case in range(max(1, CASES // 40)):
        folder = tmp_path / f"store{case}"
        folder.mkdir()
        goods = [f"good{i}" for i in range(rng.choice((1, 3)))]
        lines, hows = [json.dumps(_store_record(n, rng)) for n in goods], []
        for i in range(rng.choice((1, 5, 20))):
            line, how = damage_record_line(rng, _store_record(f"bad{i}", rng))
            lines.insert(rng.randrange(len(lines) + 1), line)
            hows.append(how)
        (folder / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")

        def check(folder: Path, goods: list[str] = goods, total: int = len(lines)) -> None:
            argv = ["results", str(folder), "--format", "json"]
            rc, out, err = run_case(argv)
            check_outcome(argv, rc, err)
            assert rc == 0, err[-500:]
            exported = {json.loads(line)["network"] for line in out.splitlines() if line.strip()}
            assert set(goods) <= exported, f"lost {set(goods) - exported}"
            merged = read_results([folder])
            skipped = re.search(r"skipped (\d+) unreadable line", err)
            assert len(merged.unreadable) == (int(skipped.group(1)) if skipped else 0), err[-500:]
            assert len(merged.records) + len(merged.superseded) + len(merged.unreadable) == total
            argv = ["results", str(folder), "--format", "parquet", "-o", str(folder / "export.parquet")]
            rc, _, err = run_case(argv)  # one type per column, whatever the free-form metadata holds
            check_outcome(argv, rc, err)
            assert rc == 0, err[-500:]

        _case(failures, f"case {case} ({'; '.join(hows)[:300]})", folder / "results.jsonl", check, folder)
    _report(failures)


def _ends_inside_quotes(text: str) -> bool:
    """Whether a cut of a committed profiler CSV (no quote inside a quoted field there) ends inside the quotes
    of a row that holds something (a row of empty fields is no row to lose)."""
    last = text.rsplit("\n", 1)[-1]
    return last.count('"') % 2 == 1 and bool(last.replace('"', "").replace(",", "").strip())


def test_profiler_numbers_and_cut_quotes(tmp_path: Path) -> None:
    rng = random.Random(SEED + 11)
    texts = [p for p in PROFILES if p.suffix in (".csv", ".json")]
    failures = []
    for case in range(max(1, CASES // 20)):
        source = rng.choice(texts)
        text = source.read_text(encoding="utf-8")
        numbers = list(re.finditer(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])", text))
        cut = None
        if source.suffix == ".csv" and rng.random() < 0.5:
            cut = rng.randrange(len(text) // 2, len(text))
            text, how = text[:cut], f"cut at {cut}"
        elif rng.random() < 0.3:
            at = rng.randrange(len(text))
            text, how = text[:at] + '"' + text[at:], f"a quote at {at}"
        else:
            m = rng.choice(numbers)
            value = rng.choice(("9" * 401, "-" + "9" * 401, "1e400", "-1e999", "1" + "0" * 320, str(2**64)))
            text, how = text[:m.start()] + value + text[m.end():], f"number at {m.start()} -> {value[:12]}..."
        path = tmp_path / f"case{case}-{source.name}"
        path.write_text(text, encoding="utf-8")

        def check(path: Path, cut_inside: bool = cut is not None and _ends_inside_quotes(text)) -> None:
            argv = ["kernels", "metrics" if "metrics" in path.name else "attribute", "--format", "json", str(path)]
            rc, out, err = run_case(argv)
            check_outcome(argv, rc, err)
            if rc == 0 and cut_inside:  # the cut row is skipped and said so (attribute: in the JSON; metrics: stderr)
                notes = err if "metrics" in path.name else " ".join(n for doc in json.loads(out) for n in doc["notes"])
                assert "the file ends inside its quoted field" in notes, notes[:300]

        _case(failures, f"case {case} ({source.name}: {how})", path, check, path)
    _report(failures)


#: values a user may type by mistake, or an attacker on purpose, for any option
CLI_VALUES = ["", "0", "-1", "1e999", "nan", "99999999999999999999", "x", "all", "cpu", "cuda:99", "a,,b",
              "a\nb", "a;touch x", "$(touch x)", "`id`", "'", '"', "\x1b[2J", "--", "-", "=", "..", "/dev/zero"]


class WouldRun(BaseException):
    """The command got past its checks and would now measure or write: the case ends here (not a finding)."""


def _would_run(*args: object, **kwargs: object) -> None:
    raise WouldRun()


def test_bad_command_line_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random command lines of every command with hostile values: parsed and checked for real; the commands
    that would then measure (bench, profile, verify) or build a report stop where their work begins."""
    import argparse

    from harness.cli import main as cli_main
    from harness.results.store import ResultsStore

    monkeypatch.setattr(ResultsStore, "check_writable", _would_run)  # bench: after every check, before measuring
    for module in ("harness.cli.profile", "harness.cli.verify", "harness.cli.report", "harness.cli.doctor"):
        monkeypatch.setattr(f"{module}.run", _would_run)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prototxts").mkdir()  # where `zoo build` writes by default from here, never the checkout's
    rng = random.Random(SEED + 12)
    def option_strings(parser: argparse.ArgumentParser) -> list[str]:  # nested actions' options too
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += [o for sub in action.choices.values() for o in option_strings(sub)]
            elif action.option_strings and not isinstance(action, argparse._HelpAction):
                found.append(action.option_strings[-1])
        return sorted(set(found))

    options = {command: option_strings(cli_main.build_parser(command).commands[command])
               for command in cli_main.COMMANDS}
    failures = []
    for case in range(max(1, CASES // 10)):
        command = rng.choice(list(cli_main.COMMANDS))
        argv = [command]
        if command in ("kernels", "zoo"):
            argv.append(rng.choice(["attribute", "classify", "show", "list", rng.choice(CLI_VALUES)]))
        argv += rng.sample([str(PROTOTXTS[0]), "alexnet", rng.choice(CLI_VALUES)], rng.choice((0, 1, 2)))
        for _ in range(rng.choice((1, 2, 3))):
            argv += [rng.choice(options[command]), rng.choice(CLI_VALUES)]

        def check(argv: list[str]) -> None:
            try:
                rc, _, err = run_case(argv)
            except WouldRun:
                return
            check_outcome(argv, rc, err)
            if rc == 2 and "error: argument" in err:
                assert err.rstrip().endswith("--help')"), err  # argparse's refusals point to --help

        kept = tmp_path / f"case{case}.argv"
        kept.write_text(repr(argv), encoding="utf-8", errors="surrogatepass")
        _case(failures, f"case {case} ({argv!r:.300})", kept, check, argv)
    _report(failures)


def test_sweep_files_with_repeated_keys_and_hostile_slurm_values(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A key written twice at any level is refused in one line (YAML would keep the last silently); Slurm
    names from a sweep file that a batch script would act on are refused before anything is submitted."""
    from harness.executors import slurm as slurm_executor
    from harness.results.store import ResultsStore

    monkeypatch.setattr(ResultsStore, "check_writable", _would_run)
    monkeypatch.setattr(slurm_executor, "_submitit", _would_run)
    rng = random.Random(SEED + 13)
    lines = [f"networks: [{PROTOTXTS[0]}]", "backends: [pytorch]", "batches: [1, 4]", "seed: 3",
             "settings:", "  min_s: 2", "  warmup_iters: 5", "slurm:", "  time: '10'", "  partition: debug"]
    failures = []
    for case in range(max(1, CASES // 40)):
        text, repeated = list(lines), None
        if rng.random() < 0.6:  # a line again, in the same mapping: first in the file, or right after itself
            i = rng.randrange(len(text))
            repeated = text[i].split(":")[0].strip()
            text.insert(i + 1 if text[i].startswith("  ") else 0, text[i])
        else:  # the slurm block is last: the account goes into it
            value = rng.choice([*CLI_VALUES, "gpu\n  account: x", "a b"])
            text.append(f"  account: {json.dumps(value)}")
        path = tmp_path / f"case{case}.yaml"
        path.write_text("\n".join(text) + "\n", encoding="utf-8")

        def check(path: Path, repeated: str | None = repeated) -> None:
            argv = ["bench", "--config", str(path), "--executor", "slurm", "--out", str(tmp_path / "out")]
            try:
                rc, _, err = run_case(argv)
            except WouldRun:
                assert repeated is None, f"key {repeated!r} given twice was taken"
                return
            check_outcome(argv, rc, err)
            assert rc == 2, err
            if repeated is not None:
                assert "duplicate key" in err, err

        _case(failures, f"case {case} ({' | '.join(text)!r:.300})", path, check, path)
    _report(failures)

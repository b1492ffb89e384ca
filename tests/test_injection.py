"""No injection: every value that reaches a Slurm batch script or a file name is checked against what that
consumer takes. Each hostile value - a line break (the next line of a batch script would run as a shell
command), ``;``, ``$()``, backticks, quotes - is tried where a user can give it: Slurm options on the command
line and in sweep files, the results directory a Slurm job writes to, network and writer names that become
file names, output paths. Either it is refused in one line before anything runs, or it is shown to be taken
literally (a file of exactly that name, nothing executed). The same values through a real sbatch:
tests/test_slurm.py::test_hostile_characters_never_run_in_the_batch_script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli

from harness.errors import HarnessError
from harness.executors import SweepRequest
from harness.executors import slurm as slurm_executor
from harness.executors.slurm import SlurmExecutor, SlurmOptions
from harness.kernels.profile_record import profile_stem
from harness.measure.sweep import SweepSpec
from harness.results.records import Config, Record
from harness.results.store import ResultsStore, read_results

#: what a shell or a batch script would act on (the marker file must never appear)
HOSTILE = ["debug\n#SBATCH --wrap=x", "debug\ntouch {marker}", "debug\rtouch {marker}", "a;touch {marker}",
           "$(touch {marker})", "`touch {marker}`", "a'b", 'a"b', "a b", "a\x00b", "a\x1b[31m", "a\u2028b", ""]


def hostile(marker: Path) -> list[str]:
    return [value.format(marker=marker) for value in HOSTILE]


def one_line_refusal(argv: list[str], rc: int, err: str) -> str:
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"harness {argv[0]}: error: "), err
    return lines[0]


@pytest.fixture
def no_submission(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a value pass by mistake, nothing reaches a real sbatch: the test fails instead."""
    def refuse() -> None:
        raise AssertionError("a hostile value reached the submission")

    monkeypatch.setattr(slurm_executor, "_submitit", refuse)


@pytest.mark.parametrize("option", ["partition", "account"])
def test_slurm_names_from_the_command_line_and_sweep_files_are_refused(tmp_path: Path, option: str,
                                                                       no_submission: None) -> None:
    marker = tmp_path / "INJECTED"
    net = str(Path(__file__).parent / "data" / "tiny.prototxt")
    for value in hostile(marker):
        argv = ["bench", net, "--executor", "slurm", "--out", str(tmp_path / "res"),
                f"--slurm-{option}", value]
        line = one_line_refusal(argv, *run_cli(argv)[::2])
        assert f"--slurm-*: {option} must be a Slurm name (letters, digits, '_', '.', '+', '-'" in line
        assert "\n" not in line and "\x1b" not in line and "\x00" not in line
        sweep = tmp_path / "sweep.yaml"
        sweep.write_text(f"networks: [{net}]\nslurm: {json.dumps({option: value})}\n")
        argv = ["bench", "--config", str(sweep), "--executor", "slurm", "--out", str(tmp_path / "res")]
        line = one_line_refusal(argv, *run_cli(argv)[::2])
        assert f"{sweep}: 'slurm' / --slurm-*: {option} must be a Slurm name" in line
    assert not marker.exists()
    # what Slurm names look like passes
    assert SlurmOptions.parse({"partition": "gpu-a100,debug_2", "account": "proj.x+1"}, "x").partition == \
        "gpu-a100,debug_2"


@pytest.mark.parametrize("name", ["res\nults", "res%j", "res\\ults", "res\x1b[1m", "res\u2028x"])
def test_a_results_path_a_batch_script_cannot_carry_is_refused_before_submitting(tmp_path: Path, name: str,
                                                                                 no_submission: None) -> None:
    request = SweepRequest(SweepSpec(networks=["alexnet"], backends=[], batches=[1], devices=[]), tmp_path / name)
    with pytest.raises(HarnessError, match=r"^--executor slurm: the results directory .* holds .*, which Slurm's "
                                           r"batch script cannot carry as it is") as err:
        SlurmExecutor().run(request)
    assert "\n" not in str(err.value)


def test_shell_characters_in_a_results_path_are_only_characters(tmp_path: Path) -> None:
    """Spaces, ;, $(), backticks, quotes and # reach the batch script shell-quoted (submitit) and sbatch
    reads them as they are: allowed (tests/test_slurm.py runs a real job in such a folder)."""
    path = tmp_path / "r e;s$(touch x)`id`'q\"#"
    slurm_executor.check_script_path(str(path), "the results directory")


def test_names_that_become_file_names_stay_one_name_in_their_folder(tmp_path: Path) -> None:
    marker = tmp_path / "INJECTED"
    for value in [*hostile(marker), "../../etc/passwd", "..", "/abs/path", "x" * 300]:
        store = ResultsStore(tmp_path, writer=value)
        assert store.path.parent == tmp_path and store.path.name.startswith("results-")
        assert all(c.isalnum() or c in "-_.+" for c in store.path.name), store.path.name
        record = Record(config=Config(value or "n", value or "b", 1), status="failed", message="x")
        store.append(record)
        stem = profile_stem(Config(value or "n", value or "b", 1, mode=value or None), value or "torch")
        assert all(c.isalnum() or c in "-_.+" for c in stem) and "/" not in stem
    # every record was written and reads back with its hostile names intact, as data
    names = sorted(r.config.network for r in read_results([tmp_path]).records)
    assert sorted({v or "n" for v in [*hostile(marker), "../../etc/passwd", "..", "/abs/path", "x" * 300]}) == names
    assert not marker.exists() and sorted(p.parent for p in tmp_path.rglob("results-*")) == \
        [tmp_path] * len(list(tmp_path.glob("results-*")))


def test_a_graph_name_becomes_a_safe_cache_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.convert.weights import WeightSource
    from harness.ir.build import load_graph

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    text = (Path(__file__).parent / "data" / "tiny.prototxt").read_text()
    name = "../x\\n;$(touch INJECTED)`id`'q\\\""
    graph = load_graph("hostile.prototxt", text=f'name: "{name}"\n' + text.split("\n", 1)[1]
                       if text.startswith("name:") else f'name: "{name}"\n' + text)
    path = WeightSource(graph).caffemodel()
    assert path.parent == tmp_path / "cache" / "caffemodel"
    assert all(c.isalnum() or c in "-_." for c in path.name), path.name
    assert not list(tmp_path.rglob("INJECTED"))


def test_output_paths_with_control_characters_are_refused_and_shell_characters_are_literal(tmp_path: Path) -> None:
    results = tmp_path / "res"
    ResultsStore(results).append(Record(config=Config("n", "b", 1), status="failed", message="x"))
    marker = tmp_path / "INJECTED"
    for value in ("out\nx.csv", "out\rx.csv", "out\x1b[2J.csv", "out\u2028.csv", ""):
        for argv in (["results", str(results), "-o", str(tmp_path / value) if value else value],
                     ["report", str(results), "-o", str(tmp_path / value) if value else value],
                     ["bench", "alexnet", "--out", str(tmp_path / value) if value else value],
                     ["profile", "alexnet", "--tool", "torch", "--out", str(tmp_path / value) if value else value],
                     ["zoo", "build", "--out", str(tmp_path / value) if value else value]):
            line = one_line_refusal(argv, *run_cli(argv)[::2])
            assert "expected a path without control characters" in line and "\x1b" not in line
    literal = tmp_path / f"a b;touch {marker};$(touch {marker.name})`id`'\"#.csv"
    literal.parent.mkdir(parents=True, exist_ok=True)
    rc, _, err = run_cli(["results", str(results), "-o", str(literal)])
    assert rc == 0, err
    assert literal.read_text().startswith("key,") and not marker.exists()

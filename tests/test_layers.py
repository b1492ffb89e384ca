"""`harness layers`: per-layer time on every engine in real workers, joined with the analyzer; its records,
store and resume; its report section and claim row; sweep files that ask for layer profiles.

The issue's bar runs for real: SqueezeNet-V1.1 and MobileNet at B=1 on the CPU through Caffe (skipped without
pycaffe), PyTorch, ONNX Runtime and OpenCV, every prototxt layer timed or named in the group it ran in, and
the sum of the rows within 20% of the same worker's whole forward (judged on profiles whose measurement the
contention guard did not flag: a shared 2-core machine can make any of them meaningless)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from harness import zoo
from harness.analysis.analyzer import analysis_of
from harness.cli.main import main
from harness.layertime.join import category, layer_placement, row_volume
from harness.layertime.record import LayerEntry, LayerProfile, RowTime
from harness.layertime.store import PROFILES_FILE, LayerProfileStore, read_layer_profiles, rows_frame
from harness.measure.sweep import available_backends
from harness.results.records import Config, LatencyFigures

BAR_NETWORKS = ["squeezenet_v1.1", "mobilenet_v1"]
ENGINES = ["caffe", "pytorch", "onnxruntime", "opencv"]
QUICK = ["--set", "warmup_iters=1", "--set", "min_iters=5", "--set", "min_s=0.3"]
BAR_SETTINGS = ["--set", "warmup_iters=1", "--set", "min_iters=5", "--set", "min_s=1.0"]  # medians of more passes
DATA = Path(__file__).parent / "data"


def engines_here() -> list[str]:
    here = available_backends("cpu")
    missing = [e for e in ENGINES if e not in here and e != "caffe"]
    if missing:
        pytest.skip(f"backends not installed: {', '.join(missing)}")
    return [e for e in ENGINES if e in here]


@pytest.fixture(scope="module")
def bar_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    """The bar's configurations, once, kept in a results directory: (directory, JSON output, engines)."""
    engines = engines_here()
    out = tmp_path_factory.mktemp("layers")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["layers", *BAR_NETWORKS, "--backend", ",".join(engines), "--batch", "1", "--format", "json",
                     "--out", str(out), *BAR_SETTINGS])
    assert code == 0, buffer.getvalue()[-2000:]
    return out, json.loads(buffer.getvalue()), engines


def test_the_bar_every_layer_has_a_time_or_its_group_and_the_rows_add_up(bar_run) -> None:
    _, doc, engines = bar_run
    profiles = doc["profiles"]
    assert sorted((p["network"], p["backend"]) for p in profiles) == sorted(
        (n, e) for n in BAR_NETWORKS for e in engines)
    judged = []
    for p in profiles:
        assert p["status"] == "ok", p["message"]
        graph = zoo.resolve(p["network"])
        layers = {entry["layer"]: entry for entry in p["layers"]}
        assert list(layers) == [layer.name for layer in graph.layers]  # every layer of the prototxt, in order
        rows = {r["row"]: r for r in p["rows"]}
        for name, entry in layers.items():
            if entry["time_s"] is None:  # it ran in a fused group, which is a row with a time
                assert entry["ran_in"] in rows and name in entry["ran_in"].split("+"), entry
                assert entry["group_time_s"] == pytest.approx(rows[entry["ran_in"]]["median_ms"] / 1e3)
                assert rows[entry["ran_in"]]["note"].startswith("fused by"), entry
            elif entry["ran_in"] is None:  # removed: only where the engine has no work for it
                assert p["backend"] == "onnxruntime" and graph.layer(name).type == "Dropout", entry
            else:
                assert entry["time_s"] >= 0
        assert p["sum_of_rows_ms"] > 0 and p["whole_forward_ms"]["median"] > 0
        whole = p["whole_forward_ms"]
        # a whole forward whose own interval is wider than the bar cannot judge it (a 2-core machine's noise
        # the contention guard did not see: seen once with ONNX Runtime at 6.4-10.1 ms around 9.5 ms)
        resolved = whole["ci_low"] >= 0.8 * whole["median"] and whole["ci_high"] <= 1.2 * whole["median"]
        if not p["contended"] and resolved:
            judged.append(p["key"])
            assert abs(p["gap_pct"]) <= 20, (p["key"], whole, p["sum_of_rows_ms"])
    assert 2 * len(judged) >= len(profiles), "most profiles were too disturbed to judge the bar"
    print(f"sum of rows vs whole judged on {len(judged)} of {len(profiles)} profiles (others contended or noisy)")


def test_engines_name_their_rows_as_they_ran_them(bar_run) -> None:
    _, doc, engines = bar_run
    by = {(p["network"], p["backend"]): p for p in doc["profiles"]}
    mobilenet_cv = {r["row"]: r for r in by[("mobilenet_v1", "opencv")]["rows"]}
    assert mobilenet_cv["conv1+conv1/bn+conv1/scale+relu1"]["note"] == "fused by OpenCV"
    ort = {r["row"]: r for r in by[("mobilenet_v1", "onnxruntime")]["rows"]}
    fused = ort["conv2_1/dw+conv2_1/dw/bn+conv2_1/dw/scale+relu2_1/dw"]
    assert fused["category"] == "depthwise convolution" and fused["note"] == "fused by onnxruntime"
    torch_rows = [r["row"] for r in by[("squeezenet_v1.1", "pytorch")]["rows"]]
    assert torch_rows == [layer.name for layer in zoo.resolve("squeezenet_v1.1").layers]  # one module per layer
    squeeze_ort = {e["layer"]: e for e in by[("squeezenet_v1.1", "onnxruntime")]["layers"]}
    assert squeeze_ort["drop9"]["ran_in"] is None and squeeze_ort["drop9"]["time_s"] == 0.0
    if "caffe" in engines:
        caffe = {r["row"]: r for r in by[("squeezenet_v1.1", "caffe")]["rows"]}
        assert caffe["relu_conv1"]["note"] == "in place (writes conv1)"
        assert caffe["data"]["note"] == "the network's input"
        splits = [r for r in caffe.values() if r["ops"] == "Split"]
        assert splits and all(r["note"] == "added by Caffe" and r["layers"] == 0 for r in splits)
        assert "net._forward(i, i)" in by[("squeezenet_v1.1", "caffe")]["mechanism"]
    for p in doc["profiles"]:  # shares add up; the summary's kinds are the rows'
        assert sum(r["time_pct"] for r in p["rows"]) == pytest.approx(100)
        assert sum(s["macs_pct"] for s in p["summary"]) == pytest.approx(100)
    side = {(g["network"]): g for g in doc["side_by_side"]}
    assert set(side) == set(BAR_NETWORKS) and len(side["mobilenet_v1"]["engines"]) == len(engines)
    depthwise = next(c for c in side["mobilenet_v1"]["categories"] if c["category"] == "depthwise convolution")
    assert depthwise["macs_pct"] == pytest.approx(3.03, abs=0.01)  # the analyzer's share, Caffe's counting


def test_rows_join_the_analyzer(bar_run) -> None:
    out, _, _ = bar_run
    profiles = {(p.config.network, p.config.backend): p for p in read_layer_profiles([out]).records}
    for (network, backend), profile in profiles.items():
        analysis = analysis_of(zoo.resolve(network), "caffe", batch=1)
        assert sum(r.macs for r in profile.rows) == analysis.totals.macs, (network, backend)
        assert profile.bytes_per_element == 4 and profile.precision == "fp32"
        if backend == "onnxruntime":  # its two sessions stop spin-waiting after a run (OrtLayerTimer says why)
            assert profile.metadata["backend_session_config"] == {"session.force_spinning_stop": "1"}
            assert "stop spin-waiting when a run returns" in (profile.mechanism or "")
    frame = rows_frame(profiles.values())  # pandas: one row per engine row, with the rates
    assert len(frame) == sum(len(p.rows) for p in profiles.values())
    assert {"network", "backend", "row", "category", "median_ms", "gmacs_per_s", "ai_mac_per_byte"} <= set(frame)
    conv = next(r for r in profiles[("squeezenet_v1.1", "pytorch")].rows if r.name == "conv1")
    stats = next(s for s in analysis_of(zoo.resolve("squeezenet_v1.1"), "caffe", batch=1).layers if s.name == "conv1")
    assert conv.macs == stats.macs and conv.params == stats.params
    assert conv.bytes_moved == 4 * (stats.params + 3 * 224 * 224 + 64 * 111 * 111)


def test_a_rerun_resumes_and_force_measures_again(bar_run, capsys) -> None:
    out, _, _ = bar_run
    before = {p.key: p.finished_at for p in LayerProfileStore(out).read().records}
    assert main(["layers", BAR_NETWORKS[0], "--backend", "opencv", "--out", str(out), "--format", "csv",
                 *QUICK]) == 0
    captured = capsys.readouterr()
    assert "1 already profiled" in captured.err and "0 configuration(s) profiled" in captured.err
    header, *rows = captured.out.strip().splitlines()
    assert header.startswith("network,backend,mode,device,batch,row,") and len(rows) == 32  # OpenCV's rows
    assert {p.key: p.finished_at for p in LayerProfileStore(out).read().records} == before
    assert not (out / "results.jsonl").exists()  # layer profiles never go among timing records
    assert main(["layers", BAR_NETWORKS[0], "--backend", "opencv", "--out", str(out), "--force", "--top", "2",
                 *QUICK]) == 0
    captured = capsys.readouterr()
    assert "1 configuration(s) profiled" in captured.err
    assert "rows as opencv ran them (2 slowest)" in captured.out
    assert "where the time goes, by layer kind" in captured.out
    after = {p.key: p.finished_at for p in LayerProfileStore(out).read().records}
    changed = [k for k in after if after[k] != before[k]]
    assert len(changed) == 1 and "|opencv|" in changed[0]


def test_report_has_where_the_time_goes_with_its_figures(bar_run, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out, _, engines = bar_run
    assert main(["report", str(out), "-o", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    section = md[md.index("## Where the time goes"):]
    assert "Share of time vs share of MACs by layer kind" in section
    figures = re.findall(r"figures/((?:time_vs_macs|layer_roofline)_[^)\s]+)\.png", section)
    assert len(set(figures)) == 2 * len(engines)  # per setup: shares by layer kind, per-layer roofline
    for stem in figures:
        assert (tmp_path / "figures" / f"{stem}.png").read_bytes().startswith(b"\x89PNG")
    assert "1x1 convolutions achieve fewer MACs per second" in md  # the claim row, in the checklist too


# ---- records, store, join ------------------------------------------------------------------------------


def _row(name: str, category_: str, macs: int, median_s: float, spread: float = 0.0) -> RowTime:
    return RowTime(name=name, layers=[name], types=["Convolution"], ops=["Conv"], note="", category=category_,
                   median_s=median_s, ci_low_s=median_s - spread, ci_high_s=median_s + spread, ci_coverage=0.9,
                   mean_s=median_s, min_s=median_s, max_s=median_s, macs=macs, params=1, input_elements=1,
                   output_elements=1, bytes_moved=12)


def _profile(rows: list[RowTime], backend: str = "opencv", contended: dict | None = None) -> LayerProfile:
    whole = LatencyFigures(iterations=5, total_s=1.0, median_s=0.2, mean_s=0.2, p90_s=0.2, min_s=0.2, max_s=0.2,
                           stddev_s=0.0, ci_low_s=0.2, ci_high_s=0.2, ci_coverage=0.94, warmup_iters=1, warmup_s=0.1,
                           throughput_fps=5.0)
    return LayerProfile(config=Config("squeezenet_v1.1", backend, 1, "cpu", "cpu", hardware="Test CPU"), status="ok",
                        mechanism="m", precision="fp32", bytes_per_element=4, whole=whole, instrumented=whole,
                        whole_s=[0.2] * 5, instrumented_s=[0.21] * 5, pass_sums_s=[0.19] * 5, rows=rows,
                        layers=[LayerEntry(r.name, "Convolution", r.category, r.macs, r.name) for r in rows],
                        started_at="2026-01-01T00:00:00.000+00:00", finished_at="2026-01-01T00:00:01.000+00:00",
                        contended=contended)


def test_a_record_round_trips_and_a_wrong_type_is_named() -> None:
    profile = _profile([_row("a", "1x1 convolution", 10, 0.1)])
    data = json.loads(json.dumps(profile.to_dict()))
    assert LayerProfile.from_dict(data) == profile
    bad = json.loads(json.dumps(data))
    bad["rows"][0]["macs"] = "ten"
    with pytest.raises(ValueError, match=r"^rows\[0\]\.macs: expected an integer, got 'ten'$"):
        LayerProfile.from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["whole"]["median_s"] = True
    with pytest.raises(ValueError, match=r"^whole\.median_s: expected a number, got true$"):
        LayerProfile.from_dict(bad)
    with pytest.raises(ValueError, match="not a layer profile"):
        LayerProfile.from_dict({**data, "kind": None})
    with pytest.raises(ValueError, match="status: expected one of 'ok'"):
        LayerProfile.from_dict({**data, "status": "great"})
    # well typed, and still not a profile: the pairs' lists of different lengths, a forward of no time
    with pytest.raises(ValueError, match="one value per timed pair: 5, 5, 1 values"):
        LayerProfile.from_dict({**data, "pass_sums_s": [0.1]})
    with pytest.raises(ValueError, match="not above 0"):
        LayerProfile.from_dict({**data, "whole_s": [0.0] * 5})


def test_store_merges_by_the_one_rule_and_counts_bad_lines(tmp_path: Path) -> None:
    store = LayerProfileStore(tmp_path)
    first = _profile([_row("a", "1x1 convolution", 10, 0.1)])
    store.append(first)
    failed = replace(first, status="failed", message="later failure", finished_at="2026-01-02T00:00:00.000+00:00")
    store.append(failed)
    with (tmp_path / PROFILES_FILE).open("a") as fh:
        short = {**first.to_dict(), "pass_sums_s": [0.1]}  # its gap would be a traceback in the report
        fh.write('{"kind": "layer-profile", "schema": 1, "config": 3}\n' + json.dumps(short) + '\n{"truncated": ')
    merged = read_layer_profiles([tmp_path])
    assert [p.status for p in merged.records] == ["ok"]  # a newer failure never hides a measured profile
    assert [bad.reason for bad in merged.unreadable] == [
        "config: expected an object, got 3",
        "whole_s, instrumented_s and pass_sums_s are one value per timed pair: 5, 5, 1 values", "truncated line"]
    assert "skipped 3 unreadable line(s), kept on disk" in merged.warnings()[0]


def test_categories_and_the_volume_of_a_fused_row() -> None:
    analysis = {s.name: s for s in analysis_of(zoo.resolve("mobilenet_v1"), "caffe", batch=1).layers}
    assert category(analysis["conv2_1/dw"]) == "depthwise convolution"
    assert category(analysis["conv2_1/sep"]) == "1x1 convolution"
    assert category(analysis["conv1"]) == "3x3 convolution"
    alexnet = {s.name: s for s in analysis_of(zoo.resolve("alexnet"), "caffe", batch=1).layers}
    assert category(alexnet["conv2"]) == "5x5 grouped convolution" and category(alexnet["fc6"]) == "fully connected"
    group = [analysis[n] for n in ("conv1", "conv1/bn", "conv1/scale", "relu1")]
    volume = row_volume(group)
    # the group reads the input once and writes conv1's blob once (BatchNorm, Scale and ReLU work in place)
    assert volume.inputs == 3 * 224 * 224 and volume.outputs == 32 * 112 * 112
    assert volume.weights == sum(s.params for s in group) and volume.macs == sum(s.macs for s in group)


def test_placement_names_removed_layers() -> None:
    profile = _profile([_row("a", "1x1 convolution", 10, 0.1)], backend="onnxruntime")
    profile.layers.append(LayerEntry("drop", "Dropout", "copy, reshape", 0, None))
    entry = layer_placement(profile)[-1]
    assert entry == {"layer": "drop", "type": "Dropout", "kind": "copy, reshape", "macs": 0, "ran_in": None,
                     "time_s": 0.0, "group_time_s": None,
                     "how": "removed by onnxruntime: nothing ran it (an identity at inference)"}


def test_the_one_by_one_claim_rule() -> None:
    pytest.importorskip("matplotlib")
    pd = pytest.importorskip("pandas")
    from harness.report import claims, measured
    from harness.report import where_time_goes as wtg

    def claim_one_by_one(profiles: list[LayerProfile]) -> list:
        (layers,) = measured.assign_devices(measured.layer_rows(profiles))
        empty = pd.DataFrame()
        return wtg.claim_one_by_one(measured.Measured(empty, empty, [], empty, layer_profiles=profiles, layers=layers))

    slow = _profile([_row("s", "1x1 convolution", 100, 1.0, 0.1), _row("l", "3x3 convolution", 900, 1.0, 0.1)])
    fast = _profile([_row("s", "1x1 convolution", 900, 1.0, 0.1), _row("l", "3x3 convolution", 100, 1.0, 0.1)])
    close = _profile([_row("s", "1x1 convolution", 100, 1.0, 0.5), _row("l", "3x1 convolution", 120, 1.0, 0.5)])
    cpu = {c.scope: c for c in claim_one_by_one([slow])}
    assert cpu[claims.CPU].verdict == claims.REPRODUCED and cpu[claims.GPU].verdict == claims.NOT_MEASURED
    assert claim_one_by_one([fast])[1].verdict == claims.NOT_REPRODUCED
    assert claim_one_by_one([close])[1].verdict == claims.INCONCLUSIVE
    disturbed = claim_one_by_one([replace(slow, contended={"reasons": ["busy"]})])[1]
    assert disturbed.verdict == claims.NOT_MEASURED and disturbed.left_out == "1 contended layer profile(s)"


# ---- failures and bad input ---------------------------------------------------------------------------


def test_a_mode_that_runs_no_layer_module_is_recorded_unsupported(tmp_path: Path, capsys) -> None:
    if "pytorch" not in available_backends("cpu"):
        pytest.skip("pytorch is not installed")
    tiny = DATA / "tiny.prototxt"
    assert main(["layers", str(tiny), "--backend", "pytorch", "--mode", "compile", "--out", str(tmp_path),
                 *QUICK]) == 1
    assert "unsupported: pytorch mode 'compile' runs no layer module" in capsys.readouterr().err
    (record,) = LayerProfileStore(tmp_path).read().records
    assert record.status == "unsupported" and not (tmp_path / "results.jsonl").exists()


@pytest.mark.parametrize("fork_server", [None, "0"])
def test_layer_profile_workers_start_as_a_sweeps(fork_server: str | None, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Forked from a warm parent by default, spawned fresh with HARNESS_FORK_SERVER=0; the profile says which."""
    from harness.worker_start import FORK_SERVER_ENV

    if "opencv" not in available_backends("cpu"):
        pytest.skip("opencv is not installed")
    if fork_server is None:
        monkeypatch.delenv(FORK_SERVER_ENV, raising=False)
    else:
        monkeypatch.setenv(FORK_SERVER_ENV, fork_server)
    assert main(["layers", str(DATA / "tiny.prototxt"), "--backend", "opencv", "--out", str(tmp_path), *QUICK]) == 0
    (profile,) = LayerProfileStore(tmp_path).read().records
    assert profile.status == "ok", profile.message
    how = profile.metadata["worker_start"]["how"]
    assert how == ("forked" if fork_server is None else "spawned")
    if how == "forked":
        assert profile.metadata["worker_start"]["parent_backend"] == "opencv"  # a parent of its own backend


@pytest.mark.parametrize(("argv", "message"), [
    (["layers", "no_such_net", "--backend", "opencv"], "no_such_net"),
    (["layers", "alexnet", "--backend", "nope"], "unknown backend"),
    (["layers", "alexnet", "--backend", "opencv", "--device-spec", "nope"], "unknown device spec 'nope'"),
    (["layers", "alexnet", "--backend", "opencv", "--force"], "--force applies with --out"),
    (["layers", "alexnet", "--backend", "opencv", "--set", "min_itres=3"], "unknown measurement setting"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_sweep_file_can_ask_for_layer_profiles(tmp_path: Path, capsys) -> None:
    if "opencv" not in available_backends("cpu"):
        pytest.skip("opencv is not installed")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"networks: [{DATA / 'tiny.prototxt'}]\nbackends: [opencv]\nbatches: [1]\nlayer_profiles: true\n"
                     "settings: {warmup_iters: 1, min_iters: 2, min_s: 0, min_window_s: 0, idle_s: 0}\n")
    out = tmp_path / "res"
    assert main(["bench", "--config", str(sweep), "--out", str(out)]) == 0
    assert "layer profiles: 1 taken" in capsys.readouterr().err
    (profile,) = LayerProfileStore(out).read().records
    assert profile.status == "ok" and [r.name for r in profile.rows][-1] == "fc"
    assert profile.metadata["worker_start"]["how"] == "forked"  # from a warm parent, as the sweep's workers
    assert main(["bench", "--config", str(sweep), "--out", str(out), "--force", "--no-fork-server"]) == 0
    assert "layer profiles: 1 taken" in capsys.readouterr().err
    assert LayerProfileStore(out).read().records[-1].metadata["worker_start"] == {"how": "spawned"}
    assert main(["bench", "--config", str(sweep), "--out", str(out), "--executor", "multi-gpu"]) == 2
    assert "'layer_profiles' runs with --executor local" in capsys.readouterr().err
    sweep.write_text("networks: [alexnet]\nlayer_profiles: yes please\n")
    assert main(["bench", "--config", str(sweep), "--out", str(out)]) == 2
    assert "'layer_profiles' must be true or false" in capsys.readouterr().err


# ---- ONNX Runtime's optimised nodes traced back to the prototxt ---------------------------------------------


def optimized_rows(network: str, level: str = "ORT_ENABLE_ALL") -> tuple[list, object]:
    """The rows of ``network``'s optimised graph at ``level`` (a plain session: no profile needed)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import tempfile

    from harness.backends.onnxruntime_layers import node_units
    from harness.convert.onnx_export import export_onnx
    from harness.convert.weights import WeightSource

    graph = zoo.resolve(network).with_inputs(batch=1)
    models = export_onnx(WeightSource(graph, 0, None))
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        options.optimized_model_filepath = f"{folder}/optimized.onnx"
        options.log_severity_level = 3  # not the warning that an NCHWc graph is saved: that is the point here
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "weights")
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        ort.InferenceSession(str(models.timing), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(f"{folder}/optimized.onnx", load_external_data=False)
    units, row_of = node_units(graph, onnx.load(str(models.timing), load_external_data=False), optimized)
    assert sorted(set(row_of.values())) == list(range(len(units)))  # every node in exactly one row
    return units, graph


@pytest.mark.parametrize("level", ["ORT_ENABLE_ALL", "ORT_ENABLE_EXTENDED"])
@pytest.mark.parametrize("network", zoo.zoo_names())
def test_every_layer_of_the_zoo_but_dropout_lands_in_one_onnxruntime_row(network: str, level: str) -> None:
    units, graph = optimized_rows(network, level)
    covered = [layer for unit in units for layer in unit.layers]
    assert len(covered) == len(set(covered))  # no layer in two rows
    missing = [layer for layer in graph.layers if layer.name not in covered]
    assert all(layer.type == "Dropout" for layer in missing), [layer.name for layer in missing]
    assert all(unit.note == "added by onnxruntime (no prototxt layer)" for unit in units if not unit.layers)
    assert all(unit.ops[0] in ("ReorderInput", "ReorderOutput") for unit in units if not unit.layers)
    # the MACs land where they are computed: a row with a convolution or fully connected layer runs a convolution
    # or a matrix product, and a row that runs one has such a layer, or is a BatchNorm/Scale whose per-channel
    # multiplication ONNX Runtime runs as an NCHWc Conv
    compute_ops = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul"}
    for unit in units:
        types = {graph.layer(name).type for name in unit.layers}
        if types & {"Convolution", "InnerProduct"}:
            assert compute_ops & set(unit.ops), unit
        elif compute_ops & set(unit.ops):
            assert types <= {"BatchNorm", "Scale"} and set(unit.ops) & compute_ops == {"Conv"}, unit


def test_a_fully_connected_layer_and_its_relu_are_one_onnxruntime_row() -> None:
    units, _ = optimized_rows("alexnet")
    fc6 = next(unit for unit in units if "fc6" in unit.layers)
    assert fc6.layers == ("fc6", "relu6") and fc6.ops == ("Flatten", "FusedGemm") and fc6.note == "fused by onnxruntime"


@pytest.mark.parametrize("level", ["ORT_ENABLE_EXTENDED", "ORT_ENABLE_BASIC", "ORT_DISABLE_ALL"])
def test_lower_optimisation_levels_map_too(level: str) -> None:
    units, graph = optimized_rows("mobilenet_v1", level)
    rows = {unit.name: unit for unit in units}
    if level == "ORT_ENABLE_EXTENDED":  # FusedConv named after the convolution, its output the ReLU's
        assert rows["conv1+conv1/bn+conv1/scale+relu1"].ops == ("FusedConv",)
    elif level == "ORT_ENABLE_BASIC":  # BatchNorm and Scale folded into the convolution, the ReLU apart
        assert rows["conv1+conv1/bn+conv1/scale"].ops == ("Conv",) and rows["relu1"].ops == ("Relu",)
    else:  # nothing fused: one row per layer
        assert [unit.name for unit in units] == [layer.name for layer in graph.layers]


def test_caffe_synchronises_a_gpu_only_through_a_loaded_cuda_runtime() -> None:
    from harness.backends.caffe.worker import cuda_synchronizer

    maps = Path("/proc/self/maps").read_text()
    if "/libcudart" in maps:
        pytest.skip("a CUDA runtime is loaded in this process")
    with pytest.raises(RuntimeError, match="no CUDA runtime is loaded in this process"):
        cuda_synchronizer()

"""`harness analyze --metrics/--device-spec/--weights`: outputs and one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from harness.cli.main import main
from harness.convert.caffemodel import write_caffemodel
from harness.convert.weights import weight_set
from harness.ir.build import load_graph


@pytest.fixture
def net(tmp_path, tiny_prototxt):
    graph = load_graph(tiny_prototxt)
    model = write_caffemodel(tmp_path / "tiny.caffemodel", weight_set(graph, seed=1),
                             {lay.name: lay.type for lay in graph.layers})
    return str(tiny_prototxt), str(model)


def test_json_carries_metrics_per_layer_and_totals(net, capsys) -> None:
    proto, model = net
    assert main(["analyze", proto, "--metrics", "all", "--device-spec", "h100-sxm", "--weights", model,
                 "--quantize-bits", "4", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)[0]
    metrics = doc["metrics"]
    assert len(metrics["layers"]) == len(doc["layers"])
    conv = metrics["layers"][0]
    assert conv["r_ia"] == pytest.approx(36.0) and conv["bound_fp32"] in ("compute", "bandwidth")
    assert conv["w_matrix"] == "4x27" and conv["bits_dense"] == 4 * 27 * 32
    assert metrics["totals"]["device"] == "h100-sxm" and metrics["totals"]["w_quantize_bits"] == 4


@pytest.mark.parametrize("convention", ["paper", "caffe"])
def test_csv_per_layer_and_totals(net, capsys, convention) -> None:
    proto, _ = net
    assert main(["analyze", proto, "--metrics", "reuse", "--convention", convention, "--per-layer",
                 "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == ["conv", "relu", "fc"]
    assert rows[1]["r_f"] == ""  # undefined for a layer without weights
    assert float(rows[0]["di_harness"]) > 0
    assert main(["analyze", proto, "--metrics", "all", "--format", "csv"]) == 0
    (total,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert float(total["ai"]) > 0 and "t_bound_fp32_s" not in total  # no device given: no roofline


def test_table_output_labels_the_harness_di(net, capsys) -> None:
    proto, _ = net
    assert main(["analyze", proto, "--metrics", "all", "--per-layer"]) == 0
    assert "harness weighting" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--metrics", "roofline"], "needs --device-spec"),
    (["--metrics", "storage"], "needs --weights"),
    (["--metrics", "speed"], "unknown group"),
    (["--device-spec", "x100"], "unknown device spec"),
    (["--weights", "missing.caffemodel"], "missing.caffemodel"),
    (["--metrics", "reuse", "--di-weights", "1,2"], "DI weights"),
    (["--metrics", "reuse", "--di-weights", "1,nan,2"], "finite non-negative"),
    (["--metrics", "reuse", "--di-weights", "inf,1,2"], "finite non-negative"),
    (["--di-weights", "1,1,1"], "--di-weights weighs the harness DI of the design-time metrics: give --metrics"),
    (["--metrics", "reuse", "--quantize-bits", "4"], "--quantize-bits"),
])
def test_bad_options_are_one_line_errors(net, capsys, argv, message) -> None:
    proto, _ = net
    assert main(["analyze", proto, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_weights_of_another_network_are_refused_naming_the_layer(tmp_path, tiny_prototxt, capsys) -> None:
    import numpy as np

    graph = load_graph(tiny_prototxt)
    conv = next(lay for lay in graph.layers if lay.type == "Convolution")
    other = write_caffemodel(tmp_path / "other.caffemodel",
                             {conv.name: [np.zeros((4, 3, 5, 5), np.float32), np.zeros(4, np.float32)]},
                             {conv.name: "Convolution"})
    assert main(["analyze", str(tiny_prototxt), "--weights", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"layer '{conv.name}'" in err and "(4, 3, 5, 5)" in err and "Traceback" not in err

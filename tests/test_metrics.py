"""Arithmetic intensity, reuse factors and the harness DI, checked against hand counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis.analyzer import analyze
from harness.analysis.metrics import DIWeights, metric_columns
from harness.errors import HarnessError
from harness.ir.build import load_graph


def _columns(prototxt: Path, **kwargs):
    analysis = analyze(load_graph(prototxt), "paper", batch=kwargs.pop("batch", 1))
    per_layer, totals = metric_columns(analysis, **kwargs)
    return dict(zip((s.name for s in analysis.layers), per_layer, strict=True)), totals


def test_conv_layer_by_hand(tiny_prototxt: Path) -> None:
    rows, _ = _columns(tiny_prototxt)
    conv = rows["conv"]
    # MACs = 8*8 positions * 4 filters * 3*3*3 = 6912; weights = 4*27 + 4 bias = 112;
    # IA = 3*8*8 = 192; OA = 4*8*8 = 256; elements = 560.
    assert (conv["weights"], conv["input_acts"], conv["output_acts"]) == (112, 192, 256)
    assert conv["ai"] == pytest.approx(6912 / 560)
    assert conv["ai_fp32"] == pytest.approx(6912 / (560 * 4))
    assert conv["ai_fp16"] == pytest.approx(6912 / (560 * 2))
    assert conv["ai_int8"] == pytest.approx(6912 / 560)
    assert (conv["r_f"], conv["r_ia"], conv["r_oa"]) == pytest.approx((6912 / 112, 36.0, 27.0))
    # Default harness DI weights 1, 1, 2: 6912 / (112 + 192 + 2*256).
    assert conv["di_harness"] == pytest.approx(6912 / 816)


def test_layer_without_weights_has_no_weight_reuse(tiny_prototxt: Path) -> None:
    rows, _ = _columns(tiny_prototxt)
    relu = rows["relu"]
    assert relu["r_f"] is None  # no weights: the ratio is undefined, not infinite
    assert relu["ai"] == 0 and relu["r_ia"] == 0


def test_totals_are_sums_over_layers_and_scale_with_batch(tiny_prototxt: Path) -> None:
    rows, totals = _columns(tiny_prototxt)
    for key in ("weights", "input_acts", "output_acts"):
        assert totals[key] == sum(r[key] for r in rows.values())
    # fc: 10 x 256 MACs, 2570 weights, IA 256, OA 10.
    macs = 6912 + 2560
    assert totals["ai"] == pytest.approx(macs / (totals["weights"] + totals["input_acts"] + totals["output_acts"]))
    assert totals["r_f"] == pytest.approx(macs / (112 + 2570))
    _, batch4 = _columns(tiny_prototxt, batch=4)
    assert batch4["r_f"] == pytest.approx(4 * totals["r_f"])  # weights are reused across the batch
    assert batch4["r_ia"] == pytest.approx(totals["r_ia"])


def test_di_weights_are_configurable_and_validated(tiny_prototxt: Path) -> None:
    rows, totals = _columns(tiny_prototxt, di=DIWeights.parse("1,1,1"))
    assert rows["conv"]["di_harness"] == pytest.approx(rows["conv"]["ai"])  # equal weights: DI = AI
    assert totals["di_weights"] == "1,1,1"
    rows, _ = _columns(tiny_prototxt, di=DIWeights(weights=0, inputs=0, outputs=1))
    assert rows["conv"]["di_harness"] == pytest.approx(rows["conv"]["r_oa"])
    for bad in ("1,1", "a,b,c", "-1,1,1", "0,0,0", "nan,1,1", "1,inf,1"):
        with pytest.raises(HarnessError):
            DIWeights.parse(bad)


def test_both_conventions_give_columns(tiny_prototxt: Path) -> None:
    graph = load_graph(tiny_prototxt)
    for convention in ("paper", "caffe"):
        analysis = analyze(graph, convention)
        per_layer, totals = metric_columns(analysis)
        assert len(per_layer) == len(analysis.layers)
        assert totals["ai"] > 0

"""Device specs and roofline latency bounds."""

from __future__ import annotations

import pytest

from harness.analysis.analyzer import analyze
from harness.analysis.metrics import metric_columns
from harness.analysis.roofline import DeviceSpec, device_spec, device_specs, layer_bound, network_bound
from harness.analysis.volume import DataVolume
from harness.errors import HarnessError
from harness.ir.build import load_graph

# 1 TFLOP/s fp32, 2 TFLOP/s fp16, 100 GB/s: ridge point 10 FLOP/byte (fp32).
TOY = DeviceSpec("toy", "toy", {"fp32": 1e12, "fp16": 2e12}, 1e11, 1e9, "made up for the test")


def test_shipped_specs_are_complete_and_sourced() -> None:
    specs = device_specs()
    assert {"p100-sxm2", "v100-sxm2-32gb", "a100-sxm4-80gb", "h100-sxm", "h200-sxm"} <= set(specs)
    assert any(name.startswith("cpu-") for name in specs)
    for spec in specs.values():
        assert spec.peak_flops["fp16"] >= spec.peak_flops["fp32"] > 0
        assert spec.bandwidth > 0 and spec.memory_bytes > 0
        assert len(spec.source) > 40
    for name in ("p100-sxm2", "v100-sxm2-32gb", "a100-sxm4-80gb", "h100-sxm", "h200-sxm"):
        assert "datasheet" in specs[name].source and "http" in specs[name].source
    assert device_spec("h100-sxm").bandwidth == pytest.approx(3.35e12)
    assert device_spec("p100-sxm2").peak_flops["fp32"] == pytest.approx(10.6e12)


def test_unknown_device_names_the_known_ones() -> None:
    with pytest.raises(HarnessError, match="h100-sxm"):
        device_spec("no-such-gpu")


def test_layer_bound_by_hand() -> None:
    # 1e6 MACs = 2e6 FLOP; 1000 elements = 4000 B in fp32 -> 500 FLOP/B, above the ridge (10): compute.
    row = layer_bound(DataVolume(macs=10**6, weights=500, inputs=250, outputs=250), TOY)
    assert row["t_compute_fp32_s"] == pytest.approx(2e-6)
    assert row["t_memory_fp32_s"] == pytest.approx(4e-8)
    assert row["t_bound_fp32_s"] == pytest.approx(2e-6) and row["bound_fp32"] == "compute"
    assert row["t_compute_fp16_s"] == pytest.approx(1e-6) and row["t_memory_fp16_s"] == pytest.approx(2e-8)
    # 100 MACs on the same data: 200 FLOP / 4000 B = 0.05 FLOP/B, below the ridge: bandwidth.
    row = layer_bound(DataVolume(macs=100, weights=500, inputs=250, outputs=250), TOY)
    assert row["bound_fp32"] == "bandwidth" and row["t_bound_fp32_s"] == pytest.approx(4e-8)


def test_network_bound_sums_layers_and_is_at_least_the_whole_net_roofline() -> None:
    volumes = [DataVolume(10**6, 500, 250, 250), DataVolume(100, 500, 250, 250)]
    rows = [layer_bound(v, TOY) for v in volumes]
    total = network_bound(rows, volumes[0] + volumes[1], TOY, memory_bytes=2 * 10**9)
    assert total["t_bound_fp32_s"] == pytest.approx(2e-6 + 4e-8)
    assert total["t_roofline_net_fp32_s"] <= total["t_bound_fp32_s"]
    assert total["compute_bound_share_fp32"] == pytest.approx(2e-6 / (2e-6 + 4e-8))
    assert total["fits_in_device_memory"] is False


def test_metric_columns_with_a_device() -> None:
    text = """
    input: "data" input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 64 kernel_size: 3 pad: 1 } }
    layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
    """
    analysis = analyze(load_graph("net.prototxt", text=text), "caffe")
    per_layer, totals = metric_columns(analysis, device=device_spec("a100-sxm4-80gb"))
    conv, relu = per_layer
    assert relu["bound_fp32"] == "bandwidth"  # no arithmetic at all
    assert conv["flops"] == 2 * analysis.layers[0].macs
    assert totals["device"] == "a100-sxm4-80gb"
    assert totals["t_bound_fp32_s"] == pytest.approx(conv["t_bound_fp32_s"] + relu["t_bound_fp32_s"])

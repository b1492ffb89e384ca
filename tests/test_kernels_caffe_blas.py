"""The BLAS calls of a Caffe forward, derived from the graph IR as Caffe's conv/IP/BN layers issue them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.ir.build import load_graph
from harness.kernels.caffe_blas import BlasCall, blas_calls, gpu_family, profile

NET = """
name: "tiny"
input: "data"
input_shape { dim: 2 dim: 4 dim: 8 dim: 8 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "dw" type: "Convolution" bottom: "conv" top: "dw"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 6 engine: CAFFE } }
layer { name: "pw" type: "Convolution" bottom: "dw" top: "pw" convolution_param { num_output: 8 kernel_size: 1 } }
layer { name: "bn" type: "BatchNorm" bottom: "pw" top: "pw" }
layer { name: "fc" type: "InnerProduct" bottom: "pw" top: "fc" inner_product_param { num_output: 10 } }
"""


def _calls(batch: int, cudnn: bool = False) -> dict[tuple[str, str], BlasCall]:
    return {(c.layer, c.purpose): c for c in blas_calls(load_graph("tiny.prototxt", text=NET), batch, cudnn)}


def test_convolution_calls_follow_forward_gpu_gemm() -> None:
    c = _calls(2)
    conv = c["conv", "conv"]  # per image and group: gemm(N, N, C_out/g, H_out*W_out, C_in/g*k*k)
    assert (conv.routine, conv.trans_a, conv.trans_b, conv.m, conv.n, conv.k, conv.count) == \
           ("sgemm", "N", "N", 3, 64, 2 * 9, 2 * 2)
    bias = c["conv", "bias"]  # per image: gemm(N, N, num_output, out_spatial, 1)
    assert (bias.m, bias.n, bias.k, bias.count, bias.family) == (6, 64, 1, 2, "gemmk1")
    dw = c["dw", "conv"]  # depthwise: M = 1 -> a matrix-vector product in cuBLAS (heuristic)
    assert (dw.m, dw.n, dw.k, dw.count) == (1, 64, 9, 12)
    assert dw.family == "gemv2N" and dw.heuristic


def test_inner_product_gemv_at_batch_1_and_gemm_above() -> None:
    one = _calls(1)["fc", "fc"]
    assert (one.routine, one.trans_a, one.m, one.n) == ("sgemv", "N", 10, 8 * 64)
    assert one.family == "gemv2T" and not one.heuristic  # Caffe gemv(NoTrans) -> cublasSgemv(OP_T)
    assert one.cublas == "cublasSgemv(OP_T, m=512, n=10)"
    assert ("fc", "bias") not in _calls(1)  # batch 1: bias by axpy, no BLAS-3 call
    two = _calls(2)
    assert (two["fc", "fc"].trans_b, two["fc", "fc"].m, two["fc", "fc"].family) == ("T", 2, "gemm")
    assert two["fc", "bias"].family == "gemmk1"


def test_batch_norm_broadcasts_are_gemmk1() -> None:
    bn = [c for c in blas_calls(load_graph("tiny.prototxt", text=NET), 2) if c.layer == "bn"]
    assert [(c.m, c.n, c.k, c.count) for c in bn] == [(2, 8, 1, 2), (16, 64, 1, 2)]
    assert {c.family for c in bn} == {"gemmk1"}


def test_cudnn_build_sends_default_engine_convolutions_to_cudnn() -> None:
    c = _calls(1, cudnn=True)
    assert c["conv", "conv"].routine == "cudnn" and ("conv", "bias") not in c
    assert c["dw", "conv"].routine == "sgemm"  # engine: CAFFE keeps Caffe's GEMM path


@pytest.mark.parametrize(("call", "family"), [
    (BlasCall("l", "X", "sgemv", "T", "", 4, 5, 0, 1, "x"), "gemv2N"),
    (BlasCall("l", "X", "sgemm", "N", "N", 4, 1, 7, 1, "x"), "gemv2T"),
    (BlasCall("l", "X", "sgemm", "T", "N", 4, 1, 7, 1, "x"), "gemv2N"),
    (BlasCall("l", "X", "sgemm", "N", "T", 1, 4, 7, 1, "x"), "gemv2T"),
    (BlasCall("l", "X", "sgemm", "N", "N", 4, 5, 7, 1, "x"), "gemm"),
])
def test_gpu_family_table(call: BlasCall, family: str) -> None:
    assert gpu_family(call)[0] == family


def test_profile_measures_every_call() -> None:
    p = profile(load_graph("tiny.prototxt", text=NET), "tiny", batch=1, repeats=1)
    timed = [c for c in p.calls if c.routine != "cudnn"]
    assert timed and all(c.seconds_each and c.seconds_each > 0 for c in timed)
    data = p.to_json()
    assert sum(v["pct"] for v in data["families"].values()) == pytest.approx(100.0)
    assert "not included" in data["denominator"]


CPU_PROFILES = Path(__file__).resolve().parent.parent / "kernels_profiles" / "cpu"
STRUCTURE = ("layer", "layer_type", "routine", "trans_a", "trans_b", "m", "n", "k", "count", "purpose", "family",
             "heuristic")


@pytest.mark.parametrize("cudnn", [False, True])
def test_committed_cpu_profiles_match_the_zoo(cudnn: bool) -> None:
    """kernels_profiles/cpu/ (made by kernels_profiles/make_cpu.py) lists exactly the calls the zoo networks
    make now, with timings for every BLAS call, and stays short (one call per line)."""
    from harness import zoo

    for network in zoo.zoo_names():
        path = CPU_PROFILES / f"{network}-b1-{'cudnn' if cudnn else 'caffe-engine'}.json"
        data = json.loads(path.read_text())
        expected = [{key: getattr(c, key) for key in STRUCTURE} for c in blas_calls(zoo.zoo_graph(network), 1, cudnn)]
        assert [{key: call[key] for key in STRUCTURE} for call in data["calls"]] == expected, network
        assert all(c["seconds_each"] > 0 for c in data["calls"] if c["routine"] != "cudnn"), network
        if data["families"]:
            assert sum(f["pct"] for f in data["families"].values()) == pytest.approx(100.0)
        assert data["command"].startswith(f"harness kernels blas {network} --batch 1")
        assert data["machine"]["cpu"] and len(path.read_text().splitlines()) <= len(data["calls"]) + 20

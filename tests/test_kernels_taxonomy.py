"""The kernel-name -> family table, on real kernel names (tests/data/kernel_names.tsv says where each was seen)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.kernels.taxonomy import OTHER, PAPER_FAMILIES, classify, families

NAMES = Path(__file__).parent / "data" / "kernel_names.tsv"


def _rows() -> list[tuple[str, str]]:
    rows = []
    for line in NAMES.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            family, name, source, _cuda = line.split("\t")
            assert source.strip(), f"no source recorded for {name}"
            rows.append((family, name))
    return rows


@pytest.mark.parametrize(("family", "name"), _rows())
def test_real_kernel_names(family: str, name: str) -> None:
    assert classify(name) == family


def test_every_family_of_the_table_is_covered_by_real_names() -> None:
    seen = {f for f, _ in _rows()}
    assert set(PAPER_FAMILIES) <= seen
    assert {"gemm", "convolution", "im2col", "memcpy/memset", "elementwise", OTHER} <= seen


@pytest.mark.parametrize(("name", "family"), [
    # Caffe's own kernels (names from BVLC/caffe sources) and cuDNN helpers that contain misleading words
    ("void caffe::MaxPoolForward<float>(int, float const*, int, int, int, int, int, int, int, int, int, int, "
     "int, int, float*, int*, float*)", "pooling"),
    ("void cudnn::detail::pooling_fw_4d_kernel<float, float, cudnn::detail::maxpooling_func<float>, 0>", "pooling"),
    ("void caffe::kernel_channel_max<float>(int, int, int, float const*, float*)", "softmax"),
    ("void cudnn::detail::bn_fw_inf_1C11_kernel_NCHW<float, float, true, 1>", "batch norm"),
    ("void cudnn::detail::implicit_convolve_sgemm<float, float, 128, 5, 5, 3, 3, 3, 1, true, false, true>",
     "convolution"),
    ("sm90_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x32", "convolution"),
    ("sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32_warpgroupsize1x1x1", "gemm"),
    ("maxwell_scudnn_128x64_relu_interior_nn", "convolution"),  # "relu" must not make it elementwise
    ("volta_sgemm_128x64_nn", "gemm"),
    ("sgemm_32x32x32_NN", "gemm"),
    ("void caffe::ReLUForward<float>(int, float const*, float*, float)", "elementwise"),
    ("Memcpy HtoD (Pageable -> Device)", "memcpy/memset"),
    ("void caffe::LRNComputeOutput<float>(int, float const*, float const*, float, float*)", "other"),
])
def test_rule_order(name: str, family: str) -> None:
    assert classify(name) == family


def test_families_lists_each_once() -> None:
    fams = families()
    assert len(fams) == len(set(fams)) and fams[-1] == OTHER


def test_cli_classify_reads_stdin() -> None:
    out = subprocess.run([sys.executable, "-m", "harness", "kernels", "classify"], check=True, text=True,
                         capture_output=True, input="gemv2T_kernel_val\n\nvoid im2col_gpu_kernel<float>()\n").stdout
    assert out == "gemv2T\tgemv2T_kernel_val\nim2col\tvoid im2col_gpu_kernel<float>()\n"

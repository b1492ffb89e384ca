"""THE kernel-name -> family table. First matching rule wins; order matters and is explained per rule.

Families are those of the paper's analysis (Table III's gemv2T / gemv2N / gemmk1 columns) plus the
groups needed to account for the rest of a CNN's GPU time. Rules match demangled names; they were
checked against real names from nvprof, nsys, ncu and Kineto output of several CUDA releases
(tests/data/kernel_names.tsv records where each was seen).
"""

from __future__ import annotations

import re

GEMV2T = "gemv2T"
GEMV2N = "gemv2N"
GEMMK1 = "gemmk1"
GEMV_OTHER = "gemv (other)"
GEMM = "gemm"
CONVOLUTION = "convolution"
IM2COL = "im2col"
POOLING = "pooling"
BATCH_NORM = "batch norm"
SOFTMAX = "softmax"
ELEMENTWISE = "elementwise"
MEMORY = "memcpy/memset"
OTHER = "other"

#: the paper's three cuBLAS kernels (Table III's last columns, Table V's columns)
PAPER_FAMILIES = (GEMV2T, GEMV2N, GEMMK1)

RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # nvprof/nsys "[CUDA memcpy HtoD]", Kineto "Memcpy HtoD (Pageable -> Device)", "Memset (Device)"
    (MEMORY, re.compile(r"\[CUDA mem(cpy|set)|^Mem(cpy|set)\b|^mem(cpy|set)", re.I)),
    # cuBLAS matrix-vector kernels by their own names (before GEMM: "gemmk1" contains "gemm")
    (GEMV2T, re.compile(r"\bgemv2T_kernel")),
    (GEMV2N, re.compile(r"\bgemv2N_kernel")),
    (GEMMK1, re.compile(r"\bgemmk1_kernel")),
    (GEMV_OTHER, re.compile(r"gemvx|gemvNSP|gemvk1|gemv_kernel|\bgemv\w*kernel|\bdot_kernel|cublasDot")),
    (IM2COL, re.compile(r"im2col|col2im", re.I)),
    # before convolution: cuDNN's own pooling / batch-norm / softmax kernels live in cudnn:: namespaces
    (POOLING, re.compile(r"pool", re.I)),
    (BATCH_NORM, re.compile(r"batch_?norm|\bbn_(fw|bw)|bn_inference|BNForward|BatchNorm", re.I)),
    (SOFTMAX, re.compile(r"softmax|kernel_channel_(max|subtract|sum|div|dot)|\bkernel_exp\b", re.I)),
    # cuDNN / framework convolutions (before GEMM: "implicit_convolve_sgemm", "xmma_fprop_implicit_gemm")
    (CONVOLUTION, re.compile(
        r"[sh]\d{3,4}cudnn|scudnn|convolve|convolution|conv2d|conv_depthwise|depthwise|dwconv|xmma_(fprop|dgrad|wgrad)"
        r"|implicit_?gemm|winograd|fft2d|\bfft\w*_(r2c|c2r)|flip_filter|computeOffsetsKernel|wgrad_alg|dgrad_engine"
        r"|cudnn::.*conv|\bfprop|\bdgrad|\bwgrad", re.I)),
    (GEMM, re.compile(r"gemm|xmma|cutlass|nvjet|splitKreduce|\bmatmul", re.I)),
    (ELEMENTWISE, re.compile(
        r"elementwise|pointwise|Pointwise|relu|sigmoid|tanh|threshold|clamp|activation_fw|op_tensor|eltwise"
        r"|Scale(Bias)?Forward|BiasForward|\b(add|sub|mul|div|sqrt|powx|exp|abs|sign|set|scal|axpy)_(scalar_)?kernel"
        r"|add_scalar_kernel|DropoutForward|Concat|concat|copy|fill|EigenMetaKernel|vectorized_|unrolled_", re.I)),
)


def classify(name: str) -> str:
    """The family of one (demangled) kernel name."""
    for family, pattern in RULES:
        if pattern.search(name):
            return family
    return OTHER


def families() -> tuple[str, ...]:
    return (*dict.fromkeys(f for f, _ in RULES), OTHER)

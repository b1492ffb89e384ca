"""Every layer type of the PyTorch converter against a NumPy transcription of Caffe's forward code."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.convert.torch_layers import NOT_CONVERTIBLE, TORCH_LAYERS  # noqa: E402
from harness.convert.torch_module import build_module  # noqa: E402
from harness.convert.weights import BATCHNORM_SCALE_FACTOR, weight_set  # noqa: E402
from harness.errors import UnsupportedLayer  # noqa: E402
from harness.ir.build import load_graph  # noqa: E402
from harness.layers import known_types  # noqa: E402

FLT_MAX = float(np.finfo(np.float32).max)


def net(layers: str, *shapes: tuple[int, ...]) -> str:
    names = ["data", "data2", "data3"]
    head = "".join(f'input: "{names[i]}"\ninput_shape {{ {" ".join(f"dim: {d}" for d in s)} }}\n'
                   for i, s in enumerate(shapes))
    return head + layers


def run(text: str, *inputs: np.ndarray, weights: dict | None = None, blob: str | None = None) -> np.ndarray:
    graph = load_graph("<test>", text=text)
    w = weight_set(graph, seed=3) if weights is None else weights
    module = build_module(graph, w)
    with torch.inference_mode():
        out = module.run(*(torch.from_numpy(x) for x in inputs), keep=[blob] if blob else [])
    return out[blob or module.outputs[0]].numpy()


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, size=shape).astype(np.float32)


# ---- NumPy references: literal transcriptions of BVLC Caffe's CPU forward loops ---------------------

def ref_pool(x: np.ndarray, k: int, s: int, p: int, method: str, out: int) -> np.ndarray:
    n, c, h, w = x.shape
    y = np.zeros((n, c, out, out), np.float64)
    for ph in range(out):
        for pw in range(out):
            hs, ws = ph * s - p, pw * s - p
            he, we = min(hs + k, h + p), min(ws + k, w + p)
            pool_size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we].astype(np.float64)
            if method == "MAX":
                y[:, :, ph, pw] = window.max(axis=(2, 3)) if window.size else -FLT_MAX
            else:
                y[:, :, ph, pw] = window.sum(axis=(2, 3)) / pool_size
    return y


def caffe_pooled(size: int, k: int, s: int, p: int) -> int:
    out = int(np.ceil((size + 2 * p - k) / s)) + 1
    if p and (out - 1) * s >= size + p:
        out -= 1
    return out


def ref_lrn_across(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    c = x.shape[1]
    pre = (size - 1) // 2
    sq = x.astype(np.float64) ** 2
    scale = np.full_like(sq, k)
    for ch in range(c):
        lo, hi = max(ch - pre, 0), min(ch + size - pre, c)
        scale[:, ch] += alpha / size * sq[:, lo:hi].sum(axis=1)
    return x * scale ** -beta


def ref_lrn_within(x: np.ndarray, size: int, alpha: float, beta: float) -> np.ndarray:
    pad = (size - 1) // 2
    avg = ref_pool(x.astype(np.float64) ** 2, size, 1, pad, "AVE", x.shape[2])
    return x * (1 + alpha * avg) ** -beta  # Caffe's Power layer: shift 1, scale alpha, power -beta


# ---- the table is complete ---------------------------------------------------------------------

def test_every_handler_type_converts_or_says_why_not() -> None:
    missing = [t for t in known_types() if t not in TORCH_LAYERS and t not in NOT_CONVERTIBLE]
    assert missing == []


def test_training_only_layer_is_unsupported_with_its_name() -> None:
    text = net('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "data2" top: "loss" }',
               (2, 5), (2,))
    graph = load_graph("<test>", text=text)
    with pytest.raises(UnsupportedLayer, match="unsupported: loss SoftmaxWithLoss"):
        build_module(graph, {})


# ---- pooling -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "k", "s", "p"), [
    (7, 3, 2, 0),    # ceil adds a window reaching past the input
    (6, 3, 2, 1),    # ceil + pad; last window starts inside
    (5, 2, 2, 1),    # Caffe's clip rule drops the window starting in the padding
    (112, 3, 2, 0),  # GoogLeNet's pool1
    (9, 3, 1, 1),    # symmetric: torch's native path
    (8, 5, 3, 2),    # pad > kernel/2 would be refused by torch's native pooling
    (13, 13, 1, 0),  # global-sized window
    (5, 1, 3, 0),    # ceil adds a window wholly past the input: MAX gives Caffe's -FLT_MAX there
])
@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_pooling_matches_caffe(size: int, k: int, s: int, p: int, method: str) -> None:
    x = rand(2, 3, size, size)
    text = net(f'layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool" '
               f'pooling_param {{ pool: {method} kernel_size: {k} stride: {s} pad: {p} }} }}', x.shape)
    out = caffe_pooled(size, k, s, p)
    y = run(text, x)
    assert y.shape == (2, 3, out, out)
    np.testing.assert_allclose(y, ref_pool(x, k, s, p, method, out), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("size", "k", "s", "p"), [(9, 2, 2, 0), (14, 3, 2, 1), (8, 5, 3, 2), (8, 3, 2, 0)])
@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_pooling_with_a_forks_ceil_mode_false_floors_as_that_fork(size: int, k: int, s: int, p: int,
                                                                  method: str) -> None:
    """``ceil_mode: false`` (Caffe forks): floor((size + 2p - k)/s) + 1 windows, each pooled as Caffe's loops
    pool it (the same loops, fewer windows), as the fork's Caffe and OpenCV do."""
    x = rand(2, 3, size, size)
    text = net(f'layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param {{ pool: {method} '
               f'kernel_size: {k} stride: {s} pad: {p} ceil_mode: false }} }}', x.shape)
    out = (size + 2 * p - k) // s + 1
    assert out < caffe_pooled(size, k, s, p)  # each case differs from BVLC's ceil
    y = run(text, x)
    assert y.shape == (2, 3, out, out)
    np.testing.assert_allclose(y, ref_pool(x, k, s, p, method, out), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("size", "k", "s", "p"), [(8, 3, 2, 0), (6, 3, 2, 1), (8, 5, 3, 2), (5, 1, 3, 0)])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_max_pooling_padding_fits_half_precision(size: int, k: int, s: int, p: int, dtype: str) -> None:
    """Caffe's ceil-mode windows are padded explicitly; -FLT_MAX does not fit fp16/bf16 (it overflowed
    under autocast). MAX is exact in any dtype, so the half result is the fp32 result of the same
    (rounded) input, except that a window wholly in the padding gives the dtype's lowest value where
    fp32 gives Caffe's -FLT_MAX."""
    half_dtype = getattr(torch, dtype)
    x = torch.from_numpy(rand(2, 3, size, size)).to(half_dtype)
    graph = load_graph("<test>", text=net(f'layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool" '
                                          f'pooling_param {{ pool: MAX kernel_size: {k} stride: {s} pad: {p} }} }}',
                                          tuple(x.shape)))
    module = build_module(graph, {})
    with torch.inference_mode():
        y, ref = module(x), module(x.float())
    assert y.dtype == half_dtype and not module.layer_modules[0].native
    expected = torch.where(ref == -FLT_MAX, torch.finfo(half_dtype).min, ref)
    assert torch.equal(y.float(), expected)
    assert torch.isfinite(y).all()


def test_pooling_ave_divisor_counts_padding_clipped_to_input_plus_pad() -> None:
    x = np.ones((1, 1, 5, 5), np.float32)  # windows: interior 1, borders (k*k - padded cells)/k*k ...
    text = net('layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" '
               'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }', x.shape)
    y = run(text, x)[0, 0]
    # Caffe: corner window covers 2x2 real cells over a 3x3 area -> 4/9; the last window (start 3,
    # end min(6, 5+1)=6) is 3 wide, 2 of them real -> also /9.
    assert y[0, 0] == pytest.approx(4 / 9)
    assert y[1, 1] == pytest.approx(1.0)
    assert y[2, 2] == pytest.approx(4 / 9)


def test_global_pooling() -> None:
    x = rand(2, 4, 6, 5)
    text = net('layer { name: "gp" type: "Pooling" bottom: "data" top: "gp" '
               'pooling_param { pool: AVE global_pooling: true } }', x.shape)
    np.testing.assert_allclose(run(text, x)[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-5)


# ---- LRN -------------------------------------------------------------------------------------------

def test_lrn_across_channels_with_k() -> None:
    x = rand(2, 7, 4, 4)
    text = net('layer { name: "n" type: "LRN" bottom: "data" top: "n" '
               'lrn_param { local_size: 5 alpha: 0.3 beta: 0.75 k: 2.0 } }', x.shape)
    np.testing.assert_allclose(run(text, x), ref_lrn_across(x, 5, 0.3, 0.75, 2.0), rtol=1e-5, atol=1e-6)


def test_lrn_within_channel_ignores_k() -> None:
    x = rand(2, 3, 6, 6)
    text = net('layer { name: "n" type: "LRN" bottom: "data" top: "n" '
               'lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 7.0 norm_region: WITHIN_CHANNEL } }', x.shape)
    np.testing.assert_allclose(run(text, x), ref_lrn_within(x, 3, 0.5, 0.75), rtol=1e-5, atol=1e-6)


# ---- normalisation --------------------------------------------------------------------------------

def test_batchnorm_divides_statistics_by_the_scale_factor() -> None:
    x = rand(2, 4, 3, 3)
    mean, var = np.array([0.1, -0.2, 0.3, 0.0]), np.array([0.5, 1.5, 2.0, 1.0])
    factor = 250.0
    weights = {"bn": [(mean * factor).astype(np.float32), (var * factor).astype(np.float32),
                      np.array([factor], np.float32)]}
    text = net('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "data" '
               'batch_norm_param { eps: 0.001 } }', x.shape)
    expect = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 0.001)
    np.testing.assert_allclose(run(text, x, weights=weights, blob="data"), expect, rtol=1e-5, atol=1e-6)


def test_batchnorm_zero_factor_gives_zero_statistics() -> None:
    x = rand(1, 2, 2, 2)
    weights = {"bn": [np.ones(2, np.float32), np.ones(2, np.float32), np.zeros(1, np.float32)]}
    text = net('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "y" }', x.shape)
    np.testing.assert_allclose(run(text, x, weights=weights), x / np.sqrt(1e-5), rtol=1e-5)


def test_batchnorm_without_global_stats_uses_the_batch() -> None:
    x = rand(3, 2, 4, 4)
    text = net('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "y" '
               'batch_norm_param { use_global_stats: false } }', x.shape)
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(run(text, x), (x - mu) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)


def test_weight_set_batchnorm_factor_is_exercised() -> None:
    text = net('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "y" }', (1, 3, 2, 2))
    blobs = weight_set(load_graph("<t>", text=text))["bn"]
    assert blobs[2][0] == pytest.approx(BATCHNORM_SCALE_FACTOR)
    assert (blobs[1] > 0).all()


@pytest.mark.parametrize(("axis", "num_axes", "bias"), [(1, 1, True), (1, 2, False), (2, 1, True), (0, -1, True)])
def test_scale_broadcast(axis: int, num_axes: int, bias: bool) -> None:
    x = rand(2, 3, 4, 5)
    text = net(f'layer {{ name: "sc" type: "Scale" bottom: "data" top: "y" scale_param {{ axis: {axis} '
               f'num_axes: {num_axes} bias_term: {str(bias).lower()} }} }}', x.shape)
    graph = load_graph("<t>", text=text)
    w = weight_set(graph, seed=1)  # the graph's batch is 2: axis 0 blobs have 2 values
    shape = x.shape[axis:] if num_axes == -1 else x.shape[axis:axis + num_axes]
    full = (1,) * axis + shape + (1,) * (4 - axis - len(shape))
    expect = x * w["sc"][0].reshape(full) + (w["sc"][1].reshape(full) if bias else 0)
    np.testing.assert_allclose(run(text, x, weights=w), expect, rtol=1e-6)


def test_scale_and_bias_with_two_bottoms() -> None:
    x, g = rand(2, 3, 4, 4), rand(2, 3, seed=1)
    text = net('layer { name: "sc" type: "Scale" bottom: "data" bottom: "data2" top: "y" '
               'scale_param { axis: 0 } }\n'
               'layer { name: "b" type: "Bias" bottom: "y" bottom: "data2" top: "z" bias_param { axis: 0 } }',
               x.shape, g.shape)
    expect = x * g[:, :, None, None] + g[:, :, None, None]
    np.testing.assert_allclose(run(text, x, g), expect, rtol=1e-6)


def test_bias_layer() -> None:
    x = rand(2, 3, 2, 2)
    text = net('layer { name: "b" type: "Bias" bottom: "data" top: "y" }', x.shape)
    graph = load_graph("<t>", text=text)
    w = weight_set(graph)
    np.testing.assert_allclose(run(text, x, weights=w), x + w["b"][0][:, None, None], rtol=1e-6)


@pytest.mark.parametrize("across", [True, False])
@pytest.mark.parametrize("shared", [True, False])
def test_normalize(across: bool, shared: bool) -> None:
    x = rand(2, 3, 4, 4)
    text = net(f'layer {{ name: "n" type: "Normalize" bottom: "data" top: "y" norm_param {{ '
               f'across_spatial: {str(across).lower()} channel_shared: {str(shared).lower()} }} }}', x.shape)
    w = weight_set(load_graph("<t>", text=text))
    axes = (1, 2, 3) if across else (1,)
    norm = np.sqrt((x.astype(np.float64) ** 2).sum(axis=axes, keepdims=True) + 1e-10)
    scale = w["n"][0].reshape((1, -1, 1, 1) if not shared else (1, 1, 1, 1))
    np.testing.assert_allclose(run(text, x, weights=w), x / norm * scale, rtol=1e-5)


# ---- convolution and fully connected ------------------------------------------------------------------

def ref_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int], pad: tuple[int, int],
             dil: tuple[int, int], group: int) -> np.ndarray:
    n, _c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - (dil[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (dil[1] * (kw - 1) + 1)) // stride[1] + 1
    y = np.zeros((n, o, oh, ow))
    og = o // group
    for oc in range(o):
        g = oc // og
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, i * dil[0]:i * dil[0] + stride[0] * oh:stride[0],
                           j * dil[1]:j * dil[1] + stride[1] * ow:stride[1]]
                y[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, i, j])
        if b is not None:
            y[:, oc] += b[oc]
    return y


def test_convolution_group_dilation_per_axis() -> None:
    x = rand(2, 4, 9, 8)
    text = net('layer { name: "c" type: "Convolution" bottom: "data" top: "y" convolution_param { '
               'num_output: 6 group: 2 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 2 '
               'dilation: 2 } }', x.shape)
    w = weight_set(load_graph("<t>", text=text))
    expect = ref_conv(x, w["c"][0], w["c"][1], (2, 1), (1, 2), (2, 2), 2)
    np.testing.assert_allclose(run(text, x, weights=w), expect, rtol=1e-4, atol=1e-5)


def test_depthwise_convolution_without_bias() -> None:
    x = rand(1, 5, 7, 7)
    text = net('layer { name: "c" type: "Convolution" bottom: "data" top: "y" convolution_param { '
               'num_output: 5 group: 5 kernel_size: 3 stride: 2 pad: 1 bias_term: false } }', x.shape)
    w = weight_set(load_graph("<t>", text=text))
    assert len(w["c"]) == 1
    expect = ref_conv(x, w["c"][0], None, (2, 2), (1, 1), (1, 1), 5)
    np.testing.assert_allclose(run(text, x, weights=w), expect, rtol=1e-4, atol=1e-5)


def test_deconvolution() -> None:
    x = rand(1, 4, 3, 3)
    text = net('layer { name: "d" type: "Deconvolution" bottom: "data" top: "y" convolution_param { '
               'num_output: 4 group: 2 kernel_size: 3 stride: 2 pad: 1 } }', x.shape)
    w = weight_set(load_graph("<t>", text=text))
    weight, bias = w["d"]  # Caffe: (in, out/group, k, k)
    y = np.zeros((1, 4, 2 * 2 + 3, 2 * 2 + 3))  # before cropping the padding
    for ic in range(4):
        g = ic // 2
        for oc in range(2):
            for i in range(3):
                for j in range(3):
                    y[0, g * 2 + oc, i:i + 5:2, j:j + 5:2] += x[0, ic] * weight[ic, oc, i, j]
    expect = y[:, :, 1:-1, 1:-1] + bias[None, :, None, None]
    np.testing.assert_allclose(run(text, x, weights=w), expect, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("transpose", [False, True])
def test_inner_product_axis_and_transpose(transpose: bool) -> None:
    x = rand(2, 3, 4, 5)
    text = net(f'layer {{ name: "fc" type: "InnerProduct" bottom: "data" top: "y" inner_product_param {{ '
               f'num_output: 6 axis: 2 transpose: {str(transpose).lower()} }} }}', x.shape)
    w = weight_set(load_graph("<t>", text=text))
    weight = w["fc"][0].T if transpose else w["fc"][0]
    expect = x.reshape(2, 3, 20) @ weight.T + w["fc"][1]
    y = run(text, x, weights=w)
    assert y.shape == (2, 3, 6)
    np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-5)


# ---- activations ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("layer", "fn"), [
    ('type: "ReLU"', lambda x: np.maximum(x, 0)),
    ('type: "ReLU" relu_param { negative_slope: 0.1 }', lambda x: np.maximum(x, 0) + 0.1 * np.minimum(x, 0)),
    ('type: "ELU" elu_param { alpha: 0.5 }', lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    ('type: "Sigmoid"', lambda x: 1 / (1 + np.exp(-x))),
    ('type: "TanH"', np.tanh),
    ('type: "Power" power_param { power: 2 scale: 0.5 shift: 3 }', lambda x: (0.5 * x + 3) ** 2),
    ('type: "Power" power_param { scale: -2 shift: 1 }', lambda x: -2 * x + 1),
    ('type: "Dropout" dropout_param { dropout_ratio: 0.5 }', lambda x: x),
    ('type: "Softmax" softmax_param { axis: 2 }', lambda x: np.exp(x) / np.exp(x).sum(axis=2, keepdims=True)),
])
def test_elementwise_activations(layer: str, fn) -> None:
    x = rand(2, 3, 4, 4)
    text = net(f'layer {{ name: "a" {layer} bottom: "data" top: "y" }}', x.shape)
    np.testing.assert_allclose(run(text, x), fn(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_relu6_caps_at_six() -> None:
    x = rand(2, 3, 4, 4) * 5  # both sides of 0 and of 6
    text = net('layer { name: "a" type: "ReLU6" bottom: "data" top: "y" }', x.shape)
    np.testing.assert_array_equal(run(text, x), np.clip(x, 0, 6))


@pytest.mark.parametrize("shared", [False, True])
def test_prelu(shared: bool) -> None:
    x = rand(2, 3, 4, 4)
    text = net(f'layer {{ name: "p" type: "PReLU" bottom: "data" top: "y" '
               f'prelu_param {{ channel_shared: {str(shared).lower()} }} }}', x.shape)
    w = weight_set(load_graph("<t>", text=text))
    a = w["p"][0].reshape((1, -1, 1, 1))
    np.testing.assert_allclose(run(text, x, weights=w), np.maximum(x, 0) + a * np.minimum(x, 0), rtol=1e-6)


# ---- structure ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("param", "fn"), [
    ("operation: SUM coeff: 0.5 coeff: -2 coeff: 3", lambda a, b, c: 0.5 * a - 2 * b + 3 * c),
    ("operation: SUM", lambda a, b, c: a + b + c),
    ("operation: PROD", lambda a, b, c: a * b * c),
    ("operation: MAX", lambda a, b, c: np.maximum(np.maximum(a, b), c)),
])
def test_eltwise(param: str, fn) -> None:
    xs = [rand(2, 3, 2, 2, seed=i) for i in range(3)]
    text = net(f'layer {{ name: "e" type: "Eltwise" bottom: "data" bottom: "data2" bottom: "data3" top: "y" '
               f'eltwise_param {{ {param} }} }}', *(x.shape for x in xs))
    np.testing.assert_allclose(run(text, *xs), fn(*xs), rtol=1e-6)


def test_slice_concat_split_flatten_reshape() -> None:
    x = rand(2, 6, 3, 4)
    text = net('layer { name: "s" type: "Slice" bottom: "data" top: "a" top: "b" top: "c" '
               'slice_param { axis: 1 slice_point: 1 slice_point: 4 } }\n'
               'layer { name: "sp" type: "Split" bottom: "c" top: "c1" top: "c2" }\n'
               'layer { name: "cat" type: "Concat" bottom: "c1" bottom: "a" bottom: "c2" top: "cat" }\n'
               'layer { name: "f" type: "Flatten" bottom: "cat" top: "f" flatten_param { axis: 2 } }\n'
               'layer { name: "r" type: "Reshape" bottom: "f" top: "r" '
               'reshape_param { shape { dim: 0 dim: -1 dim: 2 } } }', x.shape)
    a, c = x[:, :1], x[:, 4:]
    cat = np.concatenate([c, a, c], axis=1)
    expect = cat.reshape(2, 5, 12).reshape(2, 30, 2)
    np.testing.assert_array_equal(run(text, x), expect)
    np.testing.assert_array_equal(run(text, x, blob="b"), x[:, 1:4])


@pytest.mark.parametrize(("order", "axes"), [("0 3 1 2", (0, 3, 1, 2)), ("0 2", (0, 2, 1, 3))])
def test_permute_follows_ssds_order(order: str, axes: tuple[int, ...]) -> None:
    """SSD's Permute: the axes in ``order``, the ones it leaves out after them in their order."""
    x = rand(2, 3, 4, 5)
    given = " ".join(f"order: {a}" for a in order.split())
    text = net(f'layer {{ name: "p" type: "Permute" bottom: "data" top: "y" permute_param {{ {given} }} }}', x.shape)
    np.testing.assert_array_equal(run(text, x), np.transpose(x, axes))


def test_crop() -> None:
    x, ref = rand(2, 3, 8, 9), rand(1, 1, 5, 4)
    text = net('layer { name: "cr" type: "Crop" bottom: "data" bottom: "data2" top: "y" '
               'crop_param { axis: 2 offset: 2 offset: 3 } }', x.shape, ref.shape)
    np.testing.assert_array_equal(run(text, x, ref), x[:, :, 2:7, 3:7])


@pytest.mark.parametrize("out_max_val", [False, True])
def test_argmax_without_axis(out_max_val: bool) -> None:
    x = rand(2, 10)
    text = net(f'layer {{ name: "am" type: "ArgMax" bottom: "data" top: "y" '
               f'argmax_param {{ top_k: 3 out_max_val: {str(out_max_val).lower()} }} }}', x.shape)
    order = np.argsort(-x, axis=1)[:, :3]
    parts = [order.astype(np.float32)] + ([np.take_along_axis(x, order, 1)] if out_max_val else [])
    expect = np.stack(parts, axis=1)  # (N, 1 or 2, top_k): Caffe pads with 1s only up to the bottom's 2 axes + 1
    np.testing.assert_array_equal(run(text, x), expect)


def test_argmax_with_axis() -> None:
    x = rand(2, 5, 3)
    text = net('layer { name: "am" type: "ArgMax" bottom: "data" top: "y" argmax_param { axis: 1 } }', x.shape)
    np.testing.assert_array_equal(run(text, x), np.argmax(x, axis=1)[:, None, :].astype(np.float32))


def test_blobs_are_released_but_requested_ones_kept() -> None:
    x = rand(1, 2, 3, 3)
    text = net('layer { name: "r" type: "ReLU" bottom: "data" top: "a" }\n'
               'layer { name: "t" type: "TanH" bottom: "a" top: "b" }\n'
               'layer { name: "r2" type: "ReLU" bottom: "b" top: "b" }', x.shape)
    graph = load_graph("<t>", text=text)
    module = build_module(graph, {})
    assert module.release == [["data"], ["a"], []]  # the input too, after its last reader
    with torch.inference_mode():
        out = module.run(torch.from_numpy(x), keep=["a"])
    np.testing.assert_array_equal(out["a"].numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(out["b"].numpy(), np.maximum(np.tanh(np.maximum(x, 0)), 0), rtol=1e-6)

"""SqueezeNet v1.0 and v1.1 (DeepScale/SqueezeNet ``SqueezeNet_v1.x/deploy.prototxt``).

A fire module is a 1x1 squeeze convolution feeding a 1x1 and a 3x3 expand convolution, concatenated.
v1.1 moves the pooling layers earlier and uses a 3x3/64 first convolution instead of 7x7/96.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.zoo.writer import AVE, MAX, InputStyle, NetWriter


def fire(w: NetWriter, index: int, bottom: str, squeeze: int, expand: int) -> str:
    p = f"fire{index}/"
    s = w.relu(p + "relu_squeeze1x1", w.conv(p + "squeeze1x1", bottom, num_output=squeeze, kernel_size=1))
    e1 = w.relu(p + "relu_expand1x1", w.conv(p + "expand1x1", s, num_output=expand, kernel_size=1))
    e3 = w.relu(p + "relu_expand3x3", w.conv(p + "expand3x3", s, num_output=expand, pad=1, kernel_size=3))
    return w.concat(p + "concat", [e1, e3])


def _build(name: str, shape: Sequence[int], header: Sequence[str], input_style: InputStyle,
           conv1: dict[str, int], pool_after: tuple[int, ...], conv10_pad: dict[str, int]) -> str:
    w = NetWriter(name, header)
    x = w.input("data", shape, input_style)
    x = w.relu("relu_conv1", w.conv("conv1", x, **conv1))
    x = w.pool("pool1", x, pool=MAX, kernel_size=3, stride=2)
    # fire2..fire9: squeeze widths 16, 16, 32, 32, 48, 48, 64, 64; expand = 4 x squeeze.
    for index, squeeze in zip(range(2, 10), (16, 16, 32, 32, 48, 48, 64, 64), strict=True):
        x = fire(w, index, x, squeeze, 4 * squeeze)
        if index in pool_after:
            x = w.pool(f"pool{index}", x, pool=MAX, kernel_size=3, stride=2)
    x = w.dropout("drop9", x, 0.5)
    x = w.relu("relu_conv10", w.conv("conv10", x, num_output=1000, **conv10_pad, kernel_size=1))
    x = w.pool("pool10", x, pool=AVE, global_pooling=True)
    w.softmax("prob", x)
    return w.text()


def build_v10(name: str, shape: Sequence[int], header: Sequence[str]) -> str:
    # conv10's ``pad: 1`` (with a 1x1 kernel, so a 15x15 instead of 13x13 map) is in the original deploy file.
    return _build(name, shape, header, "input_shape", {"num_output": 96, "kernel_size": 7, "stride": 2},
                  (4, 8), {"pad": 1})


def build_v11(name: str, shape: Sequence[int], header: Sequence[str]) -> str:
    return _build(name, shape, header, "layer", {"num_output": 64, "kernel_size": 3, "stride": 2}, (3, 5), {})

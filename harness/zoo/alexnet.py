"""AlexNet, as BVLC's ``models/bvlc_alexnet/deploy.prototxt`` (two-tower convolutions as ``group: 2``)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.zoo.writer import MAX, NetWriter

LRN = {"local_size": 5, "alpha": 0.0001, "beta": 0.75}


def build(name: str, shape: Sequence[int], header: Sequence[str]) -> str:
    w = NetWriter(name, header)
    x = w.input("data", shape)
    # (layer number, num_output, further convolution_param, LRN after it, max-pool after it)
    convs = [(1, 96, {"kernel_size": 11, "stride": 4}, True, True),
             (2, 256, {"pad": 2, "kernel_size": 5, "group": 2}, True, True),
             (3, 384, {"pad": 1, "kernel_size": 3}, False, False),
             (4, 384, {"pad": 1, "kernel_size": 3, "group": 2}, False, False),
             (5, 256, {"pad": 1, "kernel_size": 3, "group": 2}, False, True)]
    for i, num_output, extra, lrn, pool in convs:
        x = w.relu(f"relu{i}", w.conv(f"conv{i}", x, num_output=num_output, **extra))
        if lrn:
            x = w.lrn(f"norm{i}", x, **LRN)
        if pool:
            x = w.pool(f"pool{i}", x, pool=MAX, kernel_size=3, stride=2)
    for i in (6, 7):
        x = w.relu(f"relu{i}", w.inner_product(f"fc{i}", x, num_output=4096))
        x = w.dropout(f"drop{i}", x, 0.5)
    w.softmax("prob", w.inner_product("fc8", x, num_output=1000))
    return w.text()

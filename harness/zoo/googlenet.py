"""GoogLeNet (BVLC ``models/bvlc_googlenet/deploy.prototxt``), nine inception modules.

A module: a 1x1 branch, 1x1-reduce -> 3x3, 1x1-reduce -> 5x5, and 3x3 max-pool -> 1x1 projection, each
convolution followed by a ReLU, concatenated in that order.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.zoo.writer import AVE, MAX, NetWriter

LRN = {"local_size": 5, "alpha": 0.0001, "beta": 0.75}
# module: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection); a stride-2 max-pool follows 3b and 4e.
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
POOL_AFTER = {"3b": "pool3/3x3_s2", "4e": "pool4/3x3_s2"}


def conv_relu(w: NetWriter, prefix: str, kind: str, bottom: str, num_output: int, kernel: int = 1,
              **extra: int) -> str:
    pad = {"pad": kernel // 2} if kernel > 1 else {}
    x = w.conv(f"{prefix}/{kind}", bottom, num_output=num_output, **pad, kernel_size=kernel, **extra)
    return w.relu(f"{prefix}/relu_{kind}", x)


def inception(w: NetWriter, module: str, bottom: str) -> str:
    n1, r3, n3, r5, n5, proj = MODULES[module]
    p = f"inception_{module}"
    a = conv_relu(w, p, "1x1", bottom, n1)
    b = conv_relu(w, p, "3x3", conv_relu(w, p, "3x3_reduce", bottom, r3), n3, 3)
    c = conv_relu(w, p, "5x5", conv_relu(w, p, "5x5_reduce", bottom, r5), n5, 5)
    d = conv_relu(w, p, "pool_proj", w.pool(f"{p}/pool", bottom, pool=MAX, kernel_size=3, stride=1, pad=1), proj)
    return w.concat(f"{p}/output", [a, b, c, d])


def build(name: str, shape: Sequence[int], header: Sequence[str]) -> str:
    w = NetWriter(name, header)
    x = w.input("data", shape)
    x = w.relu("conv1/relu_7x7", w.conv("conv1/7x7_s2", x, num_output=64, pad=3, kernel_size=7, stride=2))
    x = w.lrn("pool1/norm1", w.pool("pool1/3x3_s2", x, pool=MAX, kernel_size=3, stride=2), **LRN)
    x = conv_relu(w, "conv2", "3x3", conv_relu(w, "conv2", "3x3_reduce", x, 64), 192, 3)
    x = w.pool("pool2/3x3_s2", w.lrn("conv2/norm2", x, **LRN), pool=MAX, kernel_size=3, stride=2)
    for module in MODULES:
        x = inception(w, module, x)
        if module in POOL_AFTER:
            x = w.pool(POOL_AFTER[module], x, pool=MAX, kernel_size=3, stride=2)
    x = w.dropout("pool5/drop_7x7_s1", w.pool("pool5/7x7_s1", x, pool=AVE, kernel_size=7, stride=1), 0.4)
    w.softmax("prob", w.inner_product("loss3/classifier", x, num_output=1000))
    return w.text()

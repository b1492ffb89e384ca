"""Inception-V2 at 231x231 (soeaver/caffe-model ``cls/inception/deploy_inception-v2.prototxt``).

A grouped 7x7 stem (``group: 3``, no BatchNorm) and a 1x1 "increase" convolution, a 1x1 -> 3x3 stage, then
inception modules A1-A2, a reduction, B1-B4, a reduction, C1-C2. An inception module: 1x1; 1x1 -> 3x3 (a);
1x1 -> 3x3 -> 3x3 (b, the factorised 5x5); 3x3 average pool -> 1x1 projection; a reduction module has the
(a) and (b) branches with stride 2 and a stride-2 max pool. Every convolution after the stem is followed by
BatchNorm, Scale and ReLU in place; the stem's 1x1 has a bias and only a ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.zoo.writer import AVE, MAX, NetWriter

# module: (1x1, (3x3 a reduce, 3x3 a), (3x3 b reduce, 3x3 b), pool projection)
INCEPTION = {
    "a1": (64, (64, 64), (64, 96), 32), "a2": (64, (64, 96), (64, 96), 64),
    "b1": (224, (64, 96), (96, 128), 128), "b2": (192, (96, 128), (96, 128), 128),
    "b3": (160, (128, 160), (128, 160), 96), "b4": (96, (128, 192), (160, 192), 96),
    "c1": (352, (192, 320), (160, 224), 128), "c2": (352, (192, 320), (192, 224), 128),
}
# reduction module: ((3x3 a reduce, 3x3 a), (3x3 b reduce, 3x3 b)); it follows the last module of its letter.
REDUCTION = {"a": ((128, 160), (64, 96)), "b": ((128, 192), (192, 256))}


def conv_bn(w: NetWriter, name: str, bottom: str, num_output: int, kernel: int = 1, stride: int = 1,
            relu: str | None = None) -> str:
    x = w.conv(name, bottom, bias_term=False, num_output=num_output, pad=kernel // 2, kernel_size=kernel,
               stride=stride)
    w.batch_norm(f"{name}_bn", x, use_global_stats=True, eps=0.001)
    w.scale(f"{name}_scale", x, bias_term=True)
    return w.relu(relu or f"{name}_relu", x)


def branches(w: NetWriter, p: str, bottom: str, a: tuple[int, int], b: tuple[int, int], stride: int) -> list[str]:
    """The 1x1 -> 3x3 (a) and 1x1 -> 3x3 -> 3x3 (b) branches; ``stride`` on their last convolution."""
    ya = conv_bn(w, f"{p}_3x3_a", conv_bn(w, f"{p}_3x3_a_reduce", bottom, a[0]), a[1], 3, stride)
    yb = conv_bn(w, f"{p}_3x3_b1", conv_bn(w, f"{p}_3x3_b_reduce", bottom, b[0]), b[1], 3)
    return [ya, conv_bn(w, f"{p}_3x3_b2", yb, b[1], 3, stride)]


def inception(w: NetWriter, module: str, bottom: str) -> str:
    n1, a, b, proj = INCEPTION[module]
    p = f"inception_{module}"
    one = conv_bn(w, f"{p}_1x1", bottom, n1)
    ya, yb = branches(w, p, bottom, a, b, 1)
    pooled = w.pool(f"{p}_pool", bottom, pool=AVE, kernel_size=3, stride=1, pad=1)
    return w.concat(f"{p}_output", [one, ya, yb, conv_bn(w, f"{p}_pool_proj", pooled, proj)])


def reduction(w: NetWriter, letter: str, bottom: str) -> str:
    p = f"reduction_{letter}"
    ya, yb = branches(w, p, bottom, *REDUCTION[letter], 2)
    pooled = w.pool(f"{p}_pool", bottom, pool=MAX, pad=1, kernel_size=3, stride=2)
    return w.concat(f"{p}_concat", [ya, yb, pooled])


def build(name: str, shape: Sequence[int], header: Sequence[str]) -> str:
    w = NetWriter(name, header)
    x = w.input("data", shape, "input_shape")
    x = w.conv("conv1_7x7", x, bias_term=False, num_output=24, pad=3, kernel_size=7, stride=2, group=3)
    x = w.conv("conv1_7x7_increase", x, bias_term=True, num_output=64, pad=0, kernel_size=1, stride=1)
    x = w.pool("pool1_3x3_s2", w.relu("conv1_7x7_increase_relu", x), pool=MAX, kernel_size=3, stride=2)
    x = conv_bn(w, "conv2_3x3_reduce", x, 64)
    x = conv_bn(w, "conv2_3x3", x, 192, 3, relu="conv2_3x3relu")  # sic: no underscore in the original
    x = w.pool("pool2_3x3_s2", x, pool=MAX, kernel_size=3, stride=2)
    for module in INCEPTION:
        x = inception(w, module, x)
        letter = module[0]
        if letter in REDUCTION and module == max(m for m in INCEPTION if m[0] == letter):
            x = reduction(w, letter, x)
    x = w.dropout("pool_7x7_s1_drop", w.pool("pool_7x7_s1", x, pool=AVE, global_pooling=True), 0.2)
    w.softmax("prob", w.inner_product("classifier", x, num_output=1000))
    return w.text()

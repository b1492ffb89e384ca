"""SqueezeNext-23 (amirgholami/SqueezeNext ``<variant>/train_val.prototxt``), as deploy files.

The five variants share one block and differ in three knobs:

- width multiplier 1.0 or 2.0 (stage widths 32/64/128/256 times it; the stem and the last 1x1 stay 64 and 128),
- groups: ``1.0-G-SqNxt-23`` runs the first 1x1 and the two separable convolutions with ``group: 2``,
- block distribution over the four stages: [6, 6, 8, 1], or [2, 4, 14, 1] in the v5 variants, which also use a
  5x5 stem and put the first block's projection convolution in series with the block (its output feeds the
  block's first 1x1) rather than beside it.

A block: 1x1 (C/2, carries the stage stride) -> 1x1 (C/4) -> 3x1 (C/2) -> 1x3 (C/2) -> 1x1 (C), added to the
shortcut; every convolution is followed by BatchNorm, Scale and ReLU, and the sum by a ReLU. The separable pair
alternates 3x1-then-1x3 and 1x3-then-3x1 from one block to the next. Layer names are those that Caffe's
NetSpec gave the original (``Convolution<n>``, ``BatchNorm<n>``, ``ReLU<n>`` ... with a few ReLUs named by hand).

Deploy conversion: the two ``Data`` layers (TRAIN/TEST) become one ``Input`` layer ``data``; the loss and the
four ``Accuracy`` layers (and with them the ``label`` blob) are dropped and a ``Softmax`` ``prob`` is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.zoo.writer import AVE, MAX, SUM, NetWriter, Value

STAGE_WIDTHS = (32, 64, 128, 256)
# The hand-named ReLUs after each stage's last sum (the same names in all five originals).
STAGE_RELU_NAMES = ("bypass_128_3", "bypass_256_3", "bypass_512_6", "bypass_1024_3")


@dataclass(frozen=True)
class Variant:
    width: float
    groups: int
    blocks: tuple[int, int, int, int]
    stem_kernel: int
    serial_projection: bool  # v5: the projection feeds the block instead of running beside it
    dilation_on_square: bool  # the originals write ``dilation: 1`` on every conv, the v5 ones only on 3x1/1x3


VARIANTS = {
    "1.0-SqNxt-23": Variant(1.0, 1, (6, 6, 8, 1), 7, False, True),
    "1.0-G-SqNxt-23": Variant(1.0, 2, (6, 6, 8, 1), 7, False, True),
    "2.0-SqNxt-23": Variant(2.0, 1, (6, 6, 8, 1), 7, False, True),
    "1.0-SqNxt-23v5": Variant(1.0, 1, (2, 4, 14, 1), 5, True, False),
    "2.0-SqNxt-23v5": Variant(2.0, 1, (2, 4, 14, 1), 5, True, False),
}


class _Builder:
    """Numbers the layers as NetSpec did: one counter per type, hand-named ReLUs not counted."""

    def __init__(self, w: NetWriter, variant: Variant) -> None:
        self.w, self.v = w, variant
        self.convs = self.relus = self.sums = 0

    def relu(self, blob: str, name: str | None = None) -> str:
        if name is None:
            self.relus += 1
            name = f"ReLU{self.relus}"
        return self.w.relu(name, blob)

    def conv(self, bottom: str, num_output: int, kernel: tuple[int, int] = (1, 1), stride: int = 1,
             group: int = 1, relu_name: str | None = None) -> str:
        """Convolution + BatchNorm + Scale + ReLU, all in place on ``Convolution<n>``."""
        self.convs += 1
        n = self.convs
        kh, kw = kernel
        param: dict[str, Value] = {"num_output": num_output, "bias_term": False}
        if kh == kw:
            # The square ones are the unpadded stem and 1x1s.
            param |= {"pad": 0, "kernel_size": kh, "group": group, "stride": stride}
            if self.v.dilation_on_square:
                param["dilation"] = 1
        else:
            param |= {"group": group, "stride": stride, "pad_h": (kh - 1) // 2, "pad_w": (kw - 1) // 2,
                      "kernel_h": kh, "kernel_w": kw, "dilation": 1}
        x = self.w.conv(f"Convolution{n}", bottom, **param)
        self.w.batch_norm(f"BatchNorm{n}", x)
        self.w.scale(f"Scale{n}", x, bias_term=True)
        return self.relu(x, relu_name)

    def block(self, bottom: str, channels: int, stride: int, first: bool, index: int,
              relu_name: str | None) -> str:
        g = self.v.groups
        shortcut = main = bottom
        main_stride = stride
        if first:
            shortcut = self.conv(bottom, channels, stride=stride)
            if self.v.serial_projection:
                main, main_stride = shortcut, 1
        x = self.conv(main, channels // 2, stride=main_stride, group=g)
        x = self.conv(x, channels // 4)
        for kernel in ((3, 1), (1, 3)) if index % 2 == 0 else ((1, 3), (3, 1)):
            x = self.conv(x, channels // 2, kernel, group=g)
        x = self.conv(x, channels)
        self.sums += 1
        total = self.w.eltwise(f"Eltwise{self.sums}", [shortcut, x], operation=SUM)
        return self.relu(total, relu_name)


def build(name: str, shape: Sequence[int], header: Sequence[str]) -> str:
    variant = VARIANTS[name]
    w = NetWriter(name, header)
    b = _Builder(w, variant)
    x = b.conv(w.input("data", shape), 64, (variant.stem_kernel,) * 2, stride=2, relu_name="conv1")
    x = w.pool("pool1", x, pool=MAX, kernel_size=3, stride=2)
    index = 0
    for stage, (count, width) in enumerate(zip(variant.blocks, STAGE_WIDTHS, strict=True)):
        for i in range(count):
            last = i == count - 1
            x = b.block(x, int(width * variant.width), 2 if stage and i == 0 else 1, i == 0, index,
                        STAGE_RELU_NAMES[stage] if last else None)
            index += 1
    x = b.conv(x, 128, relu_name="conv_128")
    x = w.pool("pool5", x, pool=AVE, global_pooling=True)
    w.softmax("prob", w.inner_product("fc1000", x, num_output=1000, bias_term=False))
    return w.text()

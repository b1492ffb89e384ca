"""DenseNet-121 (shicai/DenseNet-Caffe ``DenseNet_121.prototxt``).

Four dense blocks of 6, 12, 24 and 16 layers (growth rate 32); a layer is BN-Scale-ReLU-1x1 (128) then
BN-Scale-ReLU-3x3 (32), its output concatenated to the block's running feature map. Between blocks a
transition halves the channels (BN-Scale-ReLU-1x1) and the resolution (2x2 average pooling). Pre-activation
order: the BatchNorm writes a new blob (``<conv>/bn``) that Scale and ReLU then update in place.

The original's ``ceil_mode: false`` on pool1 (a field of a Caffe fork, not of BVLC) is dropped: BVLC Caffe
pools with ceil, which is also what Netscope assumed when it counted the paper's Table II. The original
file ends at the ``fc6`` scores without a Softmax; so does this one.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.zoo.writer import AVE, MAX, NetWriter, Value

BLOCK_LAYERS = (6, 12, 24, 16)
GROWTH = 32
BOTTLENECK = 4 * GROWTH


def bn_scale_relu(w: NetWriter, prefix: str, relu: str, bottom: str) -> str:
    x = w.batch_norm(f"{prefix}/bn", bottom, f"{prefix}/bn", eps=1e-5)
    w.scale(f"{prefix}/scale", x, bias_term=True)
    return w.relu(relu, x)


def bn_relu_conv(w: NetWriter, conv: str, relu: str, bottom: str, num_output: int, **param: Value) -> str:
    x = bn_scale_relu(w, conv, relu, bottom)
    return w.conv(conv, x, num_output=num_output, bias_term=False, **param)


def build(name: str, shape: Sequence[int], header: Sequence[str]) -> str:
    w = NetWriter(name, header)
    x = w.input("data", shape, "input_dim")
    x = w.conv("conv1", x, num_output=64, bias_term=False, pad=3, kernel_size=7, stride=2)
    x = bn_scale_relu(w, "conv1", "relu1", x)
    x = w.pool("pool1", x, pool=MAX, kernel_size=3, stride=2, pad=1)
    channels = 64
    for stage, layers in enumerate(BLOCK_LAYERS, start=2):
        for i in range(1, layers + 1):
            p = f"{stage}_{i}"
            y = bn_relu_conv(w, f"conv{p}/x1", f"relu{p}/x1", x, num_output=BOTTLENECK, kernel_size=1)
            y = bn_relu_conv(w, f"conv{p}/x2", f"relu{p}/x2", y, num_output=GROWTH, pad=1, kernel_size=3)
            x = w.concat(f"concat_{p}", [x, y])
            channels += GROWTH
        if stage < 1 + len(BLOCK_LAYERS):
            channels //= 2
            x = bn_relu_conv(w, f"conv{stage}_blk", f"relu{stage}_blk", x, num_output=channels, kernel_size=1)
            x = w.pool(f"pool{stage}", x, pool=AVE, kernel_size=2, stride=2)
    x = bn_scale_relu(w, f"conv{stage}_blk", f"relu{stage}_blk", x)
    x = w.pool(f"pool{stage}", x, pool=AVE, global_pooling=True)
    w.conv("fc6", x, num_output=1000, kernel_size=1)
    return w.text()

"""1.0-MobileNet-224 (shicai/MobileNet-Caffe ``mobilenet_deploy.prototxt``).

A 3x3 stem, then 13 depthwise-separable blocks: a 3x3 depthwise convolution (``group`` = channels; the
original asks for ``engine: CAFFE`` there, a BVLC field kept as is) and a 1x1 pointwise one, each followed
by BatchNorm, Scale and ReLU in place. The classifier is a 1x1 convolution after global average pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.zoo.writer import AVE, CAFFE, NetWriter, Value

# (block name, output channels, depthwise stride)
BLOCKS = (("conv2_1", 64, 1), ("conv2_2", 128, 2), ("conv3_1", 128, 1), ("conv3_2", 256, 2),
          ("conv4_1", 256, 1), ("conv4_2", 512, 2), ("conv5_1", 512, 1), ("conv5_2", 512, 1),
          ("conv5_3", 512, 1), ("conv5_4", 512, 1), ("conv5_5", 512, 1), ("conv5_6", 1024, 2),
          ("conv6", 1024, 1))


def conv_bn_relu(w: NetWriter, name: str, bottom: str, **param: Value) -> str:
    x = w.conv(name, bottom, num_output=param.pop("num_output"), bias_term=False, **param)
    w.batch_norm(f"{name}/bn", x, use_global_stats=True, eps=1e-5)
    w.scale(f"{name}/scale", x, bias_term=True)
    return w.relu("relu" + name.removeprefix("conv"), x)


def build(name: str, shape: Sequence[int], header: Sequence[str]) -> str:
    w = NetWriter(name, header)
    x = w.input("data", shape, "input_dim")
    x = conv_bn_relu(w, "conv1", x, num_output=32, pad=1, kernel_size=3, stride=2)
    channels = 32
    for block, out, stride in BLOCKS:
        x = conv_bn_relu(w, f"{block}/dw", x, num_output=channels, pad=1, kernel_size=3, group=channels,
                         engine=CAFFE, stride=stride)
        x = conv_bn_relu(w, f"{block}/sep", x, num_output=out, pad=0, kernel_size=1, stride=1)
        channels = out
    x = w.pool("pool6", x, pool=AVE, global_pooling=True)
    w.softmax("prob", w.conv("fc7", x, num_output=1000, kernel_size=1))
    return w.text()

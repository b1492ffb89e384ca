"""BVLC Caffe's input and data layers: Input, Data, ImageData, WindowData, MemoryData, DummyData, HDF5Data.

:mod:`harness.ir.build` turns them into the network's inputs (their tops' shapes come from their
parameters, or, for layers that read files, from what the file would hold); these handlers give the
caffe convention's net set-up Caffe's numbers of bottoms and tops for them (a data layer takes no bottom),
and the handler table a row for every type caffe.proto declares.
"""

from __future__ import annotations

from harness.ir.graph import Layer, Shape
from harness.layers.base import Convention, LayerHandler, register
from harness.layers.caffe_rules import proto_fields, refuse


class InputLayer(LayerHandler):
    bottoms = (0, 0)
    tops = (1, None)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        raise refuse(layer, "an input layer is read as the network's inputs, never as a layer")


@register
class Input(InputLayer):
    type = "Input"
    param_block = "input_param"
    fields = proto_fields("InputParameter")


@register
class Data(InputLayer):
    type = "Data"
    v1_names = ("DATA",)
    param_block = "data_param"
    fields = proto_fields("DataParameter")
    tops = (1, 2)


@register
class ImageData(InputLayer):
    type = "ImageData"
    v1_names = ("IMAGE_DATA",)
    param_block = "image_data_param"
    fields = proto_fields("ImageDataParameter")
    tops = (2, 2)


@register
class WindowData(InputLayer):
    type = "WindowData"
    v1_names = ("WINDOW_DATA",)
    param_block = "window_data_param"
    fields = proto_fields("WindowDataParameter")
    tops = (2, 2)


@register
class MemoryData(InputLayer):
    type = "MemoryData"
    v1_names = ("MEMORY_DATA",)
    param_block = "memory_data_param"
    fields = proto_fields("MemoryDataParameter")
    tops = (2, 2)


@register
class DummyData(InputLayer):
    type = "DummyData"
    v1_names = ("DUMMY_DATA",)
    param_block = "dummy_data_param"
    fields = proto_fields("DummyDataParameter")


@register
class HDF5Data(InputLayer):
    type = "HDF5Data"
    v1_names = ("HDF5_DATA",)
    param_block = "hdf5_data_param"
    fields = proto_fields("HDF5DataParameter")

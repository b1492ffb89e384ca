"""The prototxt reader and graph builder: syntax, V1/V2, inputs, phases, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import GraphError, PrototxtError
from harness.ir.build import load_graph
from harness.ir.textformat import Enum, parse_text

CONV = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer {
  name: "conv1"  # a comment
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
"""


def test_scalars_strings_and_comments() -> None:
    msg = parse_text('a: 1 b: -2.5e3 c: "x\\ty" \'z\' d: MAX e: true f: inf g: 0x10 # tail\nh < i: 1 >')
    assert msg.get("a") == 1
    assert msg.get("b") == -2500.0
    assert msg.get("c") == "x\tyz"  # escapes, adjacent literals concatenated
    assert msg.get("d") == "MAX" and isinstance(msg.get("d"), Enum)
    assert msg.get("e") is True
    assert msg.get("f") == float("inf")
    assert msg.get("g") == 16
    assert msg.message("h").get("i") == 1


def test_repeated_fields_and_lists() -> None:
    msg = parse_text("dim: 1 dim: 2 dim: [3, 4]")
    assert msg.all("dim") == [1, 2, 3, 4]


def test_v2_graph_with_input_shape() -> None:
    g = load_graph("tiny.prototxt", CONV)
    assert [s.shape for s in g.inputs] == [(1, 3, 8, 8)]
    assert [lay.name for lay in g.layers] == ["conv1", "relu1"]
    assert g.layers[1].in_place
    assert g.warnings == []


def test_v1_layers_with_enum_types_and_input_dim() -> None:
    text = """
    input: "data" input_dim: 2 input_dim: 3 input_dim: 10 input_dim: 10
    layers { name: "c" type: CONVOLUTION bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }
    layers { name: "p" type: POOLING bottom: "c" top: "p" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layers { name: "ip" type: INNER_PRODUCT bottom: "p" top: "ip" inner_product_param { num_output: 5 } }
    """
    g = load_graph("v1.prototxt", text)
    assert [lay.type for lay in g.layers] == ["Convolution", "Pooling", "InnerProduct"]
    assert g.inputs[0].shape == (2, 3, 10, 10)


def test_input_layer_and_data_layer_with_phases() -> None:
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 dim: 5 dim: 5 } } }
    layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TRAIN }
            transform_param { crop_size: 99 } data_param { batch_size: 7 } }
    layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TEST }
            transform_param { crop_size: 11 } data_param { batch_size: 2 } }
    layer { name: "r" type: "ReLU" bottom: "data" top: "r" exclude { phase: TRAIN } }
    layer { name: "t" type: "ReLU" bottom: "data" top: "t" include { phase: TRAIN } }
    """
    g = load_graph("data.prototxt", text)
    assert {s.name: s.shape for s in g.inputs} == {"x": (1, 3, 5, 5), "data": (2, 3, 11, 11), "label": (2,)}
    assert [lay.name for lay in g.layers] == ["r"]


def test_unknown_fields_are_kept_and_warned() -> None:
    text = 'engine: "MKL2017"\n' + CONV.replace("pad: 1 }", "pad: 1 fancy: 3 }")
    g = load_graph("unk.prototxt", text)
    assert any("engine" in w and "unk.prototxt:1:1" in w for w in g.warnings)
    assert any("convolution_param.fancy" in w for w in g.warnings)
    assert g.layers[0].param("convolution_param").get("fancy") == 3


def _error(text: str, exc: type[Exception] = PrototxtError) -> str:
    with pytest.raises(exc) as info:
        load_graph("bad.prototxt", text)
    return str(info.value)


def test_empty_file_has_no_input() -> None:
    assert "no input" in _error("", GraphError)


def test_truncated_brace_names_where_it_opened() -> None:
    msg = _error(CONV.rsplit("}", 1)[0])
    assert msg.startswith("bad.prototxt:") and "not closed" in msg and "opened at bad.prototxt:12:" in msg


def test_binary_garbage() -> None:
    assert "binary" in _error("\x08\x01\x12\x00\xff")


def test_binary_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "weights.caffemodel"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(PrototxtError, match="binary"):
        load_graph(path)


def test_unexpected_character_has_line_and_column() -> None:
    assert _error('name: "x"\n  @') == "bad.prototxt:2:3: unexpected character '@'"


def test_string_where_a_number_belongs_in_input_dims() -> None:
    msg = _error(CONV.replace("dim: 8 dim: 8", 'dim: "eight" dim: 8'))
    assert msg.startswith("bad.prototxt:4:") and "must be an integer" in msg


def test_bottom_that_no_layer_produces() -> None:
    msg = _error(CONV.replace('bottom: "data"', 'bottom: "nope"'), GraphError)
    assert "'nope'" in msg and "conv1" in msg


def test_cycle() -> None:
    text = CONV.replace('bottom: "data"', 'bottom: "later"') + \
        'layer { name: "x" type: "ReLU" bottom: "conv1" top: "later" }'
    assert "only produced later" in _error(text, GraphError)


def test_negative_and_zero_dimensions() -> None:
    assert "positive" in _error(CONV.replace("dim: 8 dim: 8", "dim: -8 dim: 8"))
    assert "positive" in _error(CONV.replace("dim: 3", "dim: 0"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PrototxtError, match="file not found") as info:
        load_graph(tmp_path / "absent.prototxt")
    assert "absent.prototxt" in str(info.value)


def test_duplicate_top_that_is_not_in_place() -> None:
    text = CONV + 'layer { name: "again" type: "ReLU" bottom: "data" top: "conv1" }'
    assert "already produced" in _error(text, GraphError)

"""The prototxt reader and graph builder: syntax, V1/V2, inputs, phases, and every kind of bad input."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.analysis.analyzer import analyze
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
    assert _error('name: "x"\n  @') == "bad.prototxt:2:3: expected a field name, got '@'"
    assert _error('name: "x"\n\x01') == "bad.prototxt:2:1: unexpected character U+0001 (a binary file, or a " \
        "control character)"


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
    assert "dim must be positive, got -8" in _error(CONV.replace("dim: 8 dim: 8", "dim: -8 dim: 8"))
    assert "dim must be positive, got 0" in _error(CONV.replace("dim: 3", "dim: 0"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PrototxtError, match="file not found") as info:
        load_graph(tmp_path / "absent.prototxt")
    assert "absent.prototxt" in str(info.value)


def test_duplicate_top_that_is_not_in_place() -> None:
    text = CONV + 'layer { name: "again" type: "ReLU" bottom: "data" top: "conv1" }'
    assert "already produced" in _error(text, GraphError)


# ---- protobuf's token rules (io/tokenizer.cc, text_format.cc) --------------------------------------

@pytest.mark.parametrize("literal, value", [
    (r'"\n\t\r\a\b\f\v\\\?\'\""', "\n\t\r\a\b\f\v\\?'\""),
    (r'"\101\0\7"', "A\x00\x07"),  # octal: one to three digits, each escape one byte
    (r'"\1010"', "A0"),
    (r'"\x41\x4a4\X4"', "AJ4\x04"),  # hex: one or two digits
    (r'"\303\251"', "\u00e9"),  # bytes that are UTF-8 make the character
    (r'"\u00e9\U0001F600"', "\u00e9\U0001f600"),
    (r'"\ud83d\ude00"', "\U0001f600"),  # a UTF-16 surrogate pair
    (r'"\377"', "\\xff"),  # a byte that is not UTF-8 stays visible
    ("'single' \"double\" # a comment between\n'more'", "singledoublemore"),
])
def test_every_escape_protobuf_accepts(literal: str, value: str) -> None:
    assert parse_text(f"s: {literal}").get("s") == value


@pytest.mark.parametrize("escape", [r"\8", r"\9", "\\\u0663", r"\q", r"\x", r"\u12", r"\U00110000", "\\\u00e9"])
def test_escapes_protobuf_rejects_are_one_clear_error(escape: str) -> None:
    with pytest.raises(PrototxtError) as info:
        parse_text(f's: "ab{escape}"', "e.prototxt")
    assert str(info.value).startswith("e.prototxt:1:7: invalid escape")
    assert "\n" not in str(info.value)


def test_an_escaped_backslash_before_a_digit_is_not_an_escape() -> None:
    assert parse_text(r's: "\\8"').get("s") == "\\8"


@pytest.mark.parametrize("text, value", [
    ("010", 8), ("0x1F", 31), ("-0x10", -16), ("0", 0), ("- 3", -3), ("1f", 1.0), ("2.5F", 2.5), ("1.", 1.0),
    (".5e1", 5.0), ("1e3", 1000.0), ("-inf", float("-inf")), ("Infinity", float("inf")), ("t", True),
    ("False", False),
])
def test_numbers_as_protobuf_reads_them(text: str, value: object) -> None:
    assert parse_text(f"v: {text}").get("v") == value


@pytest.mark.parametrize("text, message", [
    ("08", "leading 0 is octal"), ("00.5", "octal number (a leading 0) cannot have a fraction"),
    ("1x", "must be followed by a space"), ("1.2.3", "must be followed by a space"), ("+1", "'+' before a number"),
    ("-", "'-' must be followed by a number"), ("-foo", "only a number, inf or nan"), ("1e", "invalid number '1e'"),
])
def test_numbers_protobuf_rejects(text: str, message: str) -> None:
    with pytest.raises(PrototxtError, match=re.escape(message)):
        parse_text(f"v: {text}")


@pytest.mark.parametrize("text, message", [
    ("a 1", "expected ':' between 'a' and its value"), ("a: [1, 2,]", "',' before ']'"),
    ("a [1]", "expected ':' between 'a' and its list"), ("a: [1 2]", "expected ',' or ']'"),
    ("a { } ;;", "unexpected ';'"), ("a: 1 }", "'}' without an open block"), ("a < }", "needs '>'"),
    ('a: "x', "not closed on its line"), ("a: }", "expected a value"),
])
def test_structure_protobuf_rejects(text: str, message: str) -> None:
    with pytest.raises(PrototxtError, match=re.escape(message)):
        parse_text(text)


def test_lists_of_blocks_separators_and_byte_order_mark() -> None:
    msg = parse_text('\ufeffa [{ b: 1 }, < b: 2 >]; c: [] d: "x", e { }')
    assert [m.get("b") for m in msg.all("a")] == [1, 2]
    assert msg.all("c") == [] and msg.get("d") == "x" and msg.has("e")


def test_nesting_is_bounded_by_memory_not_by_recursion() -> None:
    depth = 50_000
    msg = parse_text("a { " * depth + "}" * depth)
    assert msg.message("a").message("a").has("a")
    with pytest.raises(PrototxtError, match=r"unexpected end of file: the block opened at <string>:1:\d+ is not"):
        parse_text("a { " * depth)


def test_messages_are_one_line_and_quote_a_short_excerpt() -> None:
    huge = "x" * 1_000_000
    for text in (f"a: {huge}@", f"{huge} @", f'a: "{huge}', f"a: 1{huge}", f'a: "{huge}\\8"', f"a: [{huge}"):
        with pytest.raises(PrototxtError) as info:
            parse_text(text)
        assert "\n" not in str(info.value) and len(str(info.value)) < 400, str(info.value)[:500]


def test_unreadable_files_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latin1 = tmp_path / "latin1.prototxt"
    # protobuf reads bytes: in a comment or a string any byte is fine (a proto2 string), elsewhere an error
    latin1.write_bytes(b'# caf\xe9\nname: "caf\xe9" input: "x" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1\n')
    assert load_graph(latin1).name == "caf\\xe9"
    latin1.write_bytes(b'name: "x" \xe9\n')
    with pytest.raises(PrototxtError, match=r"latin1.prototxt:1:11: byte 0xe9 is not UTF-8 text"):
        load_graph(latin1)
    with pytest.raises(PrototxtError, match="is a directory"):
        load_graph(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(PrototxtError, match="not a regular file"):
        load_graph(fifo)  # never blocks waiting for a writer

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(PrototxtError, match=r"latin1.prototxt: cannot read \(Permission denied\)"):
        load_graph(latin1)


# ---- what BVLC Caffe builds: NetStateRule, typed fields, ranges ------------------------------------

def _layer_names(text: str) -> list[str]:
    return [lay.name for lay in load_graph("rules.prototxt", CONV + text).layers]


def _relu(name: str, rules: str) -> str:
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "conv1" top: "{name}" {rules} }}\n'


def test_phase_rules_accept_the_enum_number() -> None:
    # caffe.proto: enum Phase { TRAIN = 0; TEST = 1; } - protobuf accepts an enum's number.
    text = _relu("test", "include { phase: 1 }") + _relu("train", "include { phase: 0 }") \
        + _relu("not_train", "exclude { phase: TRAIN }")
    assert _layer_names(text) == ["conv1", "relu1", "test", "not_train"]


def test_stage_and_level_rules_as_net_cpp_evaluates_them() -> None:
    # Net::StateMeetsRule with the state pycaffe builds: TEST, level 0, the file's own state stages.
    rules = (_relu("deploy", 'include { stage: "deploy" }') + _relu("not_deploy", 'include { not_stage: "deploy" }')
             + _relu("level1", "include { min_level: 1 }") + _relu("upto0", "include { max_level: 0 }")
             + _relu("below0", "include { max_level: -1 }")
             + _relu("either", 'include { stage: "x" } include { phase: TEST }')
             + _relu("both", 'include { stage: "deploy" stage: "extra" }')
             + _relu("excluded", 'exclude { stage: "deploy" }'))
    assert _layer_names(rules)[2:] == ["not_deploy", "upto0", "either", "excluded"]
    staged = 'state { stage: "deploy" level: 5 }\n'  # the file's level is replaced by 0, as Net's constructor does
    assert [lay.name for lay in load_graph("s.prototxt", staged + CONV + rules).layers][2:] == \
        ["deploy", "upto0", "either"]


@pytest.mark.parametrize("rules, message", [
    ('include { phase: TEST } exclude { phase: TRAIN }', "both include and exclude rules"),
    ('include { phase: "TEST" }', r"include.phase must be TRAIN or TEST .*got the string 'TEST'"),
    ("include { phase: 2 }", "include.phase must be TRAIN or TEST"),
    ("include { stage: deploy }", "include.stage must be a quoted string, got the unquoted 'deploy'"),
    ("include { level: 1 }", "unknown field 'level' in a NetStateRule"),
])
def test_bad_rules_are_rejected_as_caffe_does(rules: str, message: str) -> None:
    with pytest.raises(PrototxtError, match=message):
        _layer_names(_relu("r", rules))


@pytest.mark.parametrize("old, new, message", [
    ('name: "conv1"', "name { }", r"bad.prototxt:6:3: name must be a quoted string, got a \{ \} block"),
    ('type: "Convolution"', "type: Convolution", "type must be a quoted string, got the unquoted 'Convolution'"),
    ('bottom: "data"', "bottom: 5", "bottom must be a quoted string, got 5"),
    ('top: "conv1"\n', 'top: "conv1" top { }\n', r"top must be a quoted string, got a \{ \} block"),
    ('input: "data"', "input: data", "input must be a quoted string"),
    ('name: "tiny"', "name: 1.5", "name must be a quoted string"),
])
def test_a_value_of_the_wrong_kind_names_the_place(old: str, new: str, message: str) -> None:
    assert re.search(message, _error(CONV.replace(old, new, 1)))


def test_v1_types_are_enums_by_name_or_number() -> None:
    v1 = 'input: "data" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4\n' \
         'layers { name: "c" type: 4 bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 1 } }\n' \
         'layers { name: "r" type: RELU bottom: "c" top: "c" }\n'
    assert [lay.type for lay in load_graph("v1.prototxt", v1).layers] == ["Convolution", "ReLU"]
    with pytest.raises(PrototxtError, match="V1 LayerType enum, unquoted"):
        load_graph("v1.prototxt", v1.replace("type: RELU", 'type: "RELU"'))


def test_typed_param_fields_follow_protobuf() -> None:
    bool_as_number = CONV.replace("pad: 1 }", "pad: 1 bias_term: 0 }")  # protobuf's bool takes 0/1
    assert analyze(load_graph("b.prototxt", bool_as_number), "caffe").layers[0].param_shapes == [(4, 3, 3, 3)]
    pool = 'layer { name: "p" type: "Pooling" bottom: "conv1" top: "p" pooling_param { pool: %s kernel_size: 2 } }'
    assert analyze(load_graph("p.prototxt", CONV + pool % "1")).layers[-1].output_shapes == [(1, 4, 7, 7)]
    with pytest.raises(GraphError, match=r"'pool' must be one of MAX, AVE, STOCHASTIC \(unquoted"):
        analyze(load_graph("p.prototxt", CONV + pool % '"MAX"'))
    with pytest.raises(GraphError, match=r"'kernel_size' must be an integer, got 2\.0"):
        analyze(load_graph("p.prototxt", CONV.replace("kernel_size: 3", "kernel_size: 2f")))


def test_crlf_comments_and_whitespace_do_not_change_the_graph() -> None:
    plain = load_graph("a.prototxt", CONV)
    for variant in (CONV.replace("\n", "\r\n"), CONV.replace("\n", "  # note\n"), CONV.replace(" ", "\t  ")):
        other = load_graph("b.prototxt", variant)
        assert [(lay.name, lay.type, lay.bottoms, lay.tops) for lay in other.layers] == \
            [(lay.name, lay.type, lay.bottoms, lay.tops) for lay in plain.layers]
        assert analyze(other).totals == analyze(plain).totals

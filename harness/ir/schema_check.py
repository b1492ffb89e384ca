"""What protobuf's text parser, driven by ``caffe.proto``, refuses in a prototxt read by the schema-free
reader (:mod:`harness.ir.textformat`): the check behind ``--convention caffe``.

BVLC Caffe reads a prototxt with ``google::protobuf::TextFormat::Parse`` (``ReadProtoFromTextFile``),
which fails on the first of these, and Caffe then aborts ("Failed to parse NetParameter file"):

- a field the message type does not have (in any block, at any depth);
- a field that does not repeat given twice ("Non-repeated field ... is specified multiple times"), or
  given list syntax (``num_output: [96]``, even ``[]``); a list of values without ``:``;
- a block for a scalar field, a scalar for a message field;
- a value of the wrong type: integers in range for int32/int64/uint32/uint64 (an unsigned field takes
  no ``-``, not even ``-0``); floats take integers, floats, ``inf``/``nan``, but no hexadecimal or
  octal integer; bools take true/false/t/f/True/False or the integers 0 and 1; strings only quoted
  literals; enums a value's name (unquoted) or number;
- a ``required`` field left out of a message that is given (``clip_param { min: 0 }``).

The field table is :mod:`harness.ir.caffe_schema`, generated from ``caffe.proto``. Messages are checked
in the file's order, so the error named is the first one protobuf would meet in most files. Each error is
one line, at the field's place, with protobuf's words.
"""

from __future__ import annotations

from harness.errors import PrototxtError
from harness.ir.caffe_schema import ENUMS, MESSAGES
from harness.ir.textformat import (
    Enum,
    Field,
    Location,
    Message,
    NegativeZero,
    NonDecimal,
    describe,
    excerpt,
    gc_paused,
)

PACKAGE = "caffe"
_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1), "sint32": (-(2**31), 2**31 - 1),
           "sint64": (-(2**63), 2**63 - 1), "sfixed32": (-(2**31), 2**31 - 1), "sfixed64": (-(2**63), 2**63 - 1),
           "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1), "fixed32": (0, 2**32 - 1), "fixed64": (0, 2**64 - 1)}
_FLOATS = frozenset({"float", "double"})
_REQUIRED = {name: [f for f, spec in fields.items() if spec[1] == "required"] for name, fields in MESSAGES.items()}
_STRINGS = frozenset({"string", "bytes"})


def _refuse(what: str, at: Location) -> PrototxtError:
    return PrototxtError(f"{what} (caffe.proto; BVLC Caffe's parser refuses the file)", at)


def _value_error(field: Field, type_: str) -> PrototxtError | None:
    """Why protobuf refuses ``field``'s scalar value for a field of ``type_``, or None."""
    value = field.value
    name = field.name
    if isinstance(value, Message):
        expected = "double" if type_ in _FLOATS else "string" if type_ in _STRINGS else "integer"
        return _refuse(f"expected {expected} for {excerpt(name)}, got a {{ }} block", field.loc)
    if type_ in _RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            return _refuse(f"expected integer for {excerpt(name)}, got {describe(value)}", field.loc)
        low, high = _RANGES[type_]
        if isinstance(value, NegativeZero) and low == 0:
            return _refuse(f"{excerpt(name)} is unsigned ({type_}): no '-', not even in -0", field.loc)
        if not low <= value <= high:
            return _refuse(f"integer out of range for {excerpt(name)} ({type_}): {describe(value)}", field.loc)
        return None
    if type_ in _FLOATS:
        if isinstance(value, NonDecimal):
            return _refuse(f"expected a decimal number for {excerpt(name)} ({type_}), got a hexadecimal or octal "
                           "integer", field.loc)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _refuse(f"expected double for {excerpt(name)}, got {describe(value)}", field.loc)
        return None
    if type_ == "bool":
        if isinstance(value, bool) or (isinstance(value, int) and not isinstance(value, NegativeZero)
                                       and value in (0, 1)):
            return None
        return _refuse(f"invalid value for boolean field {excerpt(name)}: {describe(value)} (true, false, t, f, "
                       "True, False, 1 or 0)", field.loc)
    if type_ in _STRINGS:
        if isinstance(value, str) and not isinstance(value, Enum):
            return None
        return _refuse(f"expected string for {excerpt(name)} (a quoted literal), got {describe(value)}", field.loc)
    if type_.startswith("enum:"):
        values = ENUMS[type_[5:]]
        if isinstance(value, Enum) and value in values:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value in values.values():
            return None
        names = ", ".join(values)
        return _refuse(f"unknown enumeration value {describe(value)} for field {excerpt(name)} (one of {names}, "
                       "unquoted, or its number)", field.loc)
    raise AssertionError(f"caffe_schema has a type the check does not know: {type_}")


def enum_number(type_: str, value: object) -> int:
    """The number of an enum value the check accepted (a name or a number)."""
    if isinstance(value, Enum):
        return ENUMS[type_][value]
    return int(value)  # type: ignore[arg-type]


def check_message(root: Message, type_name: str = "NetParameter") -> None:
    """Raise :class:`PrototxtError` at the first thing of ``root`` (a parsed text of message ``type_name``)
    that protobuf's parser with caffe.proto refuses; also what the reader noted (a byte order mark)."""
    with gc_paused():  # as the reader: one pass over many objects, no cycles
        _check_message(root, type_name)


def _check_message(root: Message, type_name: str) -> None:
    lines = root.loc.lines if root.loc is not None else None
    if lines is not None and lines.caffe_refusal is not None:
        raise lines.caffe_refusal
    lists: dict[int, list[tuple[str, int, bool]]] = {}
    if lines is not None:
        for message, name, at, colon in lines.lists:
            lists.setdefault(id(message), []).append((name, at, colon))
    missing: list[str] = []
    todo: list[tuple[Message, str, str]] = [(root, type_name, "")]
    while todo:
        message, type_name, path = todo.pop()
        fields = MESSAGES[type_name]
        for name, at, colon in lists.get(id(message), ()):
            spec = fields.get(name)
            where = Location(lines, at)  # type: ignore[arg-type]
            if spec is None:  # (an empty list gives no field to name below)
                raise _refuse(f'message type "{PACKAGE}.{type_name}" has no field named {excerpt(name)}', where)
            if spec[1] != "repeated":
                found = '"{"' if spec[2].startswith("message:") else "a value"
                raise _refuse(f"field {excerpt(name)} does not repeat: list syntax is not allowed (expected "
                              f"{found}, found \"[\")", where)
            if not colon and not spec[2].startswith("message:"):
                raise _refuse(f"expected ':' between {excerpt(name)} and its list of values", where)
        seen: set[str] = set()
        children: list[tuple[Message, str, str]] = []
        for index, f in enumerate(message.fields):
            spec = fields.get(f.name)
            if spec is None:
                raise _refuse(f'message type "{PACKAGE}.{type_name}" has no field named {excerpt(f.name)}', f.loc)
            _, label, type_, _ = spec
            if label != "repeated":
                if f.name in seen:
                    raise _refuse(f"non-repeated field {excerpt(f.name)} is specified multiple times", f.loc)
                seen.add(f.name)
            if type_.startswith("message:"):
                if not isinstance(f.value, Message):
                    raise _refuse(f"{excerpt(f.name)} is a message: expected \"{{\", got {describe(f.value)}", f.loc)
                children.append((f.value, type_[8:], f"{path}{f.name}[{index}]."))
            else:
                error = _value_error(f, type_)
                if error is not None:
                    raise error
        missing += [f"{path}{name}" for name in _REQUIRED[type_name] if name not in seen]
        todo.extend(reversed(children))
    if missing:
        raise PrototxtError(f"message missing required fields: {', '.join(missing[:5])} (caffe.proto; BVLC Caffe's "
                            "parser refuses the file)", root.loc)

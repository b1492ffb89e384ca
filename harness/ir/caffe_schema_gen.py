"""Generate :mod:`harness.ir.caffe_schema` from a ``caffe.proto`` file.

The harness reads prototxts without protobuf and without a compiled ``caffe.proto``; its ``caffe``
convention still has to know what protobuf knows from that file: every message's fields (name, number,
type, label, default) and every enum's values. This script reads the ``.proto`` language (the subset
``caffe.proto`` uses: proto2 messages, nested messages and enums, ``optional``/``repeated``/``required``
fields with options, ``reserved``/``option`` statements, comments) and writes that table as a Python
module. Run it again when the proto changes::

    python -m harness.ir.caffe_schema_gen /opt/caffe/src/caffe/proto/caffe.proto > harness/ir/caffe_schema.py

``tests/test_caffe_schema.py`` regenerates the module from the Caffe source it finds and compares.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

SCALARS = frozenset({"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
                     "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"})
_TOKEN = re.compile(r"""\s+|//[^\n]*|/\*.*?\*/|(?P<tok>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
                    r"""|[A-Za-z_][A-Za-z0-9_.]*|-?\.?[0-9](?:[eE][-+]|[0-9A-Za-z_.])*|[^\sA-Za-z0-9_])""", re.S)


class ProtoSyntaxError(ValueError):
    pass


def tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ProtoSyntaxError(f"cannot read the .proto at character {pos}: {text[pos:pos + 20]!r}")
        if m.group("tok") is not None:
            out.append(m.group("tok"))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, toks: list[str]) -> None:
        self.toks, self.i = toks, 0
        self.package = ""
        self.messages: dict[str, dict[str, tuple]] = {}
        self.enums: dict[str, dict[str, int]] = {}
        self.field_types: list[tuple[str, str, str]] = []  # (message, field, type as written)

    def peek(self) -> str:
        return self.toks[self.i] if self.i < len(self.toks) else ""

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if not tok or (expected is not None and tok != expected):
            raise ProtoSyntaxError(f"expected {expected or 'a token'} at token {self.i}, got {tok!r}")
        self.i += 1
        return tok

    def skip_statement(self) -> None:
        while self.take() != ";":
            pass

    def file(self) -> None:
        while self.peek():
            tok = self.take()
            if tok == "package":
                self.package = self.take()
                self.take(";")
            elif tok in ("syntax", "import", "option"):
                self.i -= 1
                self.skip_statement()
            elif tok == "message":
                self.message("")
            elif tok == "enum":
                self.enum("")
            else:
                raise ProtoSyntaxError(f"unexpected {tok!r} at the top level of the .proto")

    def message(self, scope: str) -> None:
        name = scope + self.take()
        fields: dict[str, tuple] = {}
        self.messages[name] = fields
        self.take("{")
        while self.peek() != "}":
            tok = self.peek()
            if tok == "message":
                self.take()
                self.message(name + ".")
            elif tok == "enum":
                self.take()
                self.enum(name + ".")
            elif tok in ("option", "reserved", "extensions"):
                self.skip_statement()
            elif tok in ("optional", "repeated", "required"):
                self.field(name, fields)
            elif tok == ";":
                self.take()
            else:
                raise ProtoSyntaxError(f"unsupported statement {tok!r} in message {name}")
        self.take("}")

    def field(self, message: str, fields: dict[str, tuple]) -> None:
        label, type_, name = self.take(), self.take(), self.take()
        self.take("=")
        number = int(self.take(), 0)
        default = None
        if self.peek() == "[":
            self.take()
            while True:
                option = self.take()
                self.take("=")
                value = self.take()
                if value == "-":
                    value += self.take()
                if option == "default":
                    default = value
                if self.take() == "]":
                    break
        self.take(";")
        fields[name] = (number, label, type_, default)
        self.field_types.append((message, name, type_))

    def enum(self, scope: str) -> None:
        name = scope + self.take()
        values: dict[str, int] = {}
        self.enums[name] = values
        self.take("{")
        while self.peek() != "}":
            if self.peek() in ("option", "reserved"):
                self.skip_statement()
                continue
            value = self.take()
            self.take("=")
            number = self.take()
            if number == "-":
                number += self.take()
            values[value] = int(number, 0)
            if self.peek() == "[":
                while self.take() != "]":
                    pass
            self.take(";")
        self.take("}")

    def resolve(self, message: str, type_: str) -> str:
        """Protobuf's scoping: a type name is looked up from the innermost enclosing scope outwards."""
        if type_ in SCALARS:
            return type_
        name = type_.removeprefix(f".{self.package}.").removeprefix(f"{self.package}.")
        scope = message
        while True:
            candidate = f"{scope}.{name}" if scope else name
            if candidate in self.messages:
                return "message:" + candidate
            if candidate in self.enums:
                return "enum:" + candidate
            if not scope:
                raise ProtoSyntaxError(f"{message}: type {type_!r} is not defined")
            scope = scope.rpartition(".")[0]


def schema(proto_text: str) -> tuple[dict[str, dict[str, tuple]], dict[str, dict[str, int]]]:
    parser = _Parser(tokens(proto_text))
    parser.file()
    messages = {name: {field: (number, label, parser.resolve(name, type_), default)
                       for field, (number, label, type_, default) in fields.items()}
                for name, fields in parser.messages.items()}
    return messages, parser.enums


def render(proto_path: Path, proto_text: str) -> str:
    messages, enums = schema(proto_text)
    digest = hashlib.sha256(proto_text.encode()).hexdigest()
    lines = [
        '"""The schema of BVLC Caffe\'s ``caffe.proto`` as a table (generated; do not edit).',
        "",
        f"Source: ``{proto_path.name}`` of BVLC Caffe (sha256 {digest[:16]}...), read by",
        "``python -m harness.ir.caffe_schema_gen`` (harness/ir/caffe_schema_gen.py), which writes this file.",
        "",
        "``MESSAGES`` maps a message name to its fields: name -> (number, label, type, default), where the",
        "label is optional/repeated/required, the type a scalar type name, ``message:Name`` or ``enum:Name``",
        "(nested types are ``Outer.Inner``), and the default the text of ``[default = ...]`` or None.",
        "``ENUMS`` maps an enum name to its values (name -> number), in the order of the .proto.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        f'SOURCE_SHA256 = "{digest}"',
        "",
        "MESSAGES: dict[str, dict[str, tuple[int, str, str, str | None]]] = {",
    ]
    for name, fields in messages.items():
        lines.append(f"    {name!r}: {{")
        lines += [f"        {field!r}: {spec!r}," for field, spec in fields.items()]
        lines.append("    },")
    lines += ["}", "", "ENUMS: dict[str, dict[str, int]] = {"]
    for name, values in enums.items():
        lines.append(f"    {name!r}: {{")
        lines += [f"        {value!r}: {number}," for value, number in values.items()]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write harness/ir/caffe_schema.py from a caffe.proto")
    parser.add_argument("proto", type=Path, help="BVLC Caffe's src/caffe/proto/caffe.proto")
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.proto, args.proto.read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Protocol-buffer text format reader, the syntax of Caffe's ``.prototxt`` files.

It reads text into a tree of :class:`Message` objects without any schema (so no pycaffe and no
compiled ``caffe.proto`` are needed) and keeps the line and column of every field, so that the
graph builder can name the exact place of a bad value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from harness.errors import PrototxtError

Scalar = str | int | float | bool


class Location(NamedTuple):
    # A NamedTuple rather than a frozen dataclass: one is made per token, and this is the reader's hot path.
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Enum(str):
    """An unquoted identifier value (``pool: MAX``, ``phase: TEST``), as opposed to a quoted string."""


@dataclass
class Field:
    name: str
    value: Scalar | Message
    loc: Location


@dataclass
class Message:
    """One text-format message: an ordered list of fields, repeated names allowed."""

    fields: list[Field] = field(default_factory=list)
    loc: Location | None = None

    def get(self, name: str, default: Scalar | Message | None = None) -> Scalar | Message | None:
        """The last value of ``name`` (protobuf's rule for a non-repeated field given twice)."""
        found = default
        for f in self.fields:
            if f.name == name:
                found = f.value
        return found

    def all(self, name: str) -> list[Scalar | Message]:
        return [f.value for f in self.fields if f.name == name]

    def field(self, name: str) -> Field | None:
        found = None
        for f in self.fields:
            if f.name == name:
                found = f
        return found

    def message(self, name: str) -> Message:
        """The sub-message ``name``, or an empty one (protobuf's default for an unset message)."""
        value = self.get(name)
        if value is None:
            return Message(loc=self.loc)
        if not isinstance(value, Message):
            raise PrototxtError(f"'{name}' must be a message block, got {value!r}", self.field(name).loc)
        return value

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    def names(self) -> list[str]:
        return [f.name for f in self.fields]


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?(?![A-Za-z_]))
  | (?P<ident>[-]?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}:<>\[\],;])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "?": "?"}


@dataclass
class _Token:
    kind: str
    text: str
    loc: Location


def _unescape(body: str, loc: Location) -> str:
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xX":
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if not digits:
                raise PrototxtError("bad \\x escape in string", loc)
            out.append(chr(int(digits.group(), 16)))
            i += 2 + len(digits.group())
        elif nxt.isdigit():
            digits = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(chr(int(digits.group(), 8)))
            i += 1 + len(digits.group())
        else:
            raise PrototxtError(f"unknown escape '\\{nxt}' in string", loc)
    return "".join(out)


def _tokens(text: str, filename: str) -> list[_Token]:
    tokens: list[_Token] = []
    line, line_start, pos = 1, 0, 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            break  # finditer skipped a character no token matches
        kind = m.lastgroup
        if kind == "ws":
            newlines = m.group().count("\n")
            if newlines:
                line += newlines
                line_start = m.start() + m.group().rindex("\n") + 1
        elif kind != "comment":
            tokens.append(_Token(kind, m.group(), Location(filename, line, m.start() - line_start + 1)))
        pos = m.end()
    if pos < len(text):
        ch = text[pos]
        shown = repr(ch) if ch.isprintable() else f"byte 0x{ord(ch):02x}"
        raise PrototxtError(f"unexpected character {shown}", Location(filename, line, pos - line_start + 1))
    return tokens


class _Parser:
    def __init__(self, text: str, filename: str) -> None:
        self.tokens = _tokens(text, filename)
        self.pos = 0
        self.filename = filename

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _end_loc(self) -> Location:
        if self.tokens:
            last = self.tokens[-1]
            return Location(self.filename, last.loc.line, last.loc.column + len(last.text))
        return Location(self.filename, 1, 1)

    def _next(self, what: str) -> _Token:
        tok = self._peek()
        if tok is None:
            raise PrototxtError(f"unexpected end of file, expected {what}", self._end_loc())
        self.pos += 1
        return tok

    def parse_message(self, closer: str | None, loc: Location | None) -> Message:
        msg = Message(loc=loc)
        while True:
            tok = self._peek()
            if tok is None:
                if closer is not None:
                    raise PrototxtError(f"unexpected end of file: block opened at {loc} is not closed "
                                        f"with '{closer}'", self._end_loc())
                return msg
            if tok.kind == "punct" and tok.text == closer:
                self.pos += 1
                return msg
            if tok.kind == "punct" and tok.text in ",;":
                self.pos += 1
                continue
            if tok.kind != "ident":
                raise PrototxtError(f"expected a field name, got '{tok.text}'", tok.loc)
            self.pos += 1
            self._field_value(msg, tok)

    def _field_value(self, msg: Message, name_tok: _Token) -> None:
        tok = self._next(f"':' or '{{' after '{name_tok.text}'")
        if tok.kind == "punct" and tok.text in "{<":
            closer = "}" if tok.text == "{" else ">"
            msg.fields.append(Field(name_tok.text, self.parse_message(closer, tok.loc), name_tok.loc))
            return
        if not (tok.kind == "punct" and tok.text == ":"):
            raise PrototxtError(f"expected ':' or '{{' after field '{name_tok.text}', got '{tok.text}'",
                                tok.loc)
        tok = self._next(f"a value for '{name_tok.text}'")
        if tok.kind == "punct" and tok.text in "{<":
            closer = "}" if tok.text == "{" else ">"
            msg.fields.append(Field(name_tok.text, self.parse_message(closer, tok.loc), name_tok.loc))
        elif tok.kind == "punct" and tok.text == "[":
            self._list(msg, name_tok)
        else:
            msg.fields.append(Field(name_tok.text, self._scalar(tok, name_tok.text), name_tok.loc))

    def _list(self, msg: Message, name_tok: _Token) -> None:
        while True:
            tok = self._next(f"a value or ']' in the list of '{name_tok.text}'")
            if tok.kind == "punct" and tok.text == "]":
                return
            if tok.kind == "punct" and tok.text == ",":
                continue
            if tok.kind == "punct" and tok.text in "{<":
                closer = "}" if tok.text == "{" else ">"
                msg.fields.append(Field(name_tok.text, self.parse_message(closer, tok.loc), tok.loc))
            else:
                msg.fields.append(Field(name_tok.text, self._scalar(tok, name_tok.text), tok.loc))

    def _scalar(self, tok: _Token, name: str) -> Scalar:
        if tok.kind == "string":
            parts = [_unescape(tok.text[1:-1], tok.loc)]
            # Adjacent string literals concatenate, as in C and in protobuf's text format.
            while (nxt := self._peek()) is not None and nxt.kind == "string":
                parts.append(_unescape(nxt.text[1:-1], nxt.loc))
                self.pos += 1
            return "".join(parts)
        if tok.kind == "number":
            return _number(tok.text)
        if tok.kind == "ident":
            lowered = tok.text.lower().lstrip("-")
            if lowered in ("inf", "infinity", "nan"):
                return float(tok.text)
            if tok.text in ("true", "True", "t"):
                return True
            if tok.text in ("false", "False", "f"):
                return False
            return Enum(tok.text)
        raise PrototxtError(f"expected a value for '{name}', got '{tok.text}'", tok.loc)


def _number(text: str) -> int | float:
    body = text.rstrip("fF") if not text.lower().startswith(("0x", "-0x", "+0x")) else text
    if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", body):
        return int(body, 16)
    if re.fullmatch(r"[-+]?\d+", body):
        return int(body)
    return float(body)


def parse_text(text: str, filename: str = "<string>") -> Message:
    """Parse protobuf text format into a :class:`Message` tree; raises :class:`PrototxtError`."""
    if "\x00" in text:
        raise PrototxtError("binary data, not a text prototxt (is this a .caffemodel?)",
                            Location(filename, 1, 1))
    return _Parser(text, filename).parse_message(None, Location(filename, 1, 1))


def parse_file(path: str | Path) -> Message:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PrototxtError("file not found", Location(str(path), 0, 0)) from None
    except IsADirectoryError:
        raise PrototxtError("is a directory, not a prototxt file", Location(str(path), 0, 0)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PrototxtError("binary data, not a UTF-8 text prototxt", Location(str(path), line, 1)) from None
    return parse_text(text, str(path))

"""Protocol-buffer text format reader, the syntax of Caffe's ``.prototxt`` files.

It reads text into a tree of :class:`Message` objects without any schema (so no pycaffe and no
compiled ``caffe.proto`` are needed) and keeps the place of every field, so that the graph builder
can name the exact place of a bad value.

The token rules are protobuf's own, which BVLC Caffe's ``ReadProtoFromTextFile`` applies
(protocolbuffers/protobuf ``src/google/protobuf/io/tokenizer.cc`` and ``text_format.cc``):

- whitespace is protobuf's: space, tab, CR, LF, VT and FF only (U+00A0, U+2028, U+001C... are errors, as
  they are to protobuf's tokenizer and to Netscope's grammar); comments run from ``#`` to the end of the
  line and may hold any bytes (a byte that is not UTF-8 reads as its ``\\xNN`` escape, so inside a
  string it keeps the byte, and anywhere else it is an error, as to protobuf);
  ``;`` or ``,`` may follow a field (one of them);
- a scalar field needs ``:``, a block may omit it; blocks are ``{ }`` or ``< >``; lists ``[a, b]``;
- integers are decimal, octal (a leading ``0``: ``010`` is 8, ``08`` is an error) or hex (``0x``);
  floats may end in ``f`` (``1f``, ``0.5F``: ``set_allow_f_after_float(true)``), so ``1f`` is a float
  (an integer field rejects it); a number must not run into a letter (``1x``); a sign is a separate
  ``-`` (``+1`` is an error); ``inf``, ``infinity`` and ``nan`` are floats in any letter case;
- strings are ``"..."`` or ``'...'`` on one line, adjacent literals concatenate, and the escapes are
  ``\\a \\b \\f \\n \\r \\t \\v \\\\ \\? \\' \\"``, octal ``\\0``-``\\377`` (one to three digits, each a byte),
  ``\\x`` with one or two hex digits (a byte), ``\\u`` with four and ``\\U`` with eight hex digits (a
  code point, written as UTF-8); any other escape (``\\8``, ``\\9``, ``\\q``, a non-ASCII digit) is an
  error, as in protobuf's ``ConsumeString``.

The reader is one loop over one regular expression that matches a whole field at a time, with an
explicit stack of open blocks: time is linear in the input, memory linear in the number of fields, and
the nesting depth is bounded by memory only, never by Python's recursion limit. Error messages are one
line and quote at most a short excerpt of the input.

The reader is schema-free: what only ``caffe.proto`` decides (which fields exist, repeat, their types) is
checked by :mod:`harness.ir.schema_check` for the ``caffe`` convention. For that check the reader keeps
what its values alone would lose: hexadecimal and octal integers are :class:`NonDecimal` (a float field
refuses them), ``-0`` is :class:`NegativeZero` (an unsigned field refuses it), every ``name: [...]`` list
is noted in :attr:`Lines.lists` (a field that does not repeat refuses list syntax, even an empty one), and
a UTF-8 byte order mark, which Netscope's readers skip but protobuf refuses, is noted in
:attr:`Lines.caffe_refusal`.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import re
import stat
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from pathlib import Path

from harness.errors import PrototxtError

Scalar = str | int | float | bool
EXCERPT_CHARS = 24  # the most of the input an error message quotes
NAME_CHARS = 60  # the most of a layer or blob name it quotes


class Lines:
    """Where the lines of one parsed text start, so that an offset becomes line:column only when a
    message needs it (one table per text instead of a line and a column per field)."""

    __slots__ = ("caffe_refusal", "lists", "name", "starts")

    def __init__(self, name: str, text: str = "") -> None:
        self.name = name
        self.starts = array("q", [0])
        self.starts.extend(m.end() for m in _NEWLINE.finditer(text))
        # Every ``name: [...]`` list: (the message it is in, the field name, where the name is, whether a
        # ':' came before '['); few files have any.
        self.lists: list[tuple[Message, str, int, bool]] = []
        # What this reader accepts that protobuf's parser (so BVLC Caffe) refuses: the first such thing.
        self.caffe_refusal: PrototxtError | None = None

    def line_column(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


class Location:
    """A place in a parsed text, printed as ``file:line:column`` (columns count characters from 1)."""

    __slots__ = ("lines", "offset")

    def __init__(self, lines: Lines, offset: int) -> None:
        self.lines, self.offset = lines, offset

    def __str__(self) -> str:
        line, column = self.lines.line_column(self.offset)
        return f"{self.lines.name}:{line}:{column}"

    __repr__ = __str__


class Enum(str):
    """An unquoted identifier value (``pool: MAX``, ``phase: TEST``), as opposed to a quoted string."""


class NonDecimal(int):
    """An integer written in hexadecimal (``0x1F``) or octal (``010``): an integer, a bool or an enum
    field takes it, a float field does not (protobuf: "Expect a decimal number")."""


class NegativeZero(int):
    """``-0``: zero to a signed field, an error to an unsigned one (protobuf reads the ``-`` apart)."""


class Field:
    """One field: its name, its value and where it is. The place is kept as an offset into the text
    (the reader makes one Field per field of the file, so it must be small and quick to make)."""

    __slots__ = ("at", "lines", "name", "value")

    def __init__(self, name: str, value: Scalar | Message, lines: Lines, at: int) -> None:
        self.name, self.value, self.lines, self.at = name, value, lines, at

    @property
    def loc(self) -> Location:
        return Location(self.lines, self.at)

    def __repr__(self) -> str:
        return f"Field({self.name}: {describe(self.value)} at {self.loc})"


class Message:
    """One text-format message: an ordered list of fields, repeated names allowed."""

    __slots__ = ("fields", "loc")

    def __init__(self, fields: list[Field] | None = None, loc: Location | None = None) -> None:
        self.fields = [] if fields is None else fields
        self.loc = loc

    def __repr__(self) -> str:  # never recursive: a deeply nested message must still print
        return f"Message({len(self.fields)} fields at {self.loc})"

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
        """The field ``name`` that counts: the last one given (a non-repeated field given twice)."""
        found = None
        for f in self.fields:
            if f.name == name:
                found = f
        return found

    def message(self, name: str) -> Message:
        """The sub-message ``name``, or an empty one (protobuf's default for an unset message)."""
        f = self.field(name)
        if f is None:
            return Message(loc=self.loc)
        if not isinstance(f.value, Message):
            raise PrototxtError(f"{excerpt(name)} must be a {{ }} block, got {describe(f.value)}", f.loc)
        return f.value

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    def names(self) -> list[str]:
        return [f.name for f in self.fields]


def describe(value: object) -> str:
    """A value as an error message shows it: short, on one line, and saying what kind it is."""
    if isinstance(value, Message):
        return "a { } block"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return f"the unquoted {excerpt(value)}"
    if isinstance(value, str):
        return f"the string {excerpt(value)}"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
    return type(value).__name__


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of ``text``, quoted and escaped (so always one line)."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


# ---- tokens -------------------------------------------------------------------------------------

def _compile(pattern: str) -> re.Pattern[str]:
    """Possessive quantifiers (``*+``, ``++``, ``?+``; Python 3.11) keep the reader linear: a failed
    match never backtracks into a long run of characters. Python 3.10 has none, so there they become
    greedy: the same tokens for every file, without that bound on pathological input
    (benchmarks/parse_speed.py measures 3.11)."""
    if sys.version_info < (3, 11):
        pattern = re.sub(r"(?<=[*+?}])\+", "", pattern)
    return re.compile(pattern)


_NEWLINE = _compile("\n")
# Whitespace and comments between any two tokens. A comment runs to the end of its line, said twice: by
# the possessive quantifier and by the lookahead, which keeps it so where quantifiers are only greedy.
_SKIP = r"(?:[ \t\n\r\v\f]++|\#[^\n]*+(?![^\n]))*+"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*+"
# One literal: no newline inside; a backslash takes the next character (the escape is checked after).
_LITERAL = r""""[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"|'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'"""
_STRINGS = rf"(?:{_LITERAL})(?:{_SKIP}(?:{_LITERAL}))*+"
_DECIMAL = r"(?:0|[1-9][0-9]*+)"
_EXPONENT = r"(?:[eE][-+]?[0-9]++)"
_FLOAT = (rf"(?:{_DECIMAL}\.[0-9]*+{_EXPONENT}?+[fF]?+|\.[0-9]++{_EXPONENT}?+[fF]?+"
          rf"|{_DECIMAL}{_EXPONENT}[fF]?+|{_DECIMAL}[fF])")
# The value alternatives are the last groups of the pattern, so Match.lastgroup names the value's kind.
_VALUE = (rf"(?P<str>{_STRINGS})"
          rf"|(?:(?P<neg>-){_SKIP})?+(?:(?:(?P<flt>{_FLOAT})|(?P<hex>0[xX][0-9a-fA-F]++)|(?P<oct>0[0-7]++)"
          rf"|(?P<int>{_DECIMAL}))(?![A-Za-z0-9_.])|(?P<id>{_IDENT}))")
_FIELD = _compile(
    rf"{_SKIP}(?:(?P<name>{_IDENT}){_SKIP}(?P<colon>:)?+{_SKIP}(?:(?P<open>[{{<])|(?P<list>\[)|(?(colon)(?:{_VALUE})|(?!)))?+"
    rf"|(?P<close>[}}>])|(?P<sep>[;,])|(?P<end>\Z))")
_ITEM = _compile(rf"{_SKIP}(?:(?P<open>[{{<])|(?P<end_list>\])|{_VALUE})")
_AFTER_ITEM = _compile(rf"{_SKIP}(?:(?P<comma>,)|(?P<end_list>\]))")
_VALUE_ONLY = _compile(_VALUE)
_SKIP_ONLY = _compile(_SKIP)
_ONE_LITERAL = _compile(_LITERAL)
_NUMBER_LIKE = _compile(r"[-+.0-9A-Za-z_]*")

_VALUE_KINDS = frozenset({"str", "flt", "hex", "oct", "int", "id"})
_BOOLS = {"true": True, "True": True, "t": True, "false": False, "False": False, "f": False}
_FLOAT_WORDS = frozenset({"inf", "infinity", "nan"})

# An escape that protobuf rejects, found only where a backslash starts an escape (after an even run).
_BAD_ESCAPE = _compile(r"(?<!\\)(?:\\\\)*+(\\(?:[^abfnrtv\\?'\"0-7xXuU]|[xX](?![0-9a-fA-F])"
                         r"|u(?![0-9a-fA-F]{4})|U(?!00(?:0[0-9a-fA-F]|10)[0-9a-fA-F]{4})))")
# Escapes codecs.escape_decode does not read as protobuf does; a string with one is decoded by _unescape.
_OWN_ESCAPE = _compile(r"(?<!\\)(?:\\\\)*+\\(?:[?XuU]|x[0-9a-fA-F](?![0-9a-fA-F])|[4-7][0-7]{2})")
_ESCAPE = _compile(r"\\(?:([0-7]{1,3})|[xX]([0-9a-fA-F]{1,2})|u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F]"
                     r"[0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))")
_SIMPLE_ESCAPES = {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v",
                   "\\": b"\\", "?": b"?", "'": b"'", '"': b'"'}


def _unescape(body: str) -> bytes:
    """Protobuf's ``ParseStringAppend`` for a body whose escapes are known to be valid."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(body):
        out += body[pos:m.start()].encode("utf-8")
        octal, hexa, head, trail, u4, u8, simple = m.groups()
        if octal is not None:
            out.append(int(octal, 8) & 0xFF)  # static_cast<char>: \777 is a byte, as in protobuf
        elif hexa is not None:
            out.append(int(hexa, 16))
        elif head is not None:  # a UTF-16 surrogate pair written as two \u escapes
            out += chr(0x10000 + ((int(head, 16) - 0xD800) << 10 | (int(trail, 16) - 0xDC00))).encode("utf-8")
        elif u4 is not None or u8 is not None:
            out += chr(int(u4 or u8, 16)).encode("utf-8", "surrogatepass")
        else:
            out += _SIMPLE_ESCAPES[simple]
        pos = m.end()
    out += body[pos:].encode("utf-8")
    return bytes(out)


def _literal_value(body: str, offset: int, lines: Lines) -> str:
    """The text of one string literal's body; ``offset`` is where the body starts (for errors)."""
    if "\\" not in body:
        return body
    bad = _BAD_ESCAPE.search(body)
    if bad is not None:
        escape = bad.group(1)
        raise PrototxtError(f"invalid escape {excerpt(escape)} in a string (protobuf accepts \\n \\t \\r \\a \\b "
                            "\\f \\v \\\\ \\? \\' \\\", octal \\0-\\377, \\xHH, \\uHHHH, \\UHHHHHHHH)",
                            Location(lines, offset + bad.start(1)))
    # codecs.escape_decode reads the other escapes as protobuf does, at C speed.
    raw = _unescape(body) if _OWN_ESCAPE.search(body) else codecs.escape_decode(body.encode("utf-8"))[0]
    # Escapes make bytes; a string field is bytes to protobuf. Bytes that are not UTF-8 stay visible.
    return raw.decode("utf-8", errors="backslashreplace")


def _string_value(token: str, offset: int, lines: Lines) -> str:
    if "\\" not in token and token.count(token[0]) == 2 and token[-1] == token[0]:
        return token[1:-1]  # one literal without escapes: the common case, no copy but the slice
    return "".join(_literal_value(m.group()[1:-1], offset + m.start() + 1, lines)
                   for m in _ONE_LITERAL.finditer(token))


def _scalar(m: re.Match[str], kind: str, lines: Lines) -> Scalar:
    text = m.group(kind)
    if kind == "str":
        return _string_value(text, m.start(kind), lines)
    negative = m.start("neg") >= 0
    if kind == "id":
        if text.lower() in _FLOAT_WORDS:
            return -float(text) if negative else float(text)
        if negative:
            raise PrototxtError(f"'-' before {excerpt(text)}: only a number, inf or nan may follow it",
                                Location(lines, m.start("neg")))
        flag = _BOOLS.get(text)
        return flag if flag is not None else Enum(text)
    if kind == "int":
        # Beyond uint64 only a float field can take it (protobuf's ConsumeDouble); float() has no digit limit.
        value: int | float = int(text) if len(text) <= 20 else float(text)
    elif kind == "flt":
        value = float(text.rstrip("fF"))
    else:
        magnitude = int(text, 16 if kind == "hex" else 8)
        if negative and magnitude == 0:
            return NegativeZero(0)
        return NonDecimal(-magnitude if negative else magnitude)
    if negative and value == 0 and isinstance(value, int):
        return NegativeZero(0)
    return -value if negative else value


# ---- parser -------------------------------------------------------------------------------------

class _Open:
    """A block being read: the message it belongs to, its closing character, where it opened, and - for a
    block that is an item of a list - that list."""

    __slots__ = ("closer", "in_list", "loc", "message")

    def __init__(self, message: Message, closer: str, loc: Location, in_list: _List | None) -> None:
        self.message, self.closer, self.loc, self.in_list = message, closer, loc, in_list


class _List:
    """A ``name: [a, b]`` list being read."""

    __slots__ = ("after_comma", "after_item", "at", "colon", "name")

    def __init__(self, name: str, at: int, colon: bool) -> None:
        self.name, self.at, self.colon = name, at, colon
        self.after_item = self.after_comma = False


def _parse(text: str, lines: Lines) -> Message:
    root = Message(loc=Location(lines, 0))
    current = root
    stack: list[_Open] = []
    names: dict[str, str] = {}  # one string object per field name, however often it occurs
    in_list: _List | None = None
    separator_ok = False  # one ';' or ',' may follow a field
    pos = 0
    field_match, item_match, after_match = _FIELD.match, _ITEM.match, _AFTER_ITEM.match
    while True:
        if in_list is not None:
            if in_list.after_item:
                m = after_match(text, pos)
                if m is None:
                    raise _syntax_error(text, pos, lines, f"',' or ']' in the list of {excerpt(in_list.name)}")
                pos = m.end()
                in_list.after_item = False
                in_list.after_comma = m.lastgroup == "comma"
                if not in_list.after_comma:
                    in_list, separator_ok = None, True
                continue
            m = item_match(text, pos)
            if m is None:
                raise _syntax_error(text, pos, lines, f"a value or ']' in the list of {excerpt(in_list.name)}")
            kind = m.lastgroup
            pos = m.end()
            if kind == "end_list":
                if in_list.after_comma:
                    raise PrototxtError(f"',' before ']' in the list of {excerpt(in_list.name)}",
                                        Location(lines, m.start(kind)))
                in_list, separator_ok = None, True
            elif kind == "open":
                child = Message(loc=Location(lines, m.start(kind)))
                current.fields.append(Field(in_list.name, child, lines, in_list.at))
                stack.append(_Open(current, ">" if m.group(kind) == "<" else "}", child.loc, in_list))
                current, in_list = child, None
            elif not in_list.colon:
                raise PrototxtError(f"expected ':' between {excerpt(in_list.name)} and its list of values",
                                    Location(lines, in_list.at))
            else:
                current.fields.append(Field(in_list.name, _scalar(m, kind, lines), lines, m.start(kind)))
                in_list.after_item = True
            continue

        m = field_match(text, pos)
        if m is None:
            raise _syntax_error(text, pos, lines, "a field name or '}'" if stack else "a field name")
        kind = m.lastgroup
        if kind in _VALUE_KINDS:
            name, value = m.group("name", kind)
            # The two commonest values inline: one string literal without escapes, a small decimal integer.
            if kind == "str" and "\\" not in value and value[-1] == value[0] and value.count(value[0]) == 2:
                value = value[1:-1]
            elif kind == "int" and len(value) < 19 and m.start("neg") < 0:
                value = int(value)
            else:
                value = _scalar(m, kind, lines)
            current.fields.append(Field(names.get(name) or names.setdefault(name, name), value, lines,
                                        m.start("name")))
            separator_ok = True
        elif kind == "open":
            name = m.group("name")
            child = Message(loc=Location(lines, m.start(kind)))
            current.fields.append(Field(names.setdefault(name, name), child, lines, m.start("name")))
            stack.append(_Open(current, ">" if m.group(kind) == "<" else "}", child.loc, None))
            current, separator_ok = child, False
        elif kind == "list":  # ':' is optional before a list of blocks, required before a list of values
            name = m.group("name")
            in_list = _List(names.setdefault(name, name), m.start("name"), m.start("colon") >= 0)
            lines.lists.append((current, in_list.name, in_list.at, in_list.colon))
        elif kind == "close":
            closer = m.group(kind)
            if not stack:
                raise PrototxtError(f"'{closer}' without an open block", Location(lines, m.start(kind)))
            block = stack.pop()
            if closer != block.closer:
                raise PrototxtError(f"'{closer}' closes the block opened at {block.loc}, which needs "
                                    f"'{block.closer}'", Location(lines, m.start(kind)))
            current, in_list = block.message, block.in_list
            if in_list is not None:
                in_list.after_item = True
            separator_ok = in_list is None
        elif kind == "sep":
            if not separator_ok:
                raise PrototxtError(f"unexpected '{m.group(kind)}' (one ';' or ',' may follow a field)",
                                    Location(lines, m.start(kind)))
            separator_ok = False
        elif kind == "end":
            if stack:
                raise PrototxtError(f"unexpected end of file: the block opened at {stack[-1].loc} is not closed "
                                    f"with '{stack[-1].closer}'", Location(lines, len(text)))
            return root
        elif kind == "name" and _VALUE_ONLY.match(text, m.end()):  # a value is only taken after a ':'
            raise PrototxtError(f"expected ':' between {excerpt(m.group('name'))} and its value",
                                Location(lines, m.end()))
        else:  # a name, maybe a ':', and then nothing a field can have
            raise _syntax_error(text, m.end(), lines, f"a value or '{{' after {excerpt(m.group('name'))}"
                                                      + (" and ':'" if kind == "colon" else ""))
        pos = m.end()


def _syntax_error(text: str, pos: int, lines: Lines, expected: str) -> PrototxtError:
    """One line saying what is wrong at ``pos`` (after whitespace and comments), quoting a short excerpt."""
    skip = _SKIP_ONLY.match(text, pos)
    at = skip.end() if skip else pos
    loc = Location(lines, at)
    if at >= len(text):
        return PrototxtError(f"unexpected end of file, expected {expected}", loc)
    ch = text[at]
    line_end = text.find("\n", at, at + 4096)
    rest = text[at:line_end if line_end >= 0 else at + 4096]
    if ch in "\"'":
        return PrototxtError(f"string {excerpt(rest)} is not closed on its line (protobuf strings are one line; "
                             "a backslash cannot end one)", loc)
    if ch == "+":
        return PrototxtError("'+' before a number: protobuf's text format (and so Caffe) accepts only '-'", loc)
    if _VALUE_ONLY.match(text, at):  # a good value in the wrong place
        return PrototxtError(f"expected {expected}, got {excerpt(rest)}", loc)
    if ch == "-" and not _NUMBER_LIKE.match(text, at + 1).group():
        return PrototxtError("'-' must be followed by a number, inf or nan", loc)
    if ch.isdigit() or ch in ".-":
        token = _NUMBER_LIKE.match(text, at).group()[:64]
        if re.fullmatch(r"-?0[0-9]+", token):
            why = "a number with a leading 0 is octal and may hold only the digits 0-7"
        elif re.fullmatch(r"-?0[0-7]*\.[0-9]*", token):
            why = "an octal number (a leading 0) cannot have a fraction"
        else:
            why = "a number must be followed by a space or a symbol, not a letter, '_' or another '.'"
        return PrototxtError(f"invalid number {excerpt(token)}: {why}", loc)
    if ch == "\\" and text.startswith("\\x", at):
        return PrototxtError(f"byte 0x{text[at + 2:at + 4]} is not UTF-8 text, or a backslash outside a string "
                             "(outside strings and comments protobuf takes ASCII only)", loc)
    if ch.isspace():
        return PrototxtError(f"character U+{ord(ch):04X} is not whitespace to protobuf (and so to Caffe) or to "
                             "Netscope: only space, tab, CR, LF, VT and FF are", loc)
    if not ch.isprintable():
        return PrototxtError(f"unexpected character U+{ord(ch):04X} (a binary file, or a control character)", loc)
    return PrototxtError(f"expected {expected}, got {excerpt(rest)}", loc)


def parse_text(text: str, filename: str = "<string>") -> Message:
    """Parse protobuf text format into a :class:`Message` tree; raises :class:`PrototxtError`."""
    if "\x00" in text:
        nul = text.index("\x00")
        lines = Lines(filename, text[:nul])
        raise PrototxtError("binary data (a NUL byte), not a text prototxt (is this a .caffemodel?)",
                            Location(lines, nul))
    bom = text.startswith("\ufeff")
    if bom:
        text = " " + text[1:]  # a space keeps every column
    lines = Lines(filename, text)
    if bom:  # Netscope's readers (a browser's text decoding) drop it; protobuf does not
        lines.caffe_refusal = PrototxtError("a UTF-8 byte order mark: protobuf's parser, and so BVLC Caffe, refuses "
                                            "it (\"Interpreting non ascii codepoint 239\")", Location(lines, 0))
    with gc_paused():
        return _parse(text, lines)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a while. Reading a large file makes millions of objects
    and no reference cycles; left on, the collector would walk all of them again and again, which
    costs more than the reading itself."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def parse_file(path: str | Path) -> Message:
    """Parse a prototxt file; any file that cannot be read is a :class:`PrototxtError` naming it."""
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise PrototxtError(f"{path}: is a directory, not a prototxt file")
        if not stat.S_ISREG(info.st_mode):
            raise PrototxtError(f"{path}: not a regular file (a device, pipe or socket)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PrototxtError(f"{path}: file not found") from None
    except OSError as exc:  # permission denied, a name too long, an I/O error
        raise PrototxtError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Protobuf reads bytes: one that is not UTF-8 is fine in a comment or a string. As its \xNN escape it
        # stays that byte inside a string, and is an error anywhere else (a backslash), as to protobuf.
        text = raw.decode("utf-8", errors="backslashreplace")
    del raw
    return parse_text(text, str(path))


def iter_messages(msg: Message) -> Iterable[Message]:
    """``msg`` and every message inside it, depth first, without recursion (any depth)."""
    todo = [msg]
    while todo:
        current = todo.pop()
        yield current
        todo.extend(f.value for f in reversed(current.fields) if isinstance(f.value, Message))


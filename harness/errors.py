"""The harness's error types. The CLI turns each into one line on stderr and exit status 2.

This module imports nothing from the harness, so that every other module can import it.
"""

from __future__ import annotations

import unicodedata


def control_characters(text: str) -> list[str]:
    """The control characters of ``text`` (C0, DEL, C1, line and paragraph separators, lone surrogates),
    sorted: what no name that reaches a file name, a script or a console line may hold."""
    return sorted({c for c in text if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")})


def one_line(text: str) -> str:
    """A message as ONE printable line: control characters (a newline, an escape sequence from a damaged
    file or a command-line value) are shown escaped, never acted on by the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class HarnessError(Exception):
    """An error the user can act on: the message says what is wrong and where."""


class PrototxtError(HarnessError):
    """A prototxt that cannot be read: the message names file:line:column.

    ``loc`` is anything that prints as ``file:line:column`` (a :class:`harness.ir.textformat.Location`);
    only its text is kept, so that this module needs nothing from the reader.
    """

    def __init__(self, message: str, loc: object | None = None) -> None:
        self.where = None if loc is None else str(loc)
        self.reason = message
        super().__init__(f"{self.where}: {message}" if self.where is not None else message)


class GraphError(HarnessError):
    """A well-formed prototxt that does not describe a valid network (names the layer)."""


class UnknownLayerError(GraphError):
    """A layer type the analyzer has no handler for; ``reason`` says why, without the layer's name."""

    def __init__(self, message: str, reason: str = "") -> None:
        self.reason = reason or message
        super().__init__(message)


class BackendUnavailable(HarnessError):
    """A backend whose framework is not installed or cannot run on the requested device."""


class UnsupportedLayer(HarnessError):
    """A layer a backend cannot express: recorded as 'unsupported: <layer> <type>', other backends go on."""

    def __init__(self, layer: str, type_: str, backend: str, detail: str = "") -> None:
        self.layer, self.type, self.backend = layer, type_, backend
        super().__init__(f"unsupported: {layer} {type_}" + (f" ({detail})" if detail else ""))


class LayerTimingUnsupported(HarnessError):
    """An engine (or a mode of it) that cannot time its layers, e.g. compiled code: recorded 'unsupported'."""


class DeviceOutOfMemory(HarnessError):
    """The device ran out of memory for this configuration: recorded with status 'oom'."""


class BackendFailed(HarnessError):
    """A backend crashed, aborted or timed out for one configuration: recorded, the sweep goes on."""

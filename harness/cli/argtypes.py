"""Argument types shared by the subcommands, so that every command rejects bad values the same way."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from harness.errors import HarnessError, control_characters


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_int_list(text: str) -> list[int]:
    """``1,4,16`` -> [1, 4, 16]."""
    values = [positive_int(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def backend_names(spec: str) -> list[str]:
    """``pytorch,onnxruntime`` -> the names, each checked against the backend table."""
    from harness.backends.base import BACKENDS

    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise HarnessError(f"unknown backend(s) {', '.join(unknown) or '(none given)'} "
                           f"(known: {', '.join(sorted(BACKENDS))})")
    return names


def backend_list(text: str) -> list[str]:
    """``pytorch,onnxruntime`` as an argparse type: an empty or unknown name is a usage error (exit 2),
    never "every backend"."""
    try:
        return backend_names(text)
    except HarnessError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def backend_name(text: str) -> str:
    """One backend name (an argparse type), checked against the backend table."""
    names = backend_list(text)
    if len(names) != 1:
        raise argparse.ArgumentTypeError(f"expected one backend, got {text!r}")
    return names[0]


def positive_float(text: str) -> float:
    """A finite number > 0 (``nan``, ``inf`` and negatives are usage errors: no comparison can meet them)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def device_name(text: str) -> str:
    """``cpu`` or ``cuda:N``."""
    from harness.measure.devices import parse_device

    try:
        parse_device(text)
    except HarnessError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def output_path(text: str) -> Path:
    """A file or folder the harness writes (an argparse type): any name the filesystem takes except one
    with a control character (a line break, an escape: a paste error, and a name no log or report line
    could show as it is). Shell characters (``;``, ``$()``, quotes) are only characters here: no shell
    ever sees the path."""
    if not text or control_characters(text):
        raise argparse.ArgumentTypeError(f"expected a path without control characters, got {text!r}")
    return Path(text)

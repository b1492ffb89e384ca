"""The rich console commands print tables to."""

from __future__ import annotations

from rich.console import Console

PIPED_WIDTH = 160  # piped output has no terminal width to fit: wide enough not to truncate names


def stdout_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)

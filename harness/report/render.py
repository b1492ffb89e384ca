"""The report as a list of sections, rendered to Markdown and to one self-contained HTML file (inline CSS,
figures embedded as base64 SVG: no external resource of any kind)."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.report.figures import FigureFile


@dataclass(frozen=True)
class Table:
    name: str  # the CSV file stem under tables/
    title: str
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Missing:
    """Something the report would show if it had been measured."""

    what: str
    why: str


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    items: list[Table | FigureFile | Missing] = field(default_factory=list)


VERDICT_CLASS = {"reproduced": "ok", "not reproduced": "bad", "inconclusive": "unsure", "not measured here": "none",
                 "consistent by construction (fitted)": "fitted"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.78em;margin:.5em 0 1em;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.2em .45em;text-align:right;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}
td.text,th.text{text-align:left}
tr:nth-child(even) td{background:#fafafa}
.caption{font-size:.85em;color:#555;margin:.2em 0 .3em}
.missing{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;font-size:.9em}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
td.ok{background:#e3f5e1 !important}td.bad{background:#fbe3e3 !important}td.none{background:#eee !important}
td.unsure{background:#fff3cd !important}td.fitted{background:#e7eefb !important}
"""


def format_value(value: object) -> str:
    """Table cells: integers with thousands separators, 4 significant digits from 1 up, 3 below."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or value.is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}" if abs(value) >= 1 else f"{value:.3g}"


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    return [[format_value(v.item() if hasattr(v, "item") else v) for v in row]
            for row in frame.itertuples(index=False, name=None)]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(title: str, intro: list[str], sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for paragraph in intro:
        lines += [paragraph, ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.text:
            lines += [paragraph, ""]
        for item in section.items:
            if isinstance(item, Table):
                lines += [f"### {item.title}", ""]
                if item.caption:
                    lines += [item.caption, ""]
                cols = [str(c) for c in item.frame.columns]
                lines.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
                lines.append("|" + "|".join("---" for _ in cols) + "|")
                lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in _cells(item.frame)]
                lines += ["", f"CSV: `tables/{item.name}.csv`", ""]
            elif isinstance(item, FigureFile):
                lines += [f"### {item.title}", "", f"![{item.title}](figures/{item.png.name})", "",
                          f"{item.caption} (SVG: `figures/{item.svg.name}`)", ""]
            else:
                lines += [f"> **{item.what}: not measured here.** {item.why}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _html_table(table: Table) -> str:
    cols = [str(c) for c in table.frame.columns]
    text_cols = {i for i, c in enumerate(table.frame.columns) if not pd.api.types.is_numeric_dtype(table.frame[c])}
    head = "".join(f'<th class="{"text" if i in text_cols else ""}">{html.escape(c)}</th>' for i, c in enumerate(cols))
    body = []
    for row in _cells(table.frame):
        cells = []
        for i, value in enumerate(row):
            classes = ["text"] if i in text_cols else []
            if cols[i] == "verdict":
                classes.append(VERDICT_CLASS.get(value, ""))
            cells.append(f'<td class="{" ".join(classes)}">{html.escape(value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_document(title: str, intro: list[str], sections: list[Section]) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>"] + [f"<p>{html.escape(p)}</p>" for p in intro]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.text]
        for item in section.items:
            if isinstance(item, Table):
                parts.append(f"<h3>{html.escape(item.title)}</h3>")
                if item.caption:
                    parts.append(f'<p class="caption">{html.escape(item.caption)}</p>')
                parts.append(_html_table(item))
                parts.append(f'<p class="caption">CSV: tables/{html.escape(item.name)}.csv</p>')
            elif isinstance(item, FigureFile):
                svg = base64.b64encode(item.svg.read_bytes()).decode("ascii")
                parts.append(f'<figure><img alt="{html.escape(item.title)}" src="data:image/svg+xml;base64,{svg}">'
                             f"<figcaption class=\"caption\">{html.escape(item.caption)}</figcaption></figure>")
            else:
                parts.append(f'<p class="missing"><b>{html.escape(item.what)}: not measured here.</b> '
                             f"{html.escape(item.why)}</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}"
            f"</title><style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_tables(sections: list[Section], out: Path) -> list[Path]:
    folder = out / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for section in sections:
        for item in section.items:
            if isinstance(item, Table):
                path = folder / f"{item.name}.csv"
                item.frame.to_csv(path, index=False)
                written.append(path)
    return written

"""The report as an ordered list of sections, rendered to Markdown and to one self-contained HTML file (inline
CSS, figures embedded as base64 SVG, a table of contents with anchors, no script and no external resource of
any kind). Both follow the same order, item for item.

A :class:`Table` is written whole to ``tables/<name>.csv`` and shown either whole or in :class:`Part` s (one per
device, or fewer columns), so that no table is wider than the page. Every table must say, in a ``synthetic``
column, which of its rows hold a figure from a made-up record: the report shows that column only where some row
is synthetic, and then as a visible SYNTHETIC mark.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.report.figures import FigureFile

SYNTHETIC_COLUMN = "synthetic"
LONG_WORD = 24  # characters: a longer word in a cell may be broken anywhere


@dataclass(frozen=True)
class Link:
    """A cell (or line) that links to an anchor of the report."""

    text: str
    anchor: str


@dataclass(frozen=True)
class Part:
    """One displayed piece of a table (a device's column group, or a subset of the columns)."""

    title: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Table:
    name: str  # the CSV file stem under tables/
    title: str
    frame: pd.DataFrame  # what tables/<name>.csv holds; needs a 'synthetic' column
    caption: str = ""
    parts: tuple[Part, ...] = ()  # how it is shown, when not whole
    shown: bool = True  # False: only its CSV is named (its content is shown another way nearby)
    note: str = ""  # read after the table: how to read it

    def __post_init__(self) -> None:
        if SYNTHETIC_COLUMN not in self.frame.columns:
            raise ValueError(f"table {self.name} has no '{SYNTHETIC_COLUMN}' column: say which rows are made up")

    @property
    def anchor(self) -> str:
        return "table-" + slug(self.name)


@dataclass(frozen=True)
class Missing:
    """Something the report would show if it had been measured."""

    what: str
    why: str


@dataclass(frozen=True)
class Block:
    """A titled block of lines and bullets (a claim's evidence, what was measured), with its own anchor."""

    anchor: str
    title: str
    lines: tuple[str | Link, ...] = ()
    bullets: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (bullet, its sub-bullets)


Item = Table | FigureFile | Missing | Block


@dataclass
class Section:
    title: str
    anchor: str
    text: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)


VERDICT_CLASS = {"reproduced": "ok", "not reproduced": "bad", "inconclusive": "unsure", "not measured here": "none",
                 "consistent by construction (fitted)": "fitted"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1240px;
color:#222;line-height:1.4;padding:0 20px 2em}
h1{font-size:1.5em;margin:.6em 0 .3em}
h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em;margin:1.2em 0 .3em}h4{font-size:.95em;margin:1em 0 .2em}
p{margin:.35em 0}
.banner{background:#b00020;color:#fff;padding:.45em .8em;font-weight:600;border-radius:3px}
.meta{color:#555;font-size:.85em}
nav.toc{font-size:.82em;background:#f6f7f9;border:1px solid #e3e5e8;padding:.3em .7em;margin:.5em 0;
line-height:1.5}
nav.toc b{font-weight:600}nav.toc .sub a{color:#456}nav.toc .sep{color:#aaa}
ul{margin:.3em 0;padding-left:1.4em}li{margin:.1em 0}
table{border-collapse:collapse;font-size:.8em;margin:.3em 0 .9em}
th,td{border:1px solid #ddd;padding:.2em .4em;text-align:right;vertical-align:top;overflow-wrap:break-word}
td.brk{overflow-wrap:anywhere}
th{background:#f3f3f3}
td.text,th.text{text-align:left}td.num{white-space:nowrap}
tr:nth-child(even) td{background:#fafafa}
.caption{font-size:.85em;color:#555;margin:.2em 0 .3em}
.part{font-size:.85em;font-weight:600;margin:.6em 0 .1em}
.missing{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;font-size:.9em}
figure{margin:.8em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
td.ok{background:#e3f5e1 !important}td.bad{background:#fbe3e3 !important}td.none{background:#eee !important}
td.unsure{background:#fff3cd !important}td.fitted{background:#e7eefb !important}
td.synthetic{color:#b00020;font-weight:600}
"""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


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


def displayed(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as shown: the synthetic column only where some row is synthetic, its True as 'SYNTHETIC'."""
    if SYNTHETIC_COLUMN not in frame.columns:
        return frame
    marks = frame[SYNTHETIC_COLUMN].fillna(False).astype(bool)
    frame = frame.drop(columns=[SYNTHETIC_COLUMN])
    if marks.any():
        frame = frame.assign(**{SYNTHETIC_COLUMN: marks.map({True: "SYNTHETIC", False: ""})})
    return frame


def _pieces(table: Table) -> list[tuple[str, pd.DataFrame]]:
    return [(p.title, displayed(p.frame)) for p in table.parts] or [("", displayed(table.frame))]


def _value(v: object) -> object:
    return v.item() if hasattr(v, "item") else v


# ---- Markdown --------------------------------------------------------------------------------------


def _md_text(value: object) -> str:
    if isinstance(value, Link):
        return f"[{_md_escape(value.text)}](#{value.anchor})"
    return _md_escape(format_value(_value(value)))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor_md(anchor: str) -> str:
    return f'<a id="{anchor}"></a>'


def _md_table(frame: pd.DataFrame) -> list[str]:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(_md_escape(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_md_text(v) for v in row) + " |" for row in frame.itertuples(index=False, name=None)]
    return lines


def _md_toc(sections: list[Section]) -> list[str]:
    lines = ["Contents:", ""]
    for i, section in enumerate(sections, 1):
        subs = [f"[{_md_escape(t)}](#{a})" for t, a in _sub_entries(section)]
        lines.append(f"{i}. [{section.title}](#{section.anchor})" + (": " + " · ".join(subs) if subs else ""))
    return lines


def markdown(title: str, intro: list[str], sections: list[Section], banner: str = "") -> str:
    lines = [f"# {title}", ""]
    if banner:
        lines += [f"> **{banner}**", ""]
    for paragraph in intro:
        lines += [paragraph, ""]
    lines += [*_md_toc(sections), ""]
    for section in sections:
        lines += [_anchor_md(section.anchor), f"## {section.title}", ""]
        for paragraph in section.text:
            lines += [paragraph, ""]
        for item in section.items:
            if isinstance(item, Table):
                lines += [_anchor_md(item.anchor), f"### {item.title}", ""]
                if item.caption:
                    lines += [item.caption, ""]
                if item.shown:
                    for part_title, frame in _pieces(item):
                        if part_title:
                            lines += [f"**{_md_escape(part_title)}**", ""]
                        lines += [*_md_table(frame), ""]
                if item.note:
                    lines += [item.note, ""]
                lines += [f"CSV: `tables/{item.name}.csv`", ""]
            elif isinstance(item, FigureFile):
                lines += [_anchor_md(figure_anchor(item)), f"### {item.title}", "",
                          f"![{item.title}](figures/{item.png.name})", "",
                          f"{item.caption} (SVG: `figures/{item.svg.name}`)", ""]
            elif isinstance(item, Block):
                lines += [_anchor_md(item.anchor)]
                if item.title:
                    lines += [f"#### {item.title}", ""]
                for line in item.lines:
                    lines += [_md_text(line) if isinstance(line, Link) else line, ""]
                for bullet, subs in item.bullets:
                    lines.append(f"- {bullet}")
                    lines += [f"  - {s}" for s in subs]
                lines.append("")
            else:
                lines += [f"> **{item.what}: not measured here.** {item.why}", ""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"


# ---- HTML ------------------------------------------------------------------------------------------


def figure_anchor(item: FigureFile) -> str:
    return "fig-" + slug(item.name)


def _sub_entries(section: Section) -> list[tuple[str, str]]:
    """The titled items of a section, for the table of contents (evidence blocks are reached from the summary);
    a "Table III: " prefix said once for the entries that follow it."""
    out, said = [], ""
    for item in section.items:
        if isinstance(item, Table | FigureFile):
            title = _toc_title(item.title)
            prefix, sep, rest = title.partition(": ")
            if sep and prefix.startswith("Table"):
                title, said = (rest if prefix == said else title), prefix
            out.append((title, item.anchor if isinstance(item, Table) else figure_anchor(item)))
    return out


def _toc_title(title: str) -> str:
    """A title short enough for the contents: a figure's number, a device's id, no unit."""
    if title.startswith("Fig."):
        return title.split(":")[0]
    title = re.sub(r"(D\d+):.*$", r"\1", title)
    return re.sub(r"\s*\([^)]*\)$", "", title)


def _cell(value: object) -> str:
    if isinstance(value, Link):
        return f'<a href="#{html.escape(value.anchor)}">{html.escape(value.text)}</a>'
    return html.escape(format_value(_value(value)))


def _html_table(frame: pd.DataFrame, name: str) -> str:
    cols = [str(c) for c in frame.columns]
    text_cols = {i for i, c in enumerate(frame.columns) if not pd.api.types.is_numeric_dtype(frame[c])}
    head = "".join(f'<th class="{"text" if i in text_cols else "num"}">{html.escape(c)}</th>'
                   for i, c in enumerate(cols))
    body = []
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for i, value in enumerate(row):
            classes = ["text"] if i in text_cols else ["num"]
            shown = _cell(value)
            if any(len(word) > LONG_WORD for word in str(getattr(value, "text", value)).split()):
                classes.append("brk")  # a record key, a path, a revision: may break anywhere, not widen the page
            if cols[i] == "verdict" or cols[i].endswith(" verdict"):
                classes.append(next((c for v, c in VERDICT_CLASS.items() if str(value).startswith(v)), ""))
            if cols[i] == SYNTHETIC_COLUMN and value:
                classes.append("synthetic")
            cells.append(f'<td class="{" ".join(c for c in classes if c)}">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table data-table="{html.escape(name)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            "</table>")


def _html_toc(sections: list[Section]) -> str:
    """The contents as flowing text (a few lines, so that the summary stays on the first screen)."""
    items = []
    for i, section in enumerate(sections, 1):
        subs = " · ".join(f'<a href="#{a}">{html.escape(t)}</a>' for t, a in _sub_entries(section))
        items.append(f'<b>{i}. <a href="#{section.anchor}">{html.escape(section.title)}</a></b>'
                     + (f' <span class="sub">({subs})</span>' if subs else ""))
    return f'<nav class="toc" aria-label="contents">{" <span class=sep>|</span> ".join(items)}</nav>'


def _html_line(line: str | Link) -> str:
    return _cell(line) if isinstance(line, Link) else html.escape(line)


def html_document(title: str, intro: list[str], sections: list[Section], banner: str = "") -> str:
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if banner:
        parts.append(f'<p class="banner">{html.escape(banner)}</p>')
    parts += [f'<p class="meta">{html.escape(p)}</p>' for p in intro]
    parts.append(_html_toc(sections))
    for section in sections:
        parts.append(f'<h2 id="{section.anchor}">{html.escape(section.title)}</h2>')
        parts += [f"<p>{html.escape(p)}</p>" for p in section.text]
        for item in section.items:
            if isinstance(item, Table):
                parts.append(f'<h3 id="{item.anchor}">{html.escape(item.title)}</h3>')
                if item.caption:
                    parts.append(f'<p class="caption">{html.escape(item.caption)}</p>')
                if item.shown:
                    for part_title, frame in _pieces(item):
                        if part_title:
                            parts.append(f'<p class="part">{html.escape(part_title)}</p>')
                        parts.append(_html_table(frame, item.name))
                if item.note:
                    parts.append(f'<p class="caption">{html.escape(item.note)}</p>')
                parts.append(f'<p class="caption">CSV: tables/{html.escape(item.name)}.csv</p>')
            elif isinstance(item, FigureFile):
                svg = base64.b64encode(item.svg.read_bytes()).decode("ascii")
                parts.append(f'<h3 id="{figure_anchor(item)}">{html.escape(item.title)}</h3>')
                parts.append(f'<figure data-figure="{html.escape(item.name)}"><img alt="{html.escape(item.title)}" '
                             f'src="data:image/svg+xml;base64,{svg}"><figcaption class="caption">'
                             f"{html.escape(item.caption)}</figcaption></figure>")
            elif isinstance(item, Block):
                parts.append(f'<div id="{item.anchor}">')
                if item.title:
                    parts.append(f"<h4>{html.escape(item.title)}</h4>")
                parts += [f"<p>{_html_line(line)}</p>" for line in item.lines]
                if item.bullets:
                    lis = []
                    for bullet, subs in item.bullets:
                        inner = "".join(f"<li>{html.escape(s)}</li>" for s in subs)
                        lis.append(f"<li>{html.escape(bullet)}" + (f"<ul>{inner}</ul>" if inner else "") + "</li>")
                    parts.append(f"<ul>{''.join(lis)}</ul>")
                parts.append("</div>")
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

"""The HTML page of ``voxgate report``: figures (PNG, embedded as data URIs), tables and the
list of what could not be shown, per section."""

from __future__ import annotations

import base64
import dataclasses
import html
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from voxgate.core.fileio import atomic_write

from .plots import save_png

__all__ = ["ReportFigure", "ReportResult", "ReportBuilder", "pct"]


@dataclasses.dataclass
class ReportFigure:
    name: str  # file stem, e.g. "class_balance"
    section: str  # "Dataset" | "Training" | "Evaluation"
    title: str
    caption: str
    path: Path


@dataclasses.dataclass
class ReportResult:
    index: Path
    figures: list[ReportFigure]
    missing: list[str]  # what could not be shown, and why
    numbers: dict[str, Any]  # key numbers shown in the tables


class ReportBuilder:
    """Collects figures, tables and notes per section, then writes index.html."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.figures: list[ReportFigure] = []
        self.tables: dict[str, list[tuple[str, list[str], list[list[str]]]]] = {}
        self.missing: list[str] = []
        self.numbers: dict[str, Any] = {}

    def add(self, section: str, name: str, fig: Figure, title: str, caption: str) -> None:
        path = self.out_dir / f"{name}.png"
        save_png(fig, path)
        self.figures.append(ReportFigure(name, section, title, caption, path))

    def table(self, section: str, title: str, header: list[str], rows: list[list[Any]]) -> None:
        self.tables.setdefault(section, []).append(
            (title, header, [[str(c) for c in r] for r in rows])
        )

    def write_html(self, title: str, intro: str) -> Path:
        esc = html.escape
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{esc(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{esc(title)}</h1>",
            f"<p class='intro'>{esc(intro)}</p>",
        ]
        sections = ["Dataset", "Training", "Evaluation"]
        for section in sections:
            figs = [f for f in self.figures if f.section == section]
            tables = self.tables.get(section, [])
            if not figs and not tables:
                continue
            parts.append(f"<section><h2>{esc(section)}</h2>")
            for t_title, header, rows in tables:
                parts.append(f"<h3>{esc(t_title)}</h3><table><thead><tr>")
                parts += [f"<th>{esc(h)}</th>" for h in header]
                parts.append("</tr></thead><tbody>")
                for row in rows:
                    parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
                parts.append("</tbody></table>")
            for f in figs:
                data = base64.b64encode(f.path.read_bytes()).decode("ascii")
                parts.append(
                    f"<figure id='{esc(f.name)}'><h3>{esc(f.title)}</h3>"
                    f"<img src='data:image/png;base64,{data}' alt='{esc(f.title)}'>"
                    f"<figcaption>{esc(f.caption)}</figcaption></figure>"
                )
            parts.append("</section>")
        if self.missing:
            parts.append("<section><h2>Not shown</h2><ul class='missing'>")
            parts += [f"<li>{esc(m)}</li>" for m in self.missing]
            parts.append("</ul></section>")
        parts.append("</body></html>")
        index = self.out_dir / "index.html"
        atomic_write(index, "\n".join(parts))
        return index


_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;"
    "padding:0 1em;color:#222;line-height:1.45}h1{border-bottom:2px solid #D55E00}"
    "h2{margin-top:2em;border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f2f2f2}"
    "td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}"
    "img{max-width:100%;border:1px solid #eee}figcaption{font-size:.92em;color:#444;max-width:60em}"
    ".intro{color:#555}.missing li{color:#8a4b00}"
)


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "–"

"""report.html: the report's sections as ONE self-contained HTML document. Styles are inline and
figures are embedded as base64 `data:` URLs, so the file opens anywhere (an MLflow artifact
view, a mail attachment, file://) without the folder it was written in and without a network."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import List

from lab.tasks.report.records import Section

CSS = """
body { max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.5;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.5rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
nav ol { columns: 2; font-size: .95rem; }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table.report-table { border-collapse: collapse; font-size: .9rem; }
table.report-table th, table.report-table td { border: 1px solid #ddd; padding: .3rem .6rem; vertical-align: top; }
table.report-table th { background: #f3f3f3; text-align: left; position: sticky; top: 0; }
table.report-table tbody tr:nth-child(even) { background: #fafafa; }
table.report-table td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
"""
# What may sit between the numbers of a numeric cell: `0.912 ± 0.004`, `[0.90, 0.93]`, `1,204`.
NUMBER_SEPARATORS = re.compile(r"[\s,;\[\]()±]+")


def looks_numeric(cell: str) -> bool:
    """Whether a cell holds only numbers (with ±, brackets or a % sign): those align right."""
    tokens = [t.rstrip("%") for t in NUMBER_SEPARATORS.split(cell.replace("−", "-")) if t]
    try:
        [float(t) for t in tokens]  # nan and inf count: a missing value in a column of numbers
    except ValueError:
        return False
    return bool(tokens)


def anchor(index: int) -> str:
    return f"section-{index + 1}"


def table_html(section: Section) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in section.columns)
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(cell)}</td>'
            if looks_numeric(cell)
            else f"<td>{html.escape(cell)}</td>"
            for cell in row
        )
        + "</tr>"
        for row in section.rows
    )
    return (
        f'<div class="table-wrap"><table class="report-table">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def figure_html(folder: Path, name: str) -> str:
    """The PNG `folder / name` inline: the page must not depend on files beside it."""
    data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(name)}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
    )


def section_html(index: int, section: Section, folder: Path) -> str:
    parts = [f'<section id="{anchor(index)}">', f"<h2>{html.escape(section.heading)}</h2>"]
    parts += [f"<p>{html.escape(paragraph)}</p>" for paragraph in section.paragraphs]
    if section.columns:
        parts.append(table_html(section))
    parts += [figure_html(folder, name) for name in section.figures]
    return "\n".join([*parts, "</section>"])


def render_html(title: str, sections: List[Section], folder: Path) -> str:
    """The whole page: a title, a list of the sections linking to each, then every section
    (heading, paragraphs, table, figures read from `folder`)."""
    contents = "".join(
        f'<li><a href="#{anchor(i)}">{html.escape(s.heading)}</a></li>'
        for i, s in enumerate(sections)
    )
    body = "\n".join(section_html(i, s, folder) for i, s in enumerate(sections))
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<nav><ol>{contents}</ol></nav>\n{body}\n</body>\n</html>\n"
    )


def write_html(
    title: str, sections: List[Section], folder: Path, name: str = "report.html"
) -> Path:
    """Writes `render_html` to `folder / name` (UTF-8) and returns its path."""
    path = folder / name
    path.write_text(render_html(title, sections, folder), encoding="utf-8")
    return path

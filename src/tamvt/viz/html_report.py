"""The page of ``tamvt eval --html``: one self-contained HTML file (CSS inline, PNGs as base64) with
the score tables of the console report and the plots of :mod:`tamvt.viz.scores`, to share an evaluation."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tamvt.atomic import write_text_atomic
from tamvt.evaluation.evaluate import EvalResult
from tamvt.evaluation.report import TABLE_KEYS, TableRow, table_rows, to_json

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child { text-align: left; }
tr.global td { font-weight: bold; border-bottom: 2px solid #888; }
.meta { color: #666; font-size: 0.9em; }
.warn { color: #a33; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
"""


def image_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inlined as base64."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(rows: Sequence[TableRow], global_row: TableRow | None, first: str, count: str = "objects") -> str:
    heads = "".join(f"<th>{html.escape(k)}</th>" for k in TABLE_KEYS)
    out = [f"<table><tr><th>{html.escape(first)}</th><th>{count}</th>{heads}</tr>"]
    for row, attr in ([(global_row, ' class="global"')] if global_row else []) + [(r, "") for r in rows]:
        name, n, scores = row
        cells = "".join(f"<td>{'-' if math.isnan(scores[k]) else f'{100 * scores[k]:.1f}'}</td>" for k in TABLE_KEYS)
        out.append(f"<tr{attr}><td>{html.escape(name)}</td><td>{n}</td>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def eval_html(
    result: EvalResult,
    attributes: Mapping[str, Any] | None = None,
    *,
    title: str = "",
    details: Sequence[str] = (),
    dpi: int = 80,
) -> str:
    """The page: tables (%, as in the console report, and one row per object), warnings, J&F per
    sequence, J over time."""
    from tamvt.viz.figure import png_bytes
    from tamvt.viz.scores import object_curves, plot_j_over_time, plot_sequence_bars

    report = to_json(result, attributes)
    global_row, seq_rows, sub_rows = table_rows(result, attributes)
    name = title or f"tamvt eval ({result.protocol})"
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(name)}</h1>",
    ]
    parts += [f'<p class="meta">{html.escape(line)}</p>' for line in (f"protocol: {result.protocol}", *details)]
    parts += ["<h2>Scores (%)</h2>", _table(seq_rows, global_row, "sequence")]
    if sub_rows:
        parts += ["<h2>Subsets (%)</h2>", _table(sub_rows, None, "subset")]
    object_rows = [
        (f"{o.sequence} / {o.object}", len(o.frames), s)
        for o, s in zip(result.objects, result.object_scores, strict=True)
    ]
    if object_rows:
        parts += [
            "<details><summary>Per object (%)</summary>",
            _table(object_rows, None, "sequence / object", "frames"),
            "</details>",
        ]
    if result.warnings:
        parts += [
            "<h2>Warnings</h2><ul>",
            *(f'<li class="warn">{html.escape(w)}</li>' for w in result.warnings),
            "</ul>",
        ]
    if report["per_object"]:
        bars = png_bytes(plot_sequence_bars(report), dpi)
        parts += ["<h2>J&amp;F per sequence</h2>", image_tag(bars, "J&F per sequence")]
    curves = object_curves(report)
    if curves:
        parts.append("<h2>J over time</h2>")
        for seq, objs in curves.items():
            parts.append(image_tag(png_bytes(plot_j_over_time(seq, objs), dpi), f"{seq}: J over time"))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_page(path: str | Path, page: str) -> None:
    """Write the page atomically; the folder must exist (as for ``--json`` / ``--csv``)."""
    write_text_atomic(path, page, make_parents=False)

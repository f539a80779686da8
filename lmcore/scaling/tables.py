"""Experiment rows as a Markdown table or CSV text (what the CLI prints and the page offers)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any


def cell(v: Any) -> str:
    """A number as a short readable string; None and NaN as '–'."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4f}" if abs(v) < 100 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    return str(v)


def markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of `rows` (dicts sharing keys), in `columns` order if given."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """The rows as CSV (full precision; None and NaN as empty cells)."""
    if not rows:
        return ""
    cols = list(columns or rows[0])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None or (isinstance(r.get(c), float)
                                               and math.isnan(r.get(c))) else r.get(c)
                    for c in cols])
    return buf.getvalue()


def parse_markdown(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in `text` (as `markdown` writes them), each as dicts of cells."""
    blocks, cur = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    out = []
    for lines in blocks:
        head = [c.strip() for c in lines[0].strip("|").split("|")]
        out.append([dict(zip(head, (c.strip() for c in ln.strip("|").split("|")), strict=True))
                    for ln in lines[2:]])
    return out

"""Markdown and CSV tables of experiment rows: readable cells, and a round trip."""

from __future__ import annotations

import csv
import io
import math

from lmcore.scaling.tables import cell, csv_text, markdown, parse_markdown


def test_markdown_round_trip_and_cells():
    rows = [{"label": "1x16", "n": 3312, "bpc": 3.73214, "flops": 8.5e10, "ok": True},
            {"label": "2x48", "n": 56640, "bpc": math.nan, "flops": 1e12, "ok": False}]
    text = markdown(rows)
    (back,) = parse_markdown("intro\n\n" + text + "\n\nafter")
    assert back == [{"label": "1x16", "n": "3312", "bpc": "3.7321", "flops": "8.5e+10",
                     "ok": "yes"},
                    {"label": "2x48", "n": "56,640", "bpc": "–", "flops": "1e+12", "ok": "no"}]
    assert cell(None) == "–" and cell(0.0001234) == "0.000123" and cell(123.456) == "123.5"


def test_csv_keeps_full_precision_and_blanks_nan():
    rows = [{"a": 1 / 3, "b": math.nan, "c": None}]
    (r,) = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert float(r["a"]) == 1 / 3 and r["b"] == "" and r["c"] == ""

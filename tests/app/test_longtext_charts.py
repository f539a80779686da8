"""Long-text figures: overlaps highlighted exactly, text escaped, figures built from snapshots."""

from __future__ import annotations

import re

from lmcore.app.longtext_charts import chunks_html, memory_figure, strategy_figure, stride_figure
from lmcore.longtext.chunking import locate_chunks, split_text


def test_overlaps_are_highlighted_exactly_and_text_is_escaped():
    text = "<b>abc</b> def ghi jkl mno"
    chunks = locate_chunks(text, ["<b>abc</b> def", "def ghi jkl", "jkl mno"])
    html = chunks_html(text, chunks)
    overlaps = re.findall(r'title="overlap of chunks (\d) and (\d)"[^>]*>([^<]*)</span>', html)
    assert overlaps == [("0", "1", "def"), ("1", "2", "jkl")]
    assert "&lt;b&gt;abc&lt;/b&gt;" in html and "<b>abc" not in html
    singles = re.findall(r'title="chunk (\d)"', html)
    assert singles == ["0", "1", "2"]


def test_long_texts_are_cut_with_a_note():
    text = "word " * 2000
    html = chunks_html(text, split_text(text, 100, 10, unit="chars"), limit=500)
    assert "more characters not shown" in html and html.count("word") < 200


def test_figures_from_job_snapshots():
    assert memory_figure({}) is None
    snap = {"rss": {"strategy": ["disjoint", "disjoint", "sliding S=8"], "t": [0.0, 0.1, 0.2],
                    "mb": [100.0, 101.0, 102.0]},
            "windows": {"strategy": ["disjoint"], "index": [0], "t": [0.1], "rss_mb": [101.0],
                        "bits_per_char": [2.5], "tokens": [64]}}
    fig = memory_figure(snap)
    assert [t.name for t in fig.data] == ["disjoint RSS", "sliding S=8 RSS",
                                          "disjoint window ends"]
    assert fig.layout.yaxis.rangemode == "tozero"  # noise drawn at the process's scale
    rows = [{"strategy": "disjoint", "window": 64, "stride": 64, "bits_per_char": 2.5,
             "peak_extra_mb": 1.0, "peak_rss_mb": 400.0, "seconds": 0.2, "coverage": 1.0},
            {"strategy": "sliding", "window": 64, "stride": 8, "bits_per_char": 2.2,
             "peak_extra_mb": 1.1, "peak_rss_mb": 401.0, "seconds": 0.9, "coverage": 1.0},
            {"strategy": "truncation", "window": 64, "stride": None, "bits_per_char": 2.0,
             "peak_extra_mb": 0.1, "peak_rss_mb": 399.0, "seconds": 0.01, "coverage": 0.015}]
    fig = strategy_figure(rows)
    assert len(fig.data) == 3
    assert list(fig.data[0].x) == ["disjoint W=64", "sliding S=8", "truncation W=64"]
    # the bits/char bars say how much of the text each strategy scored
    assert list(fig.data[0].text) == ["100% of text", "100% of text", "1.5% of text"]
    rows = rows[:2]
    fig = stride_figure(rows)
    assert list(fig.data[0].x) == [8, 64] and list(fig.data[0].y) == [2.2, 2.5]

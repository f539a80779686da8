"""Log axes label real values: no plotly minor digits ('2 3 4 5' beside '10')."""

from __future__ import annotations

import plotly.graph_objects as go

from lmcore.app.attention_charts import sweep_figure
from lmcore.app.charts import line_chart, log_ticks
from lmcore.app.ngram_charts import tradeoff_figure


def test_wide_ranges_get_powers_of_ten_and_narrow_ones_real_steps():
    assert log_ticks([1, 1000]) == ([1, 10, 100, 1000], ["1", "10", "100", "1,000"])
    vals, text = log_ticks([0.002, 0.5])
    assert text[:3] == ["0.002", "0.005", "0.01"] and vals[-1] == 0.5
    vals, text = log_ticks([3.1, 4.5])  # inside one decade: every label is a value in range
    assert len(vals) >= 2 and all(3.1 <= v <= 4.5 for v in vals)
    assert text == [f"{v:g}" for v in vals]
    assert {"100k", "1M"} <= set(log_ticks([12_000, 3_000_000])[1])
    assert log_ticks([0, -1, float("nan")]) == ([], [])


def test_sampled_values_are_the_ticks():
    assert log_ticks([256, 512, 1024, 4096], exact=True)[1] == ["256", "512", "1,024", "4,096"]


def _axes(fig: go.Figure) -> list:
    return [getattr(fig.layout, k) for k in fig.layout if k.startswith(("xaxis", "yaxis"))]


def test_every_log_axis_of_the_charts_has_explicit_tick_labels():
    figs = [
        line_chart([1, 10, 100], {"a": [3.0, 4.0, 5.0]}, "t", "x", "y", log_x=True, log_y=True),
        tradeoff_figure([{"smoothing": "kn", "order": n, "split": "held-out",
                          "perplexity": p, "zero_prob": 0} for n, p in [(1, 30), (2, 9)]],
                        "perplexity", "p", "perplexity", log_y=True),
        sweep_figure({"naive": {"T": [64, 128, 256], "fwdbwd_ms": [1, 3, 9],
                                "fwdbwd_mib": [2, 8, 30]}}),
    ]
    for fig in figs:
        logs = [a for a in _axes(fig) if a.type == "log"]
        assert logs
        for axis in logs:
            assert axis.tickvals and len(axis.ticktext) == len(axis.tickvals)
    assert list(figs[2].layout.xaxis.ticktext) == ["64", "128", "256"]


def test_turn_summary_reads_the_trade_off_off_the_numbers():
    from lmcore.app.ngram_charts import turn_summary

    def rows(s, ppl):
        return [{"smoothing": s, "order": n, "split": "held-out", "perplexity": p}
                for n, p in enumerate(ppl, start=1)]

    text = turn_summary(rows("addk", [25.4, 10.7, 8.1, 10.8]) + rows("kn", [25.4, 5.5, 3.4, 3.3])
                        + rows("mle", [25.0, 9.0, float("inf")])
                        + rows("stupid", [25.0, 9.0, 5.0]))
    assert "**add-k**: best at n = 3 (8.1), then turns back up: 10.8 at n = 4 (+33.3%)" in text
    assert "**Kneser-Ney**: levels off: n = 3 → 4 gained only 2.9% (3.4 → 3.3)" in text
    assert "**MLE**: best at n = 2 (9), infinite from n = 3 on" in text
    assert "**stupid backoff**: still falling at n = 3 (9 → 5, −44%)" in text
    assert "infinite at every n" in turn_summary(rows("mle", [float("inf")] * 2))

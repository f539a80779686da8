"""Training figures: the dashboard shows every series, thins long ones, skips non-finite points."""

from __future__ import annotations

import math

from lmcore.app.train_charts import attention_heatmap, grad_norm_bars, training_dashboard


def _snap(n):
    return {
        "train": {"step": list(range(1, n + 1)), "loss": [3.0] * (n - 1) + [math.nan],
                  "tokens_per_s": [1000.0] * n, "elapsed_s": [0.1 * i for i in range(n)],
                  "saved_mb": [1.5] + [None] * (n - 1)},
        "eval": {"step": [n], "train_loss": [2.5], "valid_loss": [2.7]},
        "grad": {"step": list(range(1, n + 1)), "layer 0": [0.5] * n, "wte": [0.1] * n},
        "memory": {"t": [0.0, 0.05], "rss_mb": [300.0, 301.0]},
    }


def test_dashboard_has_every_series():
    fig = training_dashboard(_snap(10))
    names = [t.name for t in fig.data]
    assert names[:3] == ["train batch", "train (eval)", "validation"]
    assert {"layer 0", "wte", "process RSS", "saved for backward"} <= set(names)
    assert len(fig.data[0].x) == 9  # the NaN loss is left out, not drawn as a gap or a spike


def test_long_series_are_thinned_and_keep_the_last_point():
    fig = training_dashboard(_snap(10_001))
    x = fig.data[0].x
    assert len(x) <= 2001 and x[-1] == 10_000 and x[0] == 1


def test_empty_snapshot_draws_an_empty_dashboard():
    assert len(training_dashboard({}).data) >= 3


def test_other_figures():
    assert grad_norm_bars({"a": {"layer 0": 0.0}}).data[0].y[0] > 0  # log axis needs > 0
    fig = attention_heatmap([[1.0, 0.0], [0.5, 0.5]], ["[BOS]", "a"], "layer 0, head 0")
    assert list(fig.data[0].x) == ["0:[BOS]", "1:a"]

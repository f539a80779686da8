"""Training figures: the dashboard shows every series, thins long ones, skips non-finite points."""

from __future__ import annotations

import math

import torch

from lmcore.app.train_charts import (
    attention_heatmap,
    attention_maps,
    generated_html,
    grad_norm_bars,
    training_dashboard,
)
from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig


def _snap(n):
    return {
        "train": {"step": list(range(1, n + 1)), "loss": [3.0] * (n - 1) + [math.nan],
                  "tokens_per_s": [1000.0] * n, "elapsed_s": [0.1 * i for i in range(n)],
                  "saved_mb": [1.5] + [None] * (n - 1), "state_mb": [0.8] * n},
        "eval": {"step": [n], "train_loss": [2.5], "valid_loss": [2.7]},
        "grad": {"step": list(range(1, n + 1)), "layer 0": [0.5] * n, "wte": [0.1] * n},
        "memory": {"t": [0.0, 0.05], "rss_mb": [300.0, 301.0]},
    }


def test_dashboard_has_every_series():
    fig = training_dashboard(_snap(10))
    names = [t.name for t in fig.data]
    assert names[:3] == ["train batch", "train (eval)", "validation"]
    assert {"layer 0", "wte", "process RSS (right axis)", "activations saved for backward",
            "weights + gradients + optimizer state"} <= set(names)
    assert len(fig.data[0].x) == 9  # the NaN loss is left out, not drawn as a gap or a spike
    # what training holds has its own axis from zero; the process's RSS sits on another
    own = {t.name: t.yaxis for t in fig.data}
    assert own["activations saved for backward"] == own["weights + gradients + optimizer state"]
    assert own["process RSS (right axis)"] == "y5" != own["activations saved for backward"]
    assert fig.layout.yaxis5.overlaying == "y4" and fig.layout.yaxis4.rangemode == "tozero"


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


def test_cuda_peak_is_plotted_only_when_measured():
    snap = _snap(4)
    assert "CUDA peak" not in [t.name for t in training_dashboard(snap).data]  # on a CPU
    snap["train"]["cuda_peak_mb"] = [100.0, 120.0, None, 125.0]
    peak = [t for t in training_dashboard(snap).data if t.name == "CUDA peak"]
    assert len(peak) == 1 and list(peak[0].y) == [100.0, 120.0, 125.0]
    assert list(peak[0].x) == [0.0, 0.1, 0.30000000000000004]  # seconds, as the RSS line
    assert peak[0].xaxis == "x4" and peak[0].yaxis == "y4"  # the memory panel


def test_generated_html_marks_each_token_with_its_probability():
    html = generated_html("x<", [("a", 0.5), ("\n", 0.25)])
    assert 'title="p = 0.500 (1.0 bits)"' in html and 'title="p = 0.250 (2.0 bits)"' in html
    assert html.index("x&lt;") < html.index(">a</span>")  # the prompt first, escaped
    assert "rgba(239,68,68,0.500)" in html and "rgba(239,68,68,1.000)" in html


def test_attention_maps_are_causal_distributions_per_layer_and_head():
    tok = train_tokenizer("char", "hello world, hello attention")
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=8, n_layer=2,
                                          n_head=2, n_embd=16))
    model.train()
    maps, tokens = attention_maps(model, tok, "hello world")
    assert model.training  # put back as it was
    assert len(maps) == 2 and tokens[0] == "[BOS]" and len(tokens) == 8  # cut at the context
    for w in maps:
        assert w.shape == (2, 8, 8)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 8))
        assert float(w.triu(1).abs().max()) == 0.0  # no query attends to a later key
    assert len(attention_maps(model, tok, "hello world", max_tokens=4)[1]) == 4

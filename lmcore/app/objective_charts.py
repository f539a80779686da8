"""Figures and tables for the Objectives page: losses, the three masks, ranks, fair numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from lmcore.models.generate import CacheTiming
from lmcore.models.masks import build_mask
from lmcore.train.fair_metrics import Metric, table_rows

COLORS = {"causal": "#2563eb", "prefix": "#16a34a", "masked": "#dc2626", "encdec": "#9333ea"}
MARGIN = dict(l=40, r=10, t=50, b=40)


def fair_table(metrics: list[Metric]) -> pd.DataFrame:
    """The fair-metrics table: one row per metric, only the columns some row fills."""
    return pd.DataFrame(table_rows(metrics))


def loss_curves(snapshots: dict[str, dict[str, dict[str, list]]]) -> go.Figure:
    """Training loss of each objective against step on one chart (held-out loss dashed)."""
    fig = go.Figure()
    for name, snap in snapshots.items():
        train = snap.get("train", {})
        if train.get("step"):
            fig.add_trace(go.Scatter(x=train["step"], y=train["loss"], mode="lines",
                                     name=f"{name} (train)",
                                     line=dict(color=COLORS.get(name))))
        ev = snap.get("eval", {})
        if ev.get("step"):
            fig.add_trace(go.Scatter(x=ev["step"], y=ev["valid_loss"], mode="lines+markers",
                                     name=f"{name} (held-out)",
                                     line=dict(color=COLORS.get(name), dash="dash")))
    fig.update_layout(title="Training loss per target token (each objective's own targets)",
                      xaxis_title="step", yaxis_title="loss (nats per target token)",
                      height=380, margin=MARGIN)
    return fig


def mask_heatmaps(T: int, prefix_len: int, chosen: list[int] | None = None) -> go.Figure:
    """The causal, prefix and bidirectional attention masks (query rows × key columns)."""
    masks = {
        "causal": build_mask(T, T, causal=True),
        f"prefix (P={prefix_len})": build_mask(T, T, causal=True,
                                               prefix_len=torch.tensor([prefix_len])),
        "bidirectional (masked LM)": torch.ones(1, 1, T, T, dtype=torch.bool),
    }
    fig = make_subplots(rows=1, cols=3, subplot_titles=list(masks), horizontal_spacing=0.06)
    for i, m in enumerate(masks.values()):
        z = m[0, 0].int().numpy()
        fig.add_trace(go.Heatmap(z=z, colorscale=[[0, "#f3f4f6"], [1, "#1d4ed8"]],
                                 showscale=False, xgap=1, ygap=1, zmin=0, zmax=1,
                                 hovertemplate="query %{y} → key %{x}: %{z}<extra></extra>"),
                      row=1, col=i + 1)
        fig.update_yaxes(autorange="reversed", title_text="query position" if i == 0 else None,
                         row=1, col=i + 1)
        fig.update_xaxes(title_text="key position", row=1, col=i + 1)
    fig.update_layout(height=340, margin=MARGIN,
                      title="Who may attend to whom (blue = visible)")
    return fig


def effective_rank_chart(ranks: dict[str, np.ndarray], T: int) -> go.Figure:
    """Mean effective rank of attention per layer (bars per model), heads as hover detail."""
    fig = go.Figure()
    for name, r in ranks.items():
        layers = [f"layer {i}" for i in range(r.shape[0])]
        heads = [", ".join(f"{v:.1f}" for v in row) for row in r]
        fig.add_trace(go.Bar(name=name, x=layers, y=r.mean(1), customdata=heads,
                             marker_color=COLORS.get(name.split()[0]),
                             hovertemplate="%{x}: %{y:.2f} (heads: %{customdata})"
                                           "<extra>" + name + "</extra>"))
    fig.add_hline(y=T, line_dash="dot", annotation_text=f"full rank = {T}")
    fig.update_layout(barmode="group", height=360, margin=MARGIN,
                      title="Effective rank of attention matrices (mean over heads and texts)",
                      yaxis_title="exp(entropy of singular values)")
    return fig


def kv_cache_figure(timing: CacheTiming) -> go.Figure:
    """Per-token time with and without the KV cache against the length of the text read, and
    the speed-up for the first n tokens (it grows with n while the text fits the context)."""
    P = timing.prompt_tokens
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "time per generated token", "speed-up for the first n tokens"))
    for label, colour in (("no cache", "#dc2626"), ("cache", "#2563eb")):
        secs = timing.seconds.get(label, [])
        fig.add_trace(go.Scatter(
            x=[P + i for i in range(len(secs))], y=[1000 * s for s in secs], mode="lines",
            name="with the KV cache" if label == "cache" else "without a cache",
            line=dict(color=colour),
            hovertemplate="reading %{x} tokens: %{y:.2f} ms<extra>" + label + "</extra>"),
            row=1, col=1)
    n = len(timing.seconds.get("cache", []))
    ns = list(range(1, n + 1))
    fig.add_trace(go.Scatter(x=ns, y=[timing.speedup(k) for k in ns], mode="lines",
                             name="speed-up", line=dict(color="#16a34a"), showlegend=False,
                             hovertemplate="first %{x} tokens: %{y:.2f}×<extra></extra>"),
                  row=1, col=2)
    fig.add_hline(y=1, line_dash="dot", line_color="gray", row=1, col=2)
    inside = timing.within_context()
    if inside < n:  # past the context both paths re-encode the last window
        fig.add_vline(x=P - 1 + inside, line_dash="dash", line_color="gray", row=1, col=1,
                      annotation_text=f"context {timing.context}")
        fig.add_vline(x=inside, line_dash="dash", line_color="gray", row=1, col=2)
    fig.update_xaxes(title_text="tokens read at this step (prompt + generated)", row=1, col=1)
    fig.update_xaxes(title_text="tokens generated n", row=1, col=2)
    fig.update_yaxes(title_text="ms per token (median of the runs)", rangemode="tozero",
                     row=1, col=1)
    fig.update_yaxes(title_text="time without ÷ time with the cache", rangemode="tozero",
                     row=1, col=2)
    fig.update_layout(height=360, margin=MARGIN, legend=dict(orientation="h", y=-0.25))
    return fig

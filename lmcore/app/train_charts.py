"""Plotly figures for training: the live 2x2 dashboard, dynamics comparisons, attention."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

_M = dict(l=50, r=10, t=60, b=40)


def _finite(xs: Sequence, ys: Sequence, max_points: int = 2000) -> tuple[list, list]:
    """Points with a finite y, thinned to at most `max_points` (the last one always kept)."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=False)
           if y is not None and isinstance(y, int | float) and math.isfinite(y)]
    if len(pts) > max_points:
        every = -(-len(pts) // max_points)
        pts = pts[::every] + ([pts[-1]] if (len(pts) - 1) % every else [])
    return [p[0] for p in pts], [p[1] for p in pts]


def training_dashboard(snap: dict[str, dict[str, list]], title: str = "") -> go.Figure:
    """Loss (train batches, held-out evals), tokens/s, grad norm per layer, memory."""
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.1, vertical_spacing=0.16,
                        subplot_titles=("loss (nats/token)", "throughput (tokens/s)",
                                        "gradient norm per layer", "memory (MiB)"))
    tr = snap.get("train", {})
    ev = snap.get("eval", {})
    steps = tr.get("step", [])
    x, y = _finite(steps, tr.get("loss", []))
    fig.add_trace(go.Scatter(x=x, y=y, name="train batch", mode="lines", line=dict(width=1)),
                  1, 1)
    for key, name in (("train_loss", "train (eval)"), ("valid_loss", "validation")):
        x, y = _finite(ev.get("step", []), ev.get(key, []))
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers"), 1, 1)
    x, y = _finite(steps, tr.get("tokens_per_s", []))
    fig.add_trace(go.Scatter(x=x, y=y, name="tokens/s", mode="lines", showlegend=False), 1, 2)
    gn = snap.get("grad", {})
    for key in gn:
        if key != "step":
            x, y = _finite(gn["step"], gn[key])
            fig.add_trace(go.Scatter(x=x, y=y, name=key, mode="lines", legendgroup="grad"),
                          2, 1)
    mem = snap.get("memory", {})
    x, y = _finite(mem.get("t", []), mem.get("rss_mb", []))
    fig.add_trace(go.Scatter(x=x, y=y, name="process RSS", mode="lines"), 2, 2)
    x, y = _finite(steps, tr.get("saved_mb", []))
    if x:
        t_of = dict(zip(steps, tr.get("elapsed_s", []), strict=False))
        fig.add_trace(go.Scatter(x=[t_of.get(s) for s in x], y=y, mode="markers",
                                 name="saved for backward"), 2, 2)
    fig.update_yaxes(type="log", row=2, col=1)
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_xaxes(title_text="step", row=1, col=2)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_xaxes(title_text="seconds", row=2, col=2)
    fig.update_layout(height=620, margin=_M, title=title or None,
                      legend=dict(orientation="h", y=-0.12))
    return fig


def comparison_losses(snap: dict[str, dict[str, list]], title: str) -> go.Figure:
    """One training-loss curve per variant (series named after the variant)."""
    fig = go.Figure()
    for label, cols in snap.items():
        if label.startswith("_"):
            continue
        x, y = _finite(cols.get("step", []), cols.get("loss", []))
        fig.add_trace(go.Scatter(x=x, y=y, name=label, mode="lines"))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="training loss (nats/token)",
                      height=380, margin=_M)
    return fig


def grad_norm_bars(per_variant: dict[str, dict[str, float]]) -> go.Figure:
    """Mean gradient norm of each layer, one bar group per variant, on a log scale."""
    fig = go.Figure()
    for label, norms in per_variant.items():
        fig.add_trace(go.Bar(x=list(norms), y=[max(v, 1e-12) for v in norms.values()],
                             name=label))
    fig.update_layout(barmode="group", title="Gradient norm per layer (mean over steps)",
                      yaxis_title="‖g‖ (log scale)", height=380, margin=_M)
    fig.update_yaxes(type="log")
    return fig


def attention_heatmap(weights: Sequence[Sequence[float]], tokens: Sequence[str],
                      title: str) -> go.Figure:
    """(T, T) attention weights: row = query token, column = key token."""
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Heatmap(z=weights, x=labels, y=labels, colorscale="Blues", zmin=0,
                               hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}"
                                             "<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="key (attended to)", yaxis_title="query",
                      height=520, margin=_M)
    fig.update_yaxes(autorange="reversed")
    return fig

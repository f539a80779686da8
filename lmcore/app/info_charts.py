"""Plotly figures for the Information page: conditional entropy, coders, learning curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from lmcore.app.charts import log_axis
from lmcore.info.comparison import CoderRow, CurvePoint
from lmcore.info.entropy import ConditionalEntropy

_MARGIN = dict(l=50, r=10, t=50, b=45)


def _rate_line(fig: go.Figure, rate: float | None, label: str = "true entropy rate") -> None:
    if rate is not None:
        fig.add_hline(y=rate, line_dash="dot", line_color="black",
                      annotation_text=f"{label} {rate:.4f}", annotation_position="bottom right")


def conditional_figure(ce: ConditionalEntropy, rate: float | None = None) -> go.Figure:
    """Plug-in H(X_t | previous k) against k, hover showing how well each order is sampled."""
    fig = go.Figure(go.Scatter(
        x=ce.orders.tolist(), y=ce.bits.tolist(), mode="lines+markers",
        name="plug-in H(X_t | previous k)",
        customdata=list(zip(ce.contexts.tolist(), ce.mean_count.tolist(), strict=True)),
        hovertemplate=("k = %{x}: %{y:.4f} bits<br>%{customdata[0]:,} distinct contexts, "
                       "%{customdata[1]:.1f} positions each<extra></extra>")))
    _rate_line(fig, rate)
    fig.update_layout(title="Conditional entropy against context order", height=360,
                      xaxis_title="context order k (symbols)",
                      yaxis_title="bits per symbol", margin=_MARGIN)
    fig.update_xaxes(dtick=1)
    return fig


def coders_figure(rows: Sequence[CoderRow]) -> go.Figure:
    """Bits per character of every coder, with the models' cross-entropy (coded rows only)."""
    rows = [r for r in rows if r.error is None]
    names = [r.coder for r in rows]
    fig = go.Figure([
        go.Bar(name="coded file", x=names, y=[r.bits_per_char for r in rows],
               hovertemplate="%{x}: %{y:.4f} bits/char<extra>coded</extra>"),
        go.Bar(name="model cross-entropy", x=names,
               y=[r.cross_entropy if r.cross_entropy is not None else None for r in rows],
               hovertemplate="%{x}: %{y:.4f} bits/char<extra>cross-entropy</extra>"),
    ])
    fig.update_layout(barmode="group", title="Bits per character on the held-out text",
                      yaxis_title="bits per character", height=380, margin=_MARGIN)
    return fig


def learning_figure(points: Sequence[CurvePoint], rate: float | None) -> go.Figure:
    """Cross-entropy (solid) and real code length (dashed) per order against training size."""
    fig = go.Figure()
    for n in sorted({p.order for p in points}):
        pts = sorted((p for p in points if p.order == n), key=lambda p: p.train_chars)
        x = [p.train_chars for p in pts]
        fig.add_trace(go.Scatter(x=x, y=[p.cross_entropy for p in pts], mode="lines+markers",
                                 name=f"{n}-gram cross-entropy", legendgroup=str(n)))
        fig.add_trace(go.Scatter(x=x, y=[p.code_bits_per_char for p in pts],
                                 mode="lines+markers", line_dash="dash",
                                 name=f"{n}-gram code length", legendgroup=str(n),
                                 customdata=[p.code_cross_entropy for p in pts],
                                 hovertemplate="%{x:,} training chars: coded %{y:.4f} "
                                               "bits/char; the model's cross-entropy on the "
                                               "same slice %{customdata:.4f}<extra></extra>"))
    _rate_line(fig, rate)
    fig.update_layout(title="Approaching the entropy rate as training text grows", height=400,
                      xaxis_title="training characters", yaxis_title="bits per character",
                      margin=_MARGIN)
    fig.update_xaxes(**log_axis([p.train_chars for p in points], exact=True,
                                title_text="training characters (log scale)"))
    return fig


def convergence_figure(series: Mapping[str, Sequence], rate: float | None) -> go.Figure:
    """A Transformer's held-out cross-entropy (solid) and real code length (dashed) against
    training steps; `series` holds ConvergencePoint columns (a job's logged series)."""
    steps = list(series.get("step", []))
    fig = go.Figure([
        go.Scatter(x=steps, y=list(series.get("cross_entropy", [])), mode="lines+markers",
                   name="held-out cross-entropy",
                   hovertemplate="step %{x}: %{y:.4f} bits/char<extra>cross-entropy</extra>"),
        go.Scatter(x=steps, y=list(series.get("code_bits_per_char", [])),
                   mode="lines+markers", line_dash="dash",
                   name="range-coded length (of a held-out slice)",
                   customdata=list(series.get("code_cross_entropy", [])) or None,
                   hovertemplate="step %{x}: %{y:.4f} bits/char; the model's cross-entropy "
                                 "on the same slice %{customdata:.4f}<extra>coded</extra>"),
    ])
    _rate_line(fig, rate)
    fig.update_layout(title="A Transformer approaching the entropy rate as it trains",
                      height=400, xaxis_title="training steps",
                      yaxis_title="bits per character", margin=_MARGIN)
    return fig

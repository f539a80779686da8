"""Plotly figure builders shared by the pages (hoverable, with units in the axis titles)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go

from lmcore.data.frequency import Frequency


def frequency_bar(freq: Frequency, title: str) -> go.Figure:
    """Bar chart of the most frequent items with their share of all items."""
    fig = go.Figure(go.Bar(
        x=[f"{s}" for s in freq.items], y=freq.counts,
        customdata=[100 * s for s in freq.shares],
        hovertemplate="%{x}: %{y:,} (%{customdata:.2f}%)<extra></extra>",
    ))
    fig.update_layout(title=f"{title} ({freq.distinct:,} distinct of {freq.total:,})",
                      xaxis_title="item", yaxis_title="count", height=340,
                      margin=dict(l=40, r=10, t=50, b=40))
    fig.update_xaxes(type="category")
    return fig


def grouped_bars(categories: Sequence[str], series: dict[str, Sequence[float]], title: str,
                 yaxis: str) -> go.Figure:
    """One bar group per category, one bar per series."""
    fig = go.Figure([go.Bar(name=name, x=list(categories), y=list(values))
                     for name, values in series.items()])
    fig.update_layout(barmode="group", title=title, yaxis_title=yaxis, height=340,
                      margin=dict(l=40, r=10, t=50, b=40))
    return fig


def line_chart(x: Sequence[float], series: dict[str, Sequence[float]], title: str,
               xaxis: str, yaxis: str, log_x: bool = False, log_y: bool = False) -> go.Figure:
    """Several lines against one x axis, with markers so single points are visible."""
    fig = go.Figure([go.Scatter(x=list(x), y=list(ys), mode="lines+markers", name=name)
                     for name, ys in series.items()])
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis, height=360,
                      margin=dict(l=40, r=10, t=50, b=40))
    if log_x:
        fig.update_xaxes(**log_axis(x, exact=True))
    if log_y:
        fig.update_yaxes(**log_axis(v for ys in series.values() for v in ys))
    return fig


def _tick_text(v: float) -> str:
    """A tick label people read at a glance: 0.01, 2, 300, 4,096, 20k, 3M."""
    if v >= 10_000:
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if v >= div:
                return f"{v / div:g}{suffix}"
    if v >= 1:
        return f"{v:,.0f}" if v == round(v) else f"{v:g}"
    return f"{v:.3g}"


def log_ticks(values: Iterable[float], exact: bool = False) -> tuple[list[float], list[str]]:
    """Tick positions and labels for a log axis over `values`: real values, never plotly's
    minor labels ('2 3 4 5' printed next to '10').

    `exact`: one tick per distinct value (a sweep's sampled T or strides). Otherwise powers
    of ten over a wide range; 1-2-5 steps, then every digit, over narrower ones.
    """
    vals = sorted({float(v) for v in values if v is not None and math.isfinite(v) and v > 0})
    if not vals:
        return [], []
    if exact and len(vals) <= 16:
        return vals, [_tick_text(v) for v in vals]
    lo, hi = vals[0], vals[-1]
    k_lo, k_hi = math.floor(math.log10(lo)), math.floor(math.log10(hi))
    inside: list[float] = []
    for mults in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9),
                  (1, 1.2, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0**k for k in range(k_lo, k_hi + 1) for m in mults]
        inside = [t for t in ticks if lo / 1.0001 <= t <= hi * 1.0001]
        if len(inside) >= 3:
            break
    if len(inside) < 2:  # a sliver of a decade: its two ends, to two significant digits
        inside = sorted({float(f"{lo:.2g}"), float(f"{hi:.2g}")})
    inside = [float(f"{t:.6g}") for t in inside]
    return inside, [_tick_text(t) for t in inside]


def log_axis(values: Iterable[float], exact: bool = False, **extra) -> dict:
    """Axis settings for a log axis whose tick labels are real values (see `log_ticks`)."""
    tickvals, ticktext = log_ticks(values, exact)
    axis = dict(type="log", **extra)
    if tickvals:
        axis.update(tickvals=tickvals, ticktext=ticktext)
    return axis

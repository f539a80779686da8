"""Plotly figure builders shared by the pages (hoverable, with units in the axis titles)."""

from __future__ import annotations

from collections.abc import Sequence

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
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig

"""Plotly figures for the FlashAttention page: the T sweep and the online softmax tiles."""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from lmcore.app.attention_job import STOPPED
from lmcore.app.charts import log_axis
from lmcore.models.online_softmax import OnlineSoftmaxTrace

COLORS = {"naive": "#d62728", "sdpa": "#1f77b4", "tiled": "#2ca02c"}


def sweep_figure(
    snapshot: dict[str, dict[str, list]], *, backward: bool = True, limit_mib: float | None = None
) -> go.Figure:
    """Peak memory and median time against T, one line per implementation (log-log axes)."""
    mem_key, time_key = ("fwdbwd_mib", "fwdbwd_ms") if backward else ("fwd_mib", "fwd_ms")
    what = "forward+backward" if backward else "forward"
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=(f"Peak memory ({what})", f"Median time ({what})")
    )
    for impl, cols in snapshot.items():
        if impl == STOPPED or not cols.get("T"):
            continue
        color = COLORS.get(impl)
        for col, key, unit in ((1, mem_key, "MiB"), (2, time_key, "ms")):
            fig.add_trace(
                go.Scatter(
                    x=cols["T"],
                    y=cols[key],
                    mode="lines+markers",
                    name=impl,
                    legendgroup=impl,
                    showlegend=col == 1,
                    line=dict(color=color),
                    hovertemplate=f"{impl}<br>T=%{{x}}<br>%{{y:,.2f}} {unit}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    stopped = snapshot.get(STOPPED, {})
    for impl, T, pred in zip(
        stopped.get("impl", []),
        stopped.get("T", []),
        stopped.get("predicted_mib", []),
        strict=False,
    ):
        if pred:
            fig.add_trace(
                go.Scatter(
                    x=[T],
                    y=[pred],
                    mode="markers",
                    name=f"{impl} (predicted, not run)",
                    marker=dict(symbol="x", size=12, color=COLORS.get(impl)),
                    hovertemplate=f"{impl} stopped<br>T=%{{x}}<br>predicted %{{y:,.1f}} MiB"
                    "<extra></extra>",
                ),
                row=1,
                col=1,
            )
    if limit_mib:
        fig.add_hline(
            y=limit_mib,
            line_dash="dash",
            line_color="gray",
            annotation_text=f"limit {limit_mib:,.0f} MiB",
            row=1,
            col=1,
        )
    series = [(impl, cols) for impl, cols in snapshot.items() if impl != STOPPED]
    Ts = [T for _, cols in series for T in cols.get("T", [])] + list(stopped.get("T", []))
    mib = [v for _, cols in series for v in cols.get(mem_key, [])]
    mib += [p for p in stopped.get("predicted_mib", []) if p] + ([limit_mib] if limit_mib else [])
    ms = [v for _, cols in series for v in cols.get(time_key, [])]
    fig.update_xaxes(**log_axis(Ts, exact=True, title_text="sequence length T"))
    fig.update_yaxes(**log_axis(mib, title_text="peak memory (MiB, log scale)"), row=1, col=1)
    fig.update_yaxes(**log_axis(ms, title_text="median time (ms, log scale)"), row=1, col=2)
    fig.update_layout(height=400, margin=dict(l=40, r=10, t=50, b=40))
    return fig


def tile_figure(trace: OnlineSoftmaxTrace, step: int) -> go.Figure:
    """The logits as a heatmap, the tile being processed outlined, unread tiles greyed out."""
    s = trace.steps[step]
    full = torch.cat([t.logits for t in trace.steps], dim=1).double()
    n, T = full.shape
    z = full.clone()
    z[:, s.stop :] = float("nan")  # not read yet
    fig = go.Figure(
        go.Heatmap(
            z=z.tolist(),
            x=list(range(T)),
            y=[f"row {i}" for i in range(n)],
            colorscale="Viridis",
            colorbar=dict(title="logit"),
            hovertemplate="key %{x}, %{y}: logit %{z:.3f}<extra></extra>",
        )
    )
    fig.add_shape(
        type="rect",
        x0=s.start - 0.5,
        x1=s.stop - 0.5,
        y0=-0.5,
        y1=n - 0.5,
        line=dict(color="red", width=3),
    )
    fig.update_layout(
        title=f"Tile {s.tile + 1} of {len(trace.steps)}: keys {s.start}..{s.stop - 1} "
        "(grey = not read yet)",
        xaxis_title="key position",
        height=120 + 40 * n,
        margin=dict(l=40, r=10, t=50, b=40),
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def running_max_figure(trace: OnlineSoftmaxTrace) -> go.Figure:
    """Running max m and running sum l of each row after each tile."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("running max m", "running sum l"))
    steps = [s.tile + 1 for s in trace.steps]
    n = trace.steps[0].m.shape[0]
    for i in range(n):
        for col, attr in ((1, "m"), (2, "l")):
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=[float(getattr(s, attr)[i]) for s in trace.steps],
                    mode="lines+markers",
                    name=f"row {i}",
                    legendgroup=str(i),
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="after tile", dtick=1)
    fig.update_layout(height=320, margin=dict(l=40, r=10, t=50, b=40))
    return fig

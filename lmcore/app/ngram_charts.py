"""Plotly figures for the n-gram page: the n trade-off, unseen n-grams, next-token bars."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from lmcore.app.charts import log_axis

_COLORS = {"kn": "#1f77b4", "addk": "#2ca02c", "mle": "#d62728", "stupid": "#9467bd"}
_LABELS = {"kn": "Kneser-Ney", "addk": "add-k", "mle": "MLE", "stupid": "stupid backoff"}


def smoothing_label(s: str) -> str:
    return _LABELS.get(s, s)


def tradeoff_figure(rows: Sequence[dict], metric: str, title: str, yaxis: str,
                    log_y: bool = False) -> go.Figure:
    """Train (dashed) and held-out (solid) `metric` against n, one colour per smoothing.

    `rows` hold keys smoothing, order, split ('train'|'held-out'), `metric`, zero_prob. An
    infinite value (MLE on an unseen n-gram) breaks the line and is drawn as a red ✕ at the
    top of the plot, its hover text giving the number of zero-probability tokens.
    """
    fig = go.Figure()
    finite = [r[metric] for r in rows if math.isfinite(r[metric])]
    top = max(finite) * (1.6 if log_y else 1.08) if finite else 1.0
    for s in dict.fromkeys(r["smoothing"] for r in rows):
        for split, dash in (("train", "dash"), ("held-out", "solid")):
            pts = sorted((r for r in rows if r["smoothing"] == s and r["split"] == split),
                         key=lambda r: r["order"])
            if not pts:
                continue
            name = f"{smoothing_label(s)} · {split}"
            fig.add_trace(go.Scatter(
                x=[r["order"] for r in pts],
                y=[r[metric] if math.isfinite(r[metric]) else None for r in pts],
                mode="lines+markers", name=name, legendgroup=s,
                line=dict(color=_COLORS.get(s), dash=dash),
                hovertemplate=f"{name}<br>n=%{{x}}<br>{yaxis}=%{{y:.4g}}<extra></extra>"))
            inf = [r for r in pts if not math.isfinite(r[metric])]
            if inf:
                fig.add_trace(go.Scatter(
                    x=[r["order"] for r in inf], y=[top] * len(inf), mode="markers+text",
                    marker=dict(symbol="x", size=12, color=_COLORS.get(s)),
                    text=["∞"] * len(inf), textposition="top center", legendgroup=s,
                    name=f"{name}: infinite", showlegend=False,
                    customdata=[r.get("zero_prob", 0) for r in inf],
                    hovertemplate=f"{name}<br>n=%{{x}}: infinite — %{{customdata:,}} tokens "
                                  "had probability 0<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="n (order)", yaxis_title=yaxis, height=380,
                      margin=dict(l=40, r=10, t=50, b=40), legend=dict(font=dict(size=11)))
    fig.update_xaxes(dtick=1)
    if log_y:
        fig.update_yaxes(**log_axis(finite + [top]))
    return fig


def unseen_figure(fraction: dict[int, float]) -> go.Figure:
    """Share of held-out n-grams never seen in training, per order."""
    orders = sorted(fraction)
    fig = go.Figure(go.Bar(
        x=orders, y=[100 * fraction[n] for n in orders], marker_color="#d62728",
        text=[f"{100 * fraction[n]:.1f}%" for n in orders], textposition="outside",
        hovertemplate="n=%{x}: %{y:.2f}% of held-out n-grams unseen<extra></extra>"))
    fig.update_layout(title="Held-out n-grams never seen in training",
                      xaxis_title="n (order)", yaxis_title="unseen (%)", height=340,
                      yaxis_range=[0, 110], margin=dict(l=40, r=10, t=50, b=40))
    fig.update_xaxes(dtick=1)
    return fig


def next_token_figure(tokens: Sequence[str], probs: Sequence[float], title: str) -> go.Figure:
    """Horizontal bars of the most likely next tokens (most likely on top)."""
    fig = go.Figure(go.Bar(
        x=list(probs)[::-1], y=[f"{t!s}" for t in tokens][::-1], orientation="h",
        hovertemplate="%{y}: p=%{x:.4f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="probability", height=60 + 24 * len(tokens),
                      margin=dict(l=40, r=10, t=50, b=40))
    fig.update_yaxes(type="category")
    return fig


def turn_summary(rows: Sequence[dict]) -> str:
    """One sentence per smoothing on where held-out perplexity is lowest and what longer
    orders did after it: the trade-off the page promises, read off this fit's numbers."""
    lines = []
    for s in dict.fromkeys(r["smoothing"] for r in rows):
        pts = sorted((r for r in rows if r["smoothing"] == s and r["split"] == "held-out"),
                     key=lambda r: r["order"])
        finite = [r for r in pts if math.isfinite(r["perplexity"])]
        name = f"**{smoothing_label(s)}**"
        if len(pts) < 2:
            continue
        if not finite:
            lines.append(f"- {name}: infinite at every n (held-out tokens that training "
                         "never had get p = 0).")
            continue
        best = min(finite, key=lambda r: r["perplexity"])
        last = pts[-1]
        if best is last:
            prev = pts[-2]["perplexity"]
            gain = 1 - last["perplexity"] / prev if math.isfinite(prev) else 1.0
            if gain < 0.05:
                lines.append(f"- {name}: levels off: n = {last['order'] - 1} → "
                             f"{last['order']} gained only {gain:.1%} ({prev:.4g} → "
                             f"{last['perplexity']:.4g}).")
            else:
                lines.append(f"- {name}: still falling at n = {last['order']} "
                             f"({prev:.4g} → {last['perplexity']:.4g}, −{gain:.0%}); fit "
                             "higher orders or less training text to see it level off.")
        elif not math.isfinite(last["perplexity"]):
            first_inf = min(r["order"] for r in pts if not math.isfinite(r["perplexity"]))
            lines.append(f"- {name}: best at n = {best['order']} ({best['perplexity']:.4g}), "
                         f"infinite from n = {first_inf} on (unseen n-grams get p = 0).")
        else:
            rise = last["perplexity"] / best["perplexity"] - 1
            verb = "turns back up" if rise > 0.02 else "levels off"
            lines.append(f"- {name}: best at n = {best['order']} ({best['perplexity']:.4g}), "
                         f"then {verb}: {last['perplexity']:.4g} at n = {last['order']} "
                         f"({rise:+.1%}).")
    return ("**Held-out perplexity in this fit:**\n" + "\n".join(lines)) if lines else ""

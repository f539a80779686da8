"""Figures of the Scaling & emergence page: log-axis laws, IsoFLOP curves, metric curves, heads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from lmcore.app.train_charts import _finite

_M = dict(l=60, r=10, t=50, b=45)
X_OF = {"size": ("non_embedding", "non-embedding parameters N"),
        "budget": ("tokens", "tokens trained D"),
        "isoflop": ("non_embedding", "non-embedding parameters N")}


def _ok(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _law(fit: dict, x: np.ndarray) -> np.ndarray:
    return fit["E"] + fit["A"] * x ** -fit["alpha"]


def law_figure(out: dict[str, Any], against: str = "x") -> go.Figure:
    """Held-out bits/char against N (or D, or C) on log axes, with both fitted forms."""
    kind = out["kind"]
    key, title = X_OF[kind]
    if against == "flops":
        key, title = "flops", "training compute C (FLOPs)"
    pts = [p for p in out["points"] if _ok(p["bits_per_char"])]
    fig = go.Figure()
    if kind == "isoflop" and against != "flops":
        return isoflop_figure(out)
    fig.add_trace(go.Scatter(
        x=[p[key] for p in pts], y=[p["bits_per_char"] for p in pts], mode="markers+text",
        text=[p["label"] if kind != "budget" else f"{p['steps']} steps" for p in pts],
        textposition="top center", name="runs", marker=dict(size=9),
        hovertemplate="%{text}<br>x %{x:.3g}<br>%{y:.4f} bits/char<extra></extra>"))
    if against != "flops" and out.get("fits") and len(pts) >= 2:
        xs = np.geomspace(min(p[key] for p in pts) / 1.3, max(p[key] for p in pts) * 1.3, 60)
        for fit, dash in zip(out["fits"], ("dot", "solid"), strict=False):
            fig.add_trace(go.Scatter(x=xs, y=_law(fit, xs), mode="lines", line=dict(dash=dash),
                                     name=fit["fit"]))
    fig.update_layout(title=f"Held-out bits/char against {title.split(' ')[-1]}",
                      xaxis_title=title + " (log)", yaxis_title="bits per character (log)",
                      height=420, margin=_M, legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def isoflop_figure(out: dict[str, Any]) -> go.Figure:
    """Loss against N, one curve per compute budget; the best size of each marked."""
    fig = go.Figure()
    pts = [p for p in out["points"] if _ok(p["bits_per_char"])]
    budgets = sorted({p["budget"] for p in pts if p["budget"] is not None})
    optima = {o["budget_flops"]: o for o in out.get("optima", [])}
    for c in budgets:
        group = sorted((p for p in pts if p["budget"] == c), key=lambda p: p["non_embedding"])
        fig.add_trace(go.Scatter(
            x=[p["non_embedding"] for p in group], y=[p["bits_per_char"] for p in group],
            mode="lines+markers", name=f"C = {c:.2g} FLOPs",
            text=[f"{p['label']} · {p['steps']} steps" for p in group],
            hovertemplate="%{text}<br>N %{x:,}<br>%{y:.4f} bits/char<extra></extra>"))
        o = optima.get(c)
        if o is not None:
            fig.add_trace(go.Scatter(x=[o["best_N_parabola"]], y=[o["loss_at_best"]],
                                     mode="markers", marker=dict(symbol="star", size=14),
                                     name=f"best N at {c:.2g}", showlegend=False,
                                     hovertemplate="best N ≈ %{x:,.0f}<extra></extra>"))
    if len(optima) >= 2:
        os_ = sorted(optima.values(), key=lambda o: o["budget_flops"])
        fig.add_trace(go.Scatter(x=[o["best_N_parabola"] for o in os_],
                                 y=[o["loss_at_best"] for o in os_], mode="lines",
                                 line=dict(dash="dash", color="black"),
                                 name="compute-optimal frontier"))
    fig.update_layout(title="IsoFLOP: loss against size at fixed compute",
                      xaxis_title="non-embedding parameters N (log)",
                      yaxis_title="bits per character", height=420, margin=_M,
                      legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(type="log")
    return fig


def sweep_live(snap: dict[str, dict[str, list]]) -> go.Figure:
    """While a sweep runs: each run's training loss against steps."""
    fig = go.Figure()
    for name, cols in snap.items():
        if not name.startswith("run "):
            continue
        x, y = _finite(cols.get("step", []), cols.get("loss", []))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name[4:]))
    fig.update_layout(title="Training loss of each run", xaxis_title="step",
                      yaxis_title="loss (nats/token)", height=340, margin=_M)
    return fig


def metric_curves(snap: dict[str, dict[str, list]], keys: Sequence[tuple[str, str]],
                  title: str, log_x: bool = False) -> go.Figure:
    """Side-by-side panels, one per (key, title), with one line per series of `snap`."""
    n = len(keys)
    gap = 0.06
    width = (1 - gap * (n - 1)) / n
    data = []
    layout: dict = dict(height=360, margin=_M, title=title, legend=dict(orientation="h", y=-0.2),
                        annotations=[])
    palette = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692"]
    for j, (key, name) in enumerate(keys):
        s = "" if j == 0 else str(j + 1)
        x0 = j * (width + gap)
        for i, (series, cols) in enumerate(sorted(snap.items())):
            x, y = _finite(cols.get("step", []), cols.get(key, []))
            data.append(dict(type="scatter", x=x, y=y, mode="lines", name=series,
                             legendgroup=series, showlegend=j == 0,
                             line=dict(color=palette[i % len(palette)]),
                             xaxis=f"x{s}", yaxis=f"y{s}"))
        layout[f"xaxis{s}"] = dict(domain=[x0, x0 + width], anchor=f"y{s}",
                                   title=dict(text="step"), type="log" if log_x else "linear")
        layout[f"yaxis{s}"] = dict(anchor=f"x{s}")
        layout["annotations"].append(dict(text=name, x=x0 + width / 2, y=1.0, xref="paper",
                                          yref="paper", showarrow=False, yanchor="bottom"))
    return go.Figure(dict(data=data, layout=layout))


def emergence_sizes(final_rows: Sequence[dict], digits: int, step: int) -> go.Figure:
    """At one step, across sizes: smooth per-digit metrics, sharp exact match."""
    rows = sorted(final_rows, key=lambda r: r["non_embedding"])
    x = [r["non_embedding"] for r in rows]
    labels = [r["model"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[r["token_accuracy"] for r in rows], name="per-digit "
                             "accuracy", mode="lines+markers", text=labels))
    fig.add_trace(go.Scatter(x=x, y=[r["exact_match"] for r in rows], name="exact match "
                             f"(all {digits + 1} digits)", mode="lines+markers", text=labels))
    fig.add_trace(go.Scatter(x=x, y=[r["exact_if_independent"] for r in rows],
                             name=f"(per-digit accuracy)^{digits + 1}", mode="lines",
                             line=dict(dash="dot"), text=labels))
    fig.add_trace(go.Scatter(x=x, y=[r["bits_per_token"] for r in rows], yaxis="y2",
                             name="loss (bits/digit, right axis)", mode="lines+markers",
                             line=dict(dash="dash"), text=labels))
    fig.update_layout(title=f"Across model sizes at step {step} (the same runs)",
                      xaxis=dict(title="non-embedding parameters N (log)", type="log"),
                      yaxis=dict(title="accuracy", range=[0, 1.02]),
                      yaxis2=dict(title="bits per answer digit", overlaying="y", side="right"),
                      height=420, margin=dict(l=60, r=60, t=50, b=45),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def induction_figure(rows: Sequence[dict]) -> go.Figure:
    """Loss on the repeat vs on new tokens, and the best induction score, against steps."""
    steps = [r["step"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=[r["repeat_loss"] for r in rows], name="loss on the "
                             "repeated segment", mode="lines"))
    fig.add_trace(go.Scatter(x=steps, y=[r["fresh_loss"] for r in rows], name="loss on new "
                             "tokens (random)", mode="lines"))
    best = [r.get("best_score", max(r["scores"].values()) if "scores" in r else None)
            for r in rows]
    fig.add_trace(go.Scatter(x=steps, y=best, name="best head's induction score (right)",
                             yaxis="y2", mode="lines", line=dict(dash="dot")))
    fig.update_layout(title="The phase change", xaxis_title="step",
                      yaxis=dict(title="loss (nats/token)"),
                      yaxis2=dict(title="induction score", overlaying="y", side="right",
                                  range=[0, 1]),
                      height=400, margin=dict(l=60, r=60, t=50, b=45),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def induction_live(snap: dict[str, dict[str, list]]) -> go.Figure:
    """`induction_figure` of the job's 'eval' series while it runs."""
    ev = snap.get("eval", {})
    rows = [dict(zip(ev, vals, strict=True)) for vals in zip(*ev.values(), strict=True)]
    return induction_figure(rows)


def head_scores(scores: dict[str, float], uniform: float | None = None) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(scores), y=list(scores.values()), name="heads",
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    if uniform is not None and math.isfinite(uniform):
        fig.add_trace(go.Scatter(x=list(scores), y=[uniform] * len(scores), mode="lines",
                                 line=dict(dash="dash", color="gray"),
                                 name="evenly spread attention"))
    fig.update_layout(title="Induction score per head (held-out repeats)",
                      xaxis_title="layer L, head H", yaxis_title="score", yaxis_range=[0, 1],
                      height=340, margin=_M)
    return fig


def head_map(weights: Sequence[Sequence[float]], tokens: Sequence[int], head: str,
             seg_len: int, first_at: int, again_at: int, score: float) -> go.Figure:
    """One head's attention on a held-out sequence whose segment of `seg_len` tokens starts at
    `first_at` and again at `again_at` (the head's best-scoring one, `score`): an induction
    head lights the keys one after the first copy from the second copy's rows."""
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Heatmap(z=weights, x=labels, y=labels, colorscale="Blues", zmin=0,
                               hovertemplate="query %{y}<br>key %{x}<br>%{z:.3f}"
                                             "<extra></extra>"))
    a, b, L = first_at, again_at, seg_len
    fig.update_layout(title=f"Head {head} on its best-scoring sequence ({score:.2f})<br><sup>"
                            f"{a}..{a + L - 1} repeat at {b}..{b + L - 1}: an induction head "
                            f"lights keys {a + 1}..{a + L} from rows {b}..{b + L - 1}</sup>",
                      xaxis_title="key (position:token)", yaxis_title="query", height=560,
                      margin=_M)
    fig.update_yaxes(autorange="reversed")
    return fig


def shots_figure(curves: dict[str, Sequence[dict]]) -> go.Figure:
    """Accuracy against shots: each curve (e.g. before/after training), ideal and chance."""
    fig = go.Figure()
    any_rows = next(iter(curves.values()), [])
    for name, rows in curves.items():
        fig.add_trace(go.Scatter(x=[r["shots"] for r in rows], y=[r["accuracy"] for r in rows],
                                 mode="lines+markers", name=name))
    if any_rows:
        fig.add_trace(go.Scatter(x=[r["shots"] for r in any_rows],
                                 y=[r["ideal"] for r in any_rows], mode="lines",
                                 line=dict(dash="dot"), name="perfect in-context learner"))
        fig.add_trace(go.Scatter(x=[r["shots"] for r in any_rows],
                                 y=[r["chance"] for r in any_rows], mode="lines",
                                 line=dict(dash="dash", color="gray"), name="chance (1/10)"))
    fig.update_layout(title="Accuracy against the number of examples in the prompt "
                            "(held-out mappings)",
                      xaxis_title="shots k", yaxis_title="accuracy", yaxis_range=[0, 1.02],
                      height=400, margin=_M, legend=dict(orientation="h", y=-0.25))
    return fig


def cot_figure(rows: Sequence[dict]) -> go.Figure:
    """Exact match against problem length, answer only vs scratchpad; training share bars."""
    fig = go.Figure()
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for v in variants:
        rs = [r for r in rows if r["variant"] == v]
        fig.add_trace(go.Scatter(x=[r["digits"] for r in rs], y=[r["exact_match"] for r in rs],
                                 mode="lines+markers", name=v))
    if rows:
        rs = [r for r in rows if r["variant"] == variants[0]]
        fig.add_trace(go.Bar(x=[r["digits"] for r in rs],
                             y=[r["share_of_training"] for r in rs], opacity=0.25,
                             name="share of training problems", marker_color="gray"))
    fig.update_layout(title="Exact match on held-out problems, by length",
                      xaxis_title="digits per operand", yaxis_title="exact match",
                      yaxis_range=[0, 1.02], height=400, margin=_M,
                      legend=dict(orientation="h", y=-0.25))
    return fig

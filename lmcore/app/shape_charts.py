"""Figures for the attention walk-through and the HBM/SRAM byte count (FlashAttention page)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmcore.models.attention_io import attention_io
from lmcore.models.attention_shapes import Saturation, Walkthrough

_MARGIN = dict(l=60, r=10, t=50, b=50)


def _labels(tokens: list[str], T: int) -> list[str]:
    return [f"{i}:{t}" for i, t in enumerate(tokens)] + [f"{i}:[PAD]"
                                                         for i in range(len(tokens), T)]


def scores_weights_figure(w: Walkthrough, b: int, head: int) -> go.Figure:
    """Sentence b, head `head`: the scores (masked entries blank) and the softmax weights."""
    T = w.mask.shape[-1]
    lab = _labels(w.tokens[b], T)
    masked = w.step("masked scores").value[b, head]
    weights = w.step("weights").value[b, head]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("scores " + ("Q·Kᵀ/√d" if w.scaled else "Q·Kᵀ")
                                        + " (blank: masked)", "weights = softmax"))
    z = np.where(np.isfinite(masked), masked, np.nan)
    fig.add_trace(go.Heatmap(z=z, x=lab, y=lab, colorscale="RdBu_r", zmid=0,
                             colorbar=dict(x=0.44, len=0.9),
                             hovertemplate="q %{y} · k %{x}: %{z:.3f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Heatmap(z=weights, x=lab, y=lab, colorscale="Viridis", zmin=0, zmax=1,
                             hovertemplate="q %{y} → k %{x}: %{z:.3f}<extra></extra>"), 1, 2)
    for c in (1, 2):
        fig.update_yaxes(autorange="reversed", row=1, col=c)
    fig.update_layout(height=430, margin=_MARGIN,
                      title=f"Sentence {b + 1}, head {head + 1}: one (T, T) slice of (B, H, T, T)")
    return fig


def mask_figure(w: Walkthrough, b: int) -> go.Figure:
    """Which entries of sentence b's (T, T) attention are kept, removed by the causal mask,
    removed by the padding mask."""
    T = w.mask.shape[-1]
    causal = np.tril(np.ones((T, T), bool)) if w.causal else np.ones((T, T), bool)
    kind = np.where(w.mask[b], 2, np.where(causal, 0, 1))  # 2 kept, 1 causal, 0 padding
    lab = _labels(w.tokens[b], T)
    fig = go.Figure(go.Heatmap(
        z=kind, x=lab, y=lab, zmin=0, zmax=2, showscale=False, xgap=1, ygap=1,
        colorscale=[[0, "#f59e0b"], [0.5, "#e5e7eb"], [1, "#1d4ed8"]],
        customdata=np.array(["padding mask", "causal mask", "kept"])[kind],
        hovertemplate="q %{y} → k %{x}: %{customdata}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=380, margin=_MARGIN,
                      title="Blue: kept · grey: removed by the causal mask · orange: removed "
                            "by the padding mask")
    return fig


def saturation_figure(rows: Sequence[Saturation]) -> go.Figure:
    """Mean largest softmax weight against head width, with and without 1/√d."""
    fig = go.Figure()
    for label, dash in (("unscaled", "solid"), ("scaled", "dash")):
        fig.add_scatter(x=[r.d for r in rows], y=[r.max_weight[label] for r in rows],
                        mode="lines+markers", line=dict(dash=dash),
                        name=f"{label} (q·k{'/√d' if label == 'scaled' else ''})",
                        customdata=[[r.score_std[label], r.entropy_bits[label]] for r in rows],
                        hovertemplate=("d = %{x}: largest weight %{y:.3f}<br>score std "
                                       "%{customdata[0]:.2f}, entropy %{customdata[1]:.2f} "
                                       "bits<extra></extra>"))
    fig.update_xaxes(type="log", title="head width d", tickvals=[r.d for r in rows])
    fig.update_layout(height=340, margin=_MARGIN, yaxis_title="mean largest softmax weight",
                      title="Softmax saturation: q, k ~ N(0, 1)^d over 64 keys")
    return fig


def io_figure(Ts: Sequence[int], d: int, block_q: int, block_k: int, causal: bool,
              bytes_per_element: int, marked: int | None = None) -> go.Figure:
    """HBM bytes per (batch, head) of naive and tiled attention against T, and their ratio."""
    ios = [attention_io(T, d, block_q, block_k, causal, bytes_per_element) for T in Ts]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("HBM bytes per (batch, head)",
                                                        "naive / tiled"))
    fig.add_scatter(x=list(Ts), y=[i.naive_bytes for i in ios], name="naive: 4Td + 4T²",
                    mode="lines+markers", row=1, col=1)
    fig.add_scatter(x=list(Ts), y=[i.tiled_bytes for i in ios], mode="lines+markers",
                    name=f"tiled {block_q}×{block_k}", row=1, col=1)
    fig.add_scatter(x=list(Ts), y=[i.ratio for i in ios], mode="lines+markers",
                    name="ratio", showlegend=False, row=1, col=2)
    if marked is not None:
        for c in (1, 2):
            fig.add_vline(x=marked, line_dash="dot", row=1, col=c)
    fig.update_xaxes(type="log", title="sequence length T", tickvals=list(Ts))
    fig.update_yaxes(type="log", title="bytes", row=1, col=1)
    fig.update_yaxes(title="× fewer bytes tiled", row=1, col=2)
    fig.update_layout(height=380, margin=_MARGIN)
    return fig

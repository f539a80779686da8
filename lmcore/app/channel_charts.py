"""Plotly figures for the noisy-channel panels: capacity curves, BER against rate, CER per n."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lmcore.info.channel import CapacityEstimate, Channel
from lmcore.info.codes import CodeRun
from lmcore.info.noisy_channel import ChannelDecodeRow

_MARGIN = dict(l=55, r=10, t=50, b=45)


def capacity_figure(measured: Sequence[CapacityEstimate], marked: Channel | None = None
                    ) -> go.Figure:
    """C = 1 - H(p) and C = 1 - e as lines, the simulated I(X; Y) as points with 2 s.e."""
    grid = np.linspace(0, 0.5, 101)
    fig = go.Figure()
    for kind, name in (("bsc", "BSC: 1 − H(p)"), ("bec", "BEC: 1 − e")):
        fig.add_scatter(x=grid, y=[Channel(kind, float(p)).capacity for p in grid],
                        mode="lines", name=name)
        pts = [m for m in measured if m.channel.kind == kind]
        fig.add_scatter(x=[m.channel.p for m in pts], y=[m.mutual_information for m in pts],
                        mode="markers", name=f"{kind.upper()} measured I(X;Y)",
                        error_y=dict(type="data", array=[2 * m.stderr for m in pts]),
                        hovertemplate="p = %{x}: %{y:.4f} bits<extra></extra>")
    if marked is not None:
        fig.add_vline(x=marked.p, line_dash="dot",
                      annotation_text=f"{marked.label}: C = {marked.capacity:.3f}")
    fig.update_layout(title="Capacity against error rate (bits per channel use)", height=360,
                      xaxis_title="error rate p (BSC) / erasure rate e (BEC)",
                      yaxis_title="bits per use", margin=_MARGIN)
    return fig


def _family(name: str) -> str:
    if name.startswith("random linear"):
        return f"random linear, n = {name.split('[')[1].split(',')[0]}"
    return "Hamming" if name.startswith("Hamming") else "repetition / uncoded"


def ber_figure(runs: Sequence[CodeRun]) -> go.Figure:
    """Residual bit error rate (log axis) against code rate, one trace per family, capacity
    as a vertical line; a code with no error shows at its 95% upper bound (open marker)."""
    fig = go.Figure()
    floor = min((r.ber_upper for r in runs), default=1e-4)
    for fam in dict.fromkeys(_family(r.code) for r in runs):
        rs = sorted((r for r in runs if _family(r.code) == fam), key=lambda r: r.rate)
        fig.add_scatter(
            x=[r.rate for r in rs], y=[r.ber if r.bit_errors else r.ber_upper for r in rs],
            mode="lines+markers", name=fam,
            marker=dict(symbol=["circle" if r.bit_errors else "circle-open" for r in rs],
                        size=9),
            customdata=[[r.code, r.bit_errors, r.message_bits] for r in rs],
            hovertemplate=("%{customdata[0]}: rate %{x:.3f}, BER %{y:.2e}<br>"
                           "%{customdata[1]:,} of %{customdata[2]:,} bits wrong<extra></extra>"))
    if runs:
        c = runs[0].capacity
        fig.add_vline(x=c, line_dash="dash", line_color="black",
                      annotation_text=f"capacity {c:.3f}")
    fig.update_layout(title=f"Residual bit error rate against code rate · "
                            f"{runs[0].channel if runs else ''}", height=400,
                      xaxis_title="code rate k / n (message bits per channel use)",
                      yaxis_title="bit error rate after decoding", margin=_MARGIN)
    fig.update_yaxes(type="log", range=[np.log10(max(floor / 2, 1e-6)), 0])
    fig.update_xaxes(range=[0, 1.02])
    return fig


def cer_figure(rows: Sequence[ChannelDecodeRow]) -> go.Figure:
    """CER of the corrupted text and of each order's decoding."""
    fig = go.Figure()
    if rows:
        fig.add_hline(y=rows[0].cer_before, line_dash="dot",
                      annotation_text=f"corrupted: {rows[0].cer_before:.3f}")
    fig.add_bar(x=[f"n = {r.order}" for r in rows], y=[r.cer_after for r in rows],
                name="after decoding",
                customdata=[[r.fixed, r.broken] for r in rows],
                hovertemplate=("%{x}: CER %{y:.4f}<br>%{customdata[0]} errors fixed, "
                               "%{customdata[1]} introduced<extra></extra>"))
    fig.update_layout(title="Character error rate after noisy-channel decoding", height=340,
                      xaxis_title="order of the n-gram prior P(text)",
                      yaxis_title="character error rate", margin=_MARGIN)
    return fig


def diff_html(reference: str, text: str | Sequence[str], limit: int = 1200) -> str:
    """`text` (a string, or one received piece per reference character) with each piece that
    differs from `reference` marked red; hover shows the reference character."""
    import html

    out = []
    for r, c in zip(reference[:limit], text[:limit], strict=False):
        shown = html.escape(c).replace("\n", "⏎<br>")
        if r != c:
            out.append(f'<span title="was {html.escape(repr(r))}" style="background:#fecaca;'
                       f'border-radius:2px">{shown or "␣"}</span>')
        else:
            out.append(shown)
    return ('<div style="font-family:monospace;white-space:pre-wrap;line-height:1.5;'
            'font-size:0.85rem">' + "".join(out) + "</div>")

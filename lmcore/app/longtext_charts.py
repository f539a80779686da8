"""Figures and HTML for the Long-text page: chunks over the text, live memory, strategies."""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmcore.app.charts import log_axis
from lmcore.longtext.chunking import Chunk

_CHUNK_COLOURS = ("#dbeafe", "#bbf7d0")  # alternate so neighbouring chunks are told apart
_OVERLAP = "#fdba74"  # text two chunks share
_STRATEGY_COLOURS = {"truncation": "#6b7280", "disjoint": "#2563eb", "sliding": "#16a34a",
                     "full": "#dc2626"}


def _esc(piece: str) -> str:
    return html.escape(piece).replace("\n", "⏎<br>")


def chunks_html(text: str, chunks: Sequence[Chunk], limit: int = 20_000) -> str:
    """The text with each chunk on its own background and overlaps in orange (first `limit`)."""
    shown = text[:limit]
    cuts = {0, len(shown)}
    for c in chunks:
        if c.start < len(shown):
            cuts.update((c.start, min(c.end, len(shown))))
    edges = sorted(cuts)
    out = []
    j = 0  # first chunk that may still cover the segment
    for a, b in zip(edges, edges[1:], strict=False):
        while j < len(chunks) and chunks[j].end <= a:
            j += 1
        cover, k = [], j
        while k < len(chunks) and chunks[k].start <= a:
            if chunks[k].end >= b:
                cover.append(chunks[k].index)
            k += 1
        piece = _esc(shown[a:b])
        if not cover:
            out.append(piece)
        elif len(cover) == 1:
            colour = _CHUNK_COLOURS[cover[0] % 2]
            out.append(f'<span title="chunk {cover[0]}" style="background:{colour}">{piece}'
                       "</span>")
        else:
            names = " and ".join(str(i) for i in cover)
            out.append(f'<span title="overlap of chunks {names}" style="background:{_OVERLAP};'
                       f'border-bottom:2px solid #ea580c">{piece}</span>')
    more = (f'<div style="color:#6b7280">… {len(text) - limit:,} more characters not shown'
            "</div>") if len(text) > limit else ""
    return ('<div style="font-family:ui-monospace,monospace;line-height:1.8;white-space:'
            'pre-wrap;word-break:break-all;max-height:420px;overflow-y:auto;border:1px solid '
            f'#e5e7eb;padding:8px">{"".join(out)}</div>{more}')


def memory_figure(snapshot: dict[str, dict[str, list]]) -> go.Figure | None:
    """Process RSS over time per strategy, with a marker where each window finished."""
    rss = snapshot.get("rss")
    if not rss or not rss.get("t"):
        return None
    fig = go.Figure()
    names = list(dict.fromkeys(rss["strategy"]))
    for name in names:
        idx = [i for i, s in enumerate(rss["strategy"]) if s == name]
        fig.add_trace(go.Scatter(
            x=[rss["t"][i] for i in idx], y=[rss["mb"][i] for i in idx], mode="lines",
            name=f"{name} RSS", line=dict(color=_STRATEGY_COLOURS.get(name.split()[0])),
            hovertemplate="%{x:.2f} s: %{y:.1f} MB<extra>" + name + "</extra>"))
    win = snapshot.get("windows") or {}
    if win.get("t"):
        for name in list(dict.fromkeys(win["strategy"])):
            idx = [i for i, s in enumerate(win["strategy"]) if s == name]
            fig.add_trace(go.Scatter(
                x=[win["t"][i] for i in idx], y=[win["rss_mb"][i] for i in idx],
                mode="markers", name=f"{name} window ends",
                marker=dict(symbol="line-ns-open", size=14,
                            color=_STRATEGY_COLOURS.get(name.split()[0])),
                customdata=[[win["index"][i], win["bits_per_char"][i], win["tokens"][i]]
                            for i in idx],
                hovertemplate=("window %{customdata[0]}: %{customdata[1]:.3f} bits/char over "
                               "%{customdata[2]} tokens<extra>" + name + "</extra>")))
    fig.update_layout(title="Process memory (RSS) while the text streams through the model",
                      xaxis_title="seconds since the job started",
                      yaxis_title="RSS (MB, from 0)", height=380,
                      margin=dict(l=40, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.2))
    # from zero: a window's few hundred KB of activations is noise next to the process, and a
    # zoomed axis would draw that noise as mountains
    fig.update_yaxes(rangemode="tozero")
    return fig


def strategy_figure(rows: Sequence[dict]) -> go.Figure:
    """Bits/char (with the share of the text each strategy scored), time and peak memory.

    The share matters: truncation scores only the first window, so its bits/char describes
    a sliver of the text and is no rival to strategies that score all of it. Peak memory is
    the process's RSS from zero, so differences that are measurement noise look like it.
    """
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09, subplot_titles=(
        "bits per character (lower is better)", "time (s)", "peak process RSS (MB)"))
    labels = [_label(r) for r in rows]
    colours = [_STRATEGY_COLOURS.get(r["strategy"], "#6b7280") for r in rows]
    cover = [f"{100 * r.get('coverage', 1.0):.0f}% of text" if r.get("coverage", 1.0) >= 0.1
             else f"{100 * r.get('coverage', 1.0):.1f}% of text" for r in rows]
    fig.add_trace(go.Bar(x=labels, y=[r["bits_per_char"] for r in rows], marker_color=colours,
                         text=cover, textposition="inside", showlegend=False,
                         hovertemplate="%{x}: %{y:.4f} bits/char, %{text}<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=labels, y=[r["seconds"] for r in rows], marker_color=colours,
                         showlegend=False, hovertemplate="%{x}: %{y:.2f} s<extra></extra>"),
                  row=1, col=2)
    fig.add_trace(go.Bar(x=labels, y=[r["peak_rss_mb"] for r in rows], marker_color=colours,
                         showlegend=False,
                         customdata=[r["peak_extra_mb"] for r in rows],
                         hovertemplate="%{x}: %{y:.1f} MB (%{customdata:+.2f} MB during the "
                                       "run)<extra></extra>"), row=1, col=3)
    fig.update_yaxes(title_text="bits / char", row=1, col=1)
    fig.update_yaxes(title_text="seconds", row=1, col=2)
    fig.update_yaxes(title_text="MB (from 0)", rangemode="tozero", row=1, col=3)
    fig.update_layout(height=380, margin=dict(l=50, r=10, t=50, b=40))
    return fig


def _label(row: dict) -> str:
    if row["strategy"] == "sliding":
        return f"sliding S={row['stride']}"
    if row["strategy"] == "full":
        return f"full T={row['window']}"
    return f"{row['strategy']} W={row['window']}"


def stride_figure(rows: Sequence[dict]) -> go.Figure:
    """Bits/char against stride (context benefit) with the cost in seconds on a second axis."""
    rows = sorted(rows, key=lambda r: r["stride"])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=[r["stride"] for r in rows], y=[r["bits_per_char"] for r in rows],
                             mode="lines+markers", name="bits/char",
                             hovertemplate="stride %{x}: %{y:.4f} bits/char<extra></extra>"),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=[r["stride"] for r in rows], y=[r["seconds"] for r in rows],
                             mode="lines+markers", name="time (s)", line=dict(dash="dot"),
                             hovertemplate="stride %{x}: %{y:.2f} s<extra></extra>"),
                  secondary_y=True)
    fig.update_xaxes(**log_axis([r["stride"] for r in rows], exact=True,
                                title_text="stride S (tokens; S = window is disjoint chunks)"))
    fig.update_yaxes(title_text="bits per character", secondary_y=False)
    fig.update_yaxes(title_text="seconds", secondary_y=True)
    fig.update_layout(title="Smaller strides give each token more context, at W/S times the "
                            "cost", height=360, margin=dict(l=40, r=10, t=50, b=40))
    return fig

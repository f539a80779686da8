"""Plotly figures for the Embeddings page: word2vec loss, the PCA map, contextual cosines."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lmcore.embed.contextual import ContextualResult
from lmcore.embed.vectors import WordVectors

_MARGIN = dict(l=50, r=10, t=50, b=45)


def loss_figure(snap: dict, series: str = "loss",
                title: str = "word2vec training loss (−log σ(u·v) − Σ log σ(−u'·v))"
                ) -> go.Figure | None:
    """A job's training loss per step, live (series `series` of its snapshot)."""
    s = snap.get(series)
    if not s or not s.get("step"):
        return None
    fig = go.Figure(go.Scatter(x=s["step"], y=s["loss"], mode="lines", name="loss"))
    fig.update_layout(title=title, height=280, xaxis_title="step", yaxis_title="loss (nats)",
                      margin=_MARGIN)
    return fig


def pca_figure(vectors: WordVectors, n: int = 300, highlight: str | None = None) -> go.Figure:
    """The n most frequent units on the first two principal components, coloured by
    log10 frequency; hover names each unit."""
    words, counts, xy, share = vectors.pca(n)
    fig = go.Figure(go.Scatter(
        x=xy[:, 0], y=xy[:, 1], mode="markers+text", text=words,
        textposition="top center", textfont=dict(size=9),
        marker=dict(color=np.log10(np.maximum(counts, 1)), colorscale="Viridis", size=7,
                    colorbar=dict(title="log₁₀ count")),
        customdata=counts, hovertemplate="%{text}: %{customdata:,} occurrences<extra></extra>"))
    if highlight in words:
        i = words.index(highlight)
        fig.add_scatter(x=[xy[i, 0]], y=[xy[i, 1]], mode="markers", showlegend=False,
                        marker=dict(size=16, color="rgba(0,0,0,0)",
                                    line=dict(color="red", width=2)), hoverinfo="skip")
    fig.update_layout(title=f"{vectors.source}: {len(words)} most frequent units, PCA "
                            f"(PC1 {share[0]:.0%}, PC2 {share[1]:.0%} of the variance)",
                      height=520, xaxis_title="PC 1", yaxis_title="PC 2", margin=_MARGIN,
                      showlegend=False)
    return fig


def contextual_figure(res: ContextualResult) -> go.Figure:
    """Cosine similarity of the word's hidden vectors, occurrence by occurrence."""
    labels = [f"#{i + 1}" for i in range(len(res.snippets))]
    fig = go.Figure(go.Heatmap(z=res.cosine, x=labels, y=labels, zmin=-1, zmax=1,
                               colorscale="RdBu", text=np.round(res.cosine, 2),
                               texttemplate="%{text}",
                               hovertemplate="%{y} vs %{x}: cos %{z:.3f}<extra></extra>"))
    fig.update_layout(title=f"cos(h_i, h_j) of {res.word!r} in {len(labels)} places", height=380,
                      margin=_MARGIN)
    fig.update_yaxes(autorange="reversed")
    return fig

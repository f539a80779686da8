"""Figures and HTML for the Training stages page: loss curves, DPO's numbers, the loss mask."""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmcore.app.highlight import heat_html

STAGE_NAMES = {"pretrain": "pretraining", "sft": "instruction tuning (SFT)",
               "dpo": "preference tuning (DPO)"}


def loss_figure(snapshot: dict[str, dict[str, list]], stage: str) -> go.Figure | None:
    """The stage's training loss per step (and held-out exact match when SFT measured it)."""
    s = snapshot.get(stage)
    if not s or not s.get("step"):
        return None
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=s["step"], y=s["loss"], mode="lines", name="training loss"))
    acc = s.get("acc.all")
    if acc and any(v is not None for v in acc):
        pts = [(x, v) for x, v in zip(s["step"], acc, strict=True) if v is not None]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts],
                                 mode="lines+markers", name="held-out exact match"),
                      secondary_y=True)
        fig.update_yaxes(title_text="exact match", range=[0, 1], secondary_y=True)
    fig.update_layout(title=f"{STAGE_NAMES[stage].capitalize()}: loss per step", height=320,
                      margin=dict(l=40, r=10, t=50, b=40), xaxis_title="step")
    fig.update_yaxes(title_text="loss (nats/token)", secondary_y=False)
    return fig


def dpo_figure(snapshot: dict[str, dict[str, list]]) -> go.Figure | None:
    """DPO live: loss, held-out reward margin, win rate and KL from the reference."""
    s = snapshot.get("dpo")
    if not s or not s.get("step"):
        return None
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "DPO loss", "held-out win rate / margin", "KL(policy ‖ reference), nats/token"))
    fig.add_trace(go.Scatter(x=s["step"], y=s["loss"], mode="lines", name="loss"), 1, 1)
    for key, name in (("heldout.win_rate", "win rate"), ("heldout.margin", "reward margin")):
        pts = [(x, v) for x, v in zip(s["step"], s.get(key, []), strict=False) if v is not None]
        if pts:
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts],
                                     mode="lines+markers", name=name), 1, 2)
    pts = [(x, v) for x, v in zip(s["step"], s.get("heldout.kl", []), strict=False)
           if v is not None]
    if pts:
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts],
                                 mode="lines+markers", name="KL"), 1, 3)
    fig.update_layout(height=320, margin=dict(l=40, r=10, t=50, b=40))
    fig.update_xaxes(title_text="step")
    return fig


def mask_html(tokens: Sequence[str], mask: Sequence[int]) -> str:
    """Each token of an example as a chip: grey (context, no loss) or green (a target)."""
    chips = []
    for t, m in zip(tokens, mask, strict=True):
        style = ("background:#c8f0c8;border:1px solid #3a3" if m
                 else "background:#eee;border:1px solid #bbb;color:#666")
        chips.append(f'<span style="{style};border-radius:3px;padding:1px 3px;margin:1px;'
                     f'font-family:monospace;display:inline-block">{html.escape(t)}</span>')
    return "".join(chips)


def answer_html(answer: dict) -> str:
    """A stage's answer, each token glowing by its surprisal; hover shows its probability."""
    tokens, probs = answer["tokens"], answer["probs"]
    import math

    offsets, pos = [], 0
    for t in tokens:
        offsets.append((pos, pos + len(t)))
        pos += len(t)
    bits = [-math.log2(max(p, 1e-12)) for p in probs]
    labels = [f"p = {p:.3f}" for p in probs]
    return heat_html("".join(tokens), offsets, bits, labels=labels, vmax=4.0)

"""Figures for training and its models: live dashboard, dynamics, attention, generated text."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
import torch

from lmcore.app.charts import log_axis
from lmcore.app.highlight import heat_html
from lmcore.models.eval_mode import eval_mode

_M = dict(l=50, r=10, t=60, b=40)


def _finite(xs: Sequence, ys: Sequence, max_points: int = 2000) -> tuple[list, list]:
    """Points with a finite y, thinned to at most `max_points` (the last one always kept)."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=False)
           if y is not None and isinstance(y, int | float) and math.isfinite(y)]
    if len(pts) > max_points:
        every = -(-len(pts) // max_points)
        pts = pts[::every] + ([pts[-1]] if (len(pts) - 1) % every else [])
    return [p[0] for p in pts], [p[1] for p in pts]


# the 2x2 grid, laid out by hand: make_subplots costs ~4x more per redraw, every 0.5 s
_PANELS = (  # (axis suffix, x domain, y domain, title, x title)
    ("", [0.0, 0.45], [0.6, 1.0], "loss (nats/token)", "step"),
    ("2", [0.55, 1.0], [0.6, 1.0], "throughput (tokens/s)", "step"),
    ("3", [0.0, 0.45], [0.0, 0.4], "gradient norm per layer", "step"),
    ("4", [0.55, 0.95], [0.0, 0.4], "memory (MiB): training's own · process", "seconds"),
)


def _line(panel: int, x: list, y: list, name: str, **kw) -> dict:
    s = _PANELS[panel][0]
    return dict(type="scatter", x=x, y=y, name=name, xaxis=f"x{s}", yaxis=f"y{s}", **kw)


def training_dashboard(snap: dict[str, dict[str, list]], title: str = "") -> go.Figure:
    """Loss (train batches, held-out evals), tokens/s, grad norm per layer, memory."""
    tr = snap.get("train", {})
    ev = snap.get("eval", {})
    steps = tr.get("step", [])
    data = [_line(0, *_finite(steps, tr.get("loss", [])), "train batch", mode="lines",
                  line=dict(width=1))]
    for key, name in (("train_loss", "train (eval)"), ("valid_loss", "validation")):
        data.append(_line(0, *_finite(ev.get("step", []), ev.get(key, [])), name,
                          mode="lines+markers"))
    data.append(_line(1, *_finite(steps, tr.get("tokens_per_s", [])), "tokens/s",
                      mode="lines", showlegend=False))
    gn = snap.get("grad", {})
    for key in gn:
        if key != "step":
            data.append(_line(2, *_finite(gn["step"], gn[key]), key, mode="lines"))
    # memory: what training holds on the left axis (it changes with the model and batch:
    # activations saved for backward, weights + gradients + optimizer state), the whole
    # process's RSS on the right (hundreds of MiB of Python and torch it would flatten)
    t_of = dict(zip(steps, tr.get("elapsed_s", []), strict=False))  # step -> seconds
    x, y = _finite(steps, tr.get("saved_mb", []))
    if x:
        data.append(_line(3, [t_of.get(s) for s in x], y, "activations saved for backward",
                          mode="lines+markers"))
    x, y = _finite(steps, tr.get("state_mb", []))
    if x:
        data.append(_line(3, [t_of.get(s) for s in x], y,
                          "weights + gradients + optimizer state", mode="lines",
                          line=dict(dash="dash")))
    x, y = _finite(steps, tr.get("cuda_peak_mb", []))
    if x:  # only on a GPU: the allocator's high-water mark
        data.append(_line(3, [t_of.get(s) for s in x], y, "CUDA peak", mode="lines"))
    mem = snap.get("memory", {})
    data.append(dict(type="scatter", x=_finite(mem.get("t", []), mem.get("rss_mb", []))[0],
                     y=_finite(mem.get("t", []), mem.get("rss_mb", []))[1],
                     name="process RSS (right axis)", xaxis="x4", yaxis="y5", mode="lines",
                     line=dict(width=1, color="#9ca3af")))
    layout: dict = dict(height=620, margin=_M, legend=dict(orientation="h", y=-0.12),
                        annotations=[])
    if title:
        layout["title"] = title
    for s, xd, yd, name, xt in _PANELS:
        layout[f"xaxis{s}"] = dict(domain=xd, anchor=f"y{s}", title=dict(text=xt))
        layout[f"yaxis{s}"] = dict(domain=yd, anchor=f"x{s}")
        layout["annotations"].append(dict(text=name, x=sum(xd) / 2, y=yd[1], xref="paper",
                                          yref="paper", xanchor="center", yanchor="bottom",
                                          showarrow=False, font=dict(size=14)))
    layout["yaxis3"].update(log_axis(v for key in gn if key != "step" for v in gn[key]))
    layout["yaxis4"].update(rangemode="tozero", title=dict(text="MiB"))
    layout["yaxis5"] = dict(overlaying="y4", side="right", anchor="x4", rangemode="tozero",
                            showgrid=False, title=dict(text="RSS MiB"))
    return go.Figure(dict(data=data, layout=layout))


def comparison_losses(snap: dict[str, dict[str, list]], title: str,
                      yaxis: str = "training loss (nats/token)") -> go.Figure:
    """One loss curve per variant or run (series named after it); `yaxis` says which loss."""
    fig = go.Figure()
    for label, cols in snap.items():
        if label.startswith("_"):
            continue
        x, y = _finite(cols.get("step", []), cols.get("loss", []))
        fig.add_trace(go.Scatter(x=x, y=y, name=label, mode="lines"))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title=yaxis, height=380,
                      margin=_M)
    return fig


def grad_norm_bars(per_variant: dict[str, dict[str, float]]) -> go.Figure:
    """Mean gradient norm of each layer, one bar group per variant, on a log scale."""
    fig = go.Figure()
    for label, norms in per_variant.items():
        fig.add_trace(go.Bar(x=list(norms), y=[max(v, 1e-12) for v in norms.values()],
                             name=label))
    fig.update_layout(barmode="group", title="Gradient norm per layer (mean over steps)",
                      xaxis_title="layer", yaxis_title="‖g‖ (log scale)", height=380,
                      margin=_M)
    fig.update_yaxes(**log_axis(max(v, 1e-12) for n in per_variant.values()
                                for v in n.values()))
    return fig


def attention_heatmap(weights: Sequence[Sequence[float]], tokens: Sequence[str],
                      title: str) -> go.Figure:
    """(T, T) attention weights: row = query token, column = key token."""
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Heatmap(z=weights, x=labels, y=labels, colorscale="Blues", zmin=0,
                               hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}"
                                             "<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="key (attended to)", yaxis_title="query",
                      height=520, margin=_M)
    fig.update_yaxes(autorange="reversed")
    return fig


@torch.no_grad()
def attention_maps(model: torch.nn.Module, tokenizer, text: str,
                   max_tokens: int = 64) -> tuple[list[torch.Tensor], list[str]]:
    """Causal attention weights of `text` (after BOS): one (H, T, T) tensor per layer, tokens.

    At most `max_tokens` (and the model's context) tokens, so the heatmap stays readable.
    """
    ids = [tokenizer.bos_id] + tokenizer.encode(text)
    ids = ids[: min(model.config.context, max_tokens)]
    with eval_mode(model):
        device = next(model.parameters()).device
        _, weights = model(torch.tensor([ids], device=device), return_attention=True,
                           mask="causal")  # per layer (1, H, T, T)
    return [w[0].float().cpu() for w in weights], tokenizer.token_strings(ids)


def generated_html(prompt: str, pieces: Sequence[tuple[str, float]]) -> str:
    """The prompt, then each generated piece glowing by its surprisal; hover shows p and bits."""
    offsets, pos = [], len(prompt)
    for piece, _ in pieces:
        offsets.append((pos, pos + len(piece)))
        pos += len(piece)
    bits = [-math.log2(max(p, 1e-12)) for _, p in pieces]
    labels = [f"p = {p:.3f} ({b:.1f} bits)" for (_, p), b in zip(pieces, bits, strict=True)]
    return heat_html(prompt + "".join(piece for piece, _ in pieces), offsets, bits,
                     labels=labels)

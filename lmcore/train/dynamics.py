"""Training dynamics, side by side: the same tiny model trained with one thing changed.

Each comparison is a list of `Variant`s (a label plus overrides of the model and training
configs). `run_comparison` trains them in turn with the same seed and data and returns, per
variant, the loss curve, the gradient norm of every layer (vanishing and exploding gradients
made visible) and, for the MLP, the share of hidden units that never fire (dead ReLUs).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from lmcore.models.eval_mode import eval_mode
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.train.data import TokenData
from lmcore.train.trainer import Event, Step, TrainConfig, train


@dataclass(frozen=True)
class Variant:
    label: str
    model: dict[str, Any] = field(default_factory=dict)  # TransformerConfig overrides
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides
    norm: bool = True  # False replaces every LayerNorm/RMSNorm with the identity


COMPARISONS: dict[str, tuple[str, list[Variant]]] = {
    "optimizers": (
        "Same model, four update rules. Plain SGD moves every weight by the same multiple of "
        "its gradient; momentum averages past gradients; Adam divides by a running RMS of "
        "the gradient so every weight moves at about the same speed; AdamW also shrinks "
        "matrices toward zero (decoupled weight decay).",
        [Variant("SGD", train={"optimizer": "sgd", "lr": 0.5}),
         Variant("SGD + momentum", train={"optimizer": "momentum", "lr": 0.05}),
         Variant("Adam", train={"optimizer": "adam", "lr": 3e-3}),
         Variant("AdamW", train={"optimizer": "adamw", "lr": 3e-3})]),
    "activations": (
        "The MLP's nonlinearity. ReLU units whose input is negative for every token pass no "
        "gradient and stop learning ('dead'); GELU and SwiGLU are smooth near zero; tanh "
        "and sigmoid saturate, shrinking gradients.",
        [Variant(a, model={"activation": a.lower()})
         for a in ("ReLU", "GELU", "SwiGLU", "tanh", "sigmoid")]),
    "residual & norm": (
        "Residual connections give the gradient a path around every layer; normalisation "
        "keeps activations at a stable scale. Remove them and the gradient norm per layer "
        "spreads over orders of magnitude: it vanishes toward the input or explodes.",
        [Variant("residual + norm"),
         Variant("no residual", model={"residual": False}),
         Variant("no norm", norm=False),
         Variant("neither", model={"residual": False}, norm=False)]),
    "clipping": (
        "Gradient clipping rescales the whole gradient when its norm exceeds a threshold, "
        "so one bad batch cannot throw the weights far. Shown at a high learning rate, "
        "where it matters.",
        [Variant("clip at 1.0", train={"grad_clip": 1.0, "lr": 3e-2}),
         Variant("no clipping", train={"grad_clip": None, "lr": 3e-2})]),
}


@dataclass
class VariantResult:
    label: str
    losses: list[float]
    grad_norms: dict[str, float]  # per layer group, mean over the steps
    valid_loss: float
    dead_fraction: list[float]  # per layer: share of MLP hidden units never positive
    status: str
    error: str | None = None


def build_model(config: TransformerConfig, norm: bool = True) -> Transformer:
    """A Transformer, with every norm replaced by the identity when `norm` is False."""
    model = Transformer(config)
    if not norm:
        for block in model.h:
            block.ln_1, block.ln_2 = nn.Identity(), nn.Identity()
        model.ln_f = nn.Identity()
    return model


@torch.no_grad()
def dead_fraction(model: Transformer, batch: torch.Tensor) -> list[float]:
    """Per layer, the share of MLP hidden units whose input is <= 0 at every position.

    For ReLU such a unit outputs 0 and passes no gradient on this batch: it is dead. (For
    SwiGLU the gate half is measured; for the others the number says how many units sit on
    the flat left side.)
    """
    pre: list[torch.Tensor] = []
    hooks = [b.mlp.c_fc.register_forward_hook(lambda m, i, o: pre.append(o)) for b in model.h]
    with eval_mode(model):
        try:
            model(batch)
        finally:
            for h in hooks:
                h.remove()
    out = []
    for block, h in zip(model.h, pre, strict=True):
        if block.mlp.activation == "swiglu":
            h = h.chunk(2, dim=-1)[1]
        never = (h <= 0).flatten(0, -2).all(dim=0)  # (hidden,)
        out.append(float(never.float().mean()))
    return out


def run_comparison(kind: str, base_model: TransformerConfig, base_train: TrainConfig,
                   data: TokenData, objective: Any,
                   on_event: Callable[[str, Event], None] | None = None,
                   stop: threading.Event | None = None) -> list[VariantResult]:
    """Train every variant of comparison `kind` in turn; `on_event(label, event)` streams."""
    if kind not in COMPARISONS:
        raise ValueError(f"comparison must be one of {', '.join(COMPARISONS)}, got {kind!r}")
    results = []
    for v in COMPARISONS[kind][1]:
        if stop is not None and stop.is_set():
            break
        results.append(_run_variant(v, base_model, base_train, data, objective, on_event, stop))
    return results


def _run_variant(v: Variant, base_model: TransformerConfig, base_train: TrainConfig,
                 data: TokenData, objective: Any,
                 on_event: Callable[[str, Event], None] | None,
                 stop: threading.Event | None) -> VariantResult:
    """Train one variant from the shared seed; average its per-layer gradient norms."""
    mcfg = dataclasses.replace(base_model, **v.model)
    tcfg = dataclasses.replace(base_train, **v.train, checkpoint_dir=None)
    torch.manual_seed(tcfg.seed)
    model = build_model(mcfg, norm=v.norm)
    sums: dict[str, float] = {}
    count = 0

    def cb(e: Event) -> None:
        nonlocal count
        if isinstance(e, Step):
            count += 1
            for k, g in e.grad_norms.items():
                sums[k] = sums.get(k, 0.0) + (g if math.isfinite(g) else 0.0)
        if on_event is not None:
            on_event(v.label, e)

    res = train(model, objective, data, tcfg, callback=cb, stop=stop)
    probe = data.eval_windows(mcfg.context, max_tokens=8 * mcfg.context)[:, :mcfg.context]
    dead = dead_fraction(model, probe) if res.status != "failed" else []
    return VariantResult(label=v.label, losses=res.losses,
                         grad_norms={k: t / max(count, 1) for k, t in sums.items()},
                         valid_loss=res.valid_loss, dead_fraction=dead, status=res.status,
                         error=res.error)

"""The online softmax, traced step by step: the idea inside FlashAttention, made visible.

softmax(x)·V over one row needs max(x) before any exp, i.e. the whole row. The online version
reads the row tile by tile and keeps, per row, a running max m, a running sum l = Σ exp(x − m)
and an accumulator acc = Σ exp(x − m)·v. When a tile raises the max from m to m', everything
accumulated so far is rescaled by α = exp(m − m'). At the end acc / l equals softmax(x)·V
exactly (up to rounding), and no row of probabilities was ever held whole.

Subtracting the max is also what keeps the softmax finite: exp(12) already overflows float16
(max 65504), so the naive exp(x) / Σ exp(x) turns into inf / inf = NaN where the stable one
does not. `naive_softmax` and `stable_softmax` show both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class OnlineSoftmaxStep:
    """State after one key tile: all tensors are per query row (n rows)."""

    tile: int  # index of the key tile
    start: int  # first key column of the tile
    stop: int  # one past the last key column
    logits: torch.Tensor  # (n, stop − start) the tile's scores
    tile_max: torch.Tensor  # (n,) max of this tile alone
    m_old: torch.Tensor  # (n,) running max before the tile
    m: torch.Tensor  # (n,) running max after the tile
    alpha: torch.Tensor  # (n,) exp(m_old − m): how much the old sum and acc shrink
    p: torch.Tensor  # (n, stop − start) exp(logits − m): the tile's unnormalised weights
    l: torch.Tensor  # (n,) running sum after the tile
    acc: torch.Tensor  # (n, Dv) rescaled accumulator after the tile


@dataclass(frozen=True)
class OnlineSoftmaxTrace:
    """Every step, the final output, and the plain-softmax reference it must equal."""

    steps: tuple[OnlineSoftmaxStep, ...]
    output: torch.Tensor  # (n, Dv) acc / l
    weights: torch.Tensor  # (n, T) exp(x − m − log l): the softmax rebuilt from m and l
    reference_weights: torch.Tensor  # (n, T) torch.softmax(x)
    reference_output: torch.Tensor  # (n, Dv) torch.softmax(x) @ V

    @property
    def max_error(self) -> float:
        """Largest absolute difference between the online result and the plain softmax."""
        return max(
            float((self.output - self.reference_output).abs().max()),
            float((self.weights - self.reference_weights).abs().max()),
        )


def online_softmax_trace(
    logits: torch.Tensor, values: torch.Tensor | None = None, *, block: int = 4
) -> OnlineSoftmaxTrace:
    """Run the online softmax over `logits` (n, T) in key tiles of `block`; record each step.

    `values` (T, Dv) defaults to the identity, so the accumulator shows the weights themselves.
    Arithmetic happens in the dtype of `logits` (float16 works and stays finite).
    """
    if logits.dim() != 2 or logits.shape[1] == 0:
        raise ValueError(f"logits must be (rows, T) with T ≥ 1, got {tuple(logits.shape)}")
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got {logits.dtype}")
    n, T = logits.shape
    if values is None:
        values = torch.eye(T, dtype=logits.dtype)
    if values.dim() != 2 or values.shape[0] != T:
        raise ValueError(f"values must be (T={T}, Dv), got {tuple(values.shape)}")
    values = values.to(logits.dtype)
    m = torch.full((n,), float("-inf"), dtype=logits.dtype)
    l = torch.zeros(n, dtype=logits.dtype)
    acc = torch.zeros(n, values.shape[1], dtype=logits.dtype)
    steps = []
    for i, k0 in enumerate(range(0, T, block)):
        k1 = min(k0 + block, T)
        s = logits[:, k0:k1]
        tile_max = s.amax(-1)
        m_new = torch.maximum(m, tile_max)
        alpha = torch.exp(m - m_new)  # exp(−inf) = 0 on the first tile
        p = torch.exp(s - m_new[:, None])
        l = l * alpha + p.sum(-1)
        acc = acc * alpha[:, None] + p @ values[k0:k1]
        steps.append(OnlineSoftmaxStep(i, k0, k1, s, tile_max, m, m_new, alpha, p, l, acc))
        m = m_new
    weights = torch.exp(logits - (m + torch.log(l))[:, None])
    ref_w = torch.softmax(logits.double(), -1)
    return OnlineSoftmaxTrace(
        steps=tuple(steps),
        output=acc / l[:, None],
        weights=weights,
        reference_weights=ref_w.to(logits.dtype),
        reference_output=(ref_w @ values.double()).to(logits.dtype),
    )


def naive_softmax(x: torch.Tensor) -> torch.Tensor:
    """exp(x) / Σ exp(x) as written in a textbook: overflows to inf, then NaN, for large x."""
    e = torch.exp(x)
    return e / e.sum(-1, keepdim=True)


def stable_softmax(x: torch.Tensor) -> torch.Tensor:
    """exp(x − max x) / Σ exp(x − max x): every exp is at most 1, so nothing overflows."""
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def overflow_demo(logits: list[float], dtype: torch.dtype = torch.float16) -> dict[str, list]:
    """The same row through both softmaxes in `dtype`, with a float64 reference.

    A logit that is not finite once stored in `dtype` (float16 holds at most ±65504; NaN)
    is refused: no softmax, stable or not, can be computed from it, so the demo would only
    show NaN on both sides.
    """
    x = torch.tensor(logits, dtype=dtype)
    bad = [(v, float(c)) for v, c in zip(logits, x.tolist(), strict=True) if not math.isfinite(c)]
    if bad:
        big = torch.finfo(dtype).max
        name = str(dtype).removeprefix("torch.")
        what = ", ".join(f"{v:g} is not a number" if math.isnan(v) else f"{v:g} becomes {c:g}"
                         for v, c in bad)
        raise ValueError(
            f"{what} in {name} (its largest number is {big:g}) before any exp, so neither "
            f"softmax can be computed: enter logits between −{big:g} and {big:g} (the naive "
            f"softmax already overflows above ≈ {math.log(big):.2f}).")
    return {
        "logit": [float(v) for v in x],
        "exp(x)": [float(v) for v in torch.exp(x)],
        "naive softmax": [float(v) for v in naive_softmax(x)],
        "stable softmax": [float(v) for v in stable_softmax(x)],
        "float64 softmax": [float(v) for v in torch.softmax(x.double(), -1)],
    }


def parse_logits(text: str) -> list[float]:
    """Parse '12, 11, 10' (commas or spaces) into floats; ValueError naming the bad entry."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise ValueError("enter at least one logit, e.g. 12, 11, 10, 2")
    if len(parts) > 64:
        raise ValueError(f"at most 64 logits, got {len(parts)}")
    out = []
    for p in parts:
        try:
            out.append(float(p))
        except ValueError:
            raise ValueError(f"{p!r} is not a number; enter logits like 12, 11, 10, 2") from None
    return out

"""FlashAttention as a reader learns it: the online-softmax loop over tiles, plain and short.

The fast kernel in `attention.py` (`_tiled_forward`, `_tiled_backward`) computes exactly this
but skips tiles the mask hides, builds each tile's mask on the fly, works in base-2 units,
reuses buffers and spreads the tiles over worker threads. This version does none of that, so
the algorithm is visible; the tests hold the fast kernel to it (and this one to naive
attention). For clarity it builds the whole mask once: do not use it for long inputs.

Forward, per query tile: keep a running row max m, a running sum l = Σ exp(s − m) and an
accumulator acc = Σ exp(s − m)·V; when a key tile raises the max from m to m', rescale l and
acc by exp(m − m'). The output is acc / l; the only thing saved for backward besides O is
the row's log-sum-exp, LSE = m + log l. Backward recomputes each tile's P = exp(S − LSE).
"""

from __future__ import annotations

import math

import torch

from lmcore.models.masks import build_mask


def _scores(q: torch.Tensor, k: torch.Tensor, scale: float,
            visible: torch.Tensor | None) -> torch.Tensor:
    """One tile's scaled scores Q·Kᵀ·scale (B, H, n, m); keys the mask hides get -inf."""
    s = q @ k.transpose(-2, -1) * scale
    return s if visible is None else s.masked_fill(~visible, -math.inf)


def reference_tiled_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                            causal: bool = False, prefix_len: torch.Tensor | None = None,
                            key_padding_mask: torch.Tensor | None = None,
                            scale: float | None = None, block_q: int = 64,
                            block_k: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """O (B, H, Tq, Dv) and LSE (B, H, Tq) by the online softmax; +inf LSE for hidden rows."""
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    mask = build_mask(Tq, Tk, causal=causal, prefix_len=prefix_len,
                      key_padding_mask=key_padding_mask, device=q.device)  # (B|1, 1, Tq, Tk)
    out = torch.zeros(B, H, Tq, v.shape[-1], dtype=q.dtype, device=q.device)
    lse = torch.zeros(B, H, Tq, dtype=q.dtype, device=q.device)
    for q0 in range(0, Tq, block_q):
        q1 = min(q0 + block_q, Tq)
        m = torch.full((B, H, q1 - q0), -math.inf, dtype=q.dtype, device=q.device)
        l = torch.zeros_like(m)  # noqa: E741
        acc = torch.zeros(B, H, q1 - q0, v.shape[-1], dtype=q.dtype, device=q.device)
        for k0 in range(0, Tk, block_k):
            k1 = min(k0 + block_k, Tk)
            tile = None if mask is None else mask[..., q0:q1, k0:k1]
            s = _scores(q[:, :, q0:q1], k[:, :, k0:k1], scale, tile)  # (B, H, n, m)
            m_new = torch.maximum(m, s.amax(-1))
            m_safe = m_new.masked_fill(m_new == -math.inf, 0.0)  # a row that saw no key yet
            alpha = torch.exp(m - m_safe)  # rescales what was summed under the old max
            p = torch.exp(s - m_safe[..., None])
            l = l * alpha + p.sum(-1)  # noqa: E741
            acc = acc * alpha[..., None] + p @ v[:, :, k0:k1]
            m = m_new
        seen = l > 0  # a row whose keys are all hidden gives 0, not 0/0
        l_safe = torch.where(seen, l, 1.0)
        out[:, :, q0:q1] = torch.where(seen[..., None], acc / l_safe[..., None], 0.0)
        lse[:, :, q0:q1] = torch.where(seen, m + torch.log(l), math.inf)
    return out, lse


def reference_tiled_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             out: torch.Tensor, lse: torch.Tensor, dout: torch.Tensor, *,
                             causal: bool = False, prefix_len: torch.Tensor | None = None,
                             key_padding_mask: torch.Tensor | None = None,
                             scale: float | None = None, block_q: int = 64, block_k: int = 64
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dQ, dK, dV from O and LSE alone (FlashAttention-2): P is recomputed tile by tile."""
    Tq, D, Tk = q.shape[2], q.shape[3], k.shape[2]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    mask = build_mask(Tq, Tk, causal=causal, prefix_len=prefix_len,
                      key_padding_mask=key_padding_mask, device=q.device)
    delta = (dout * out).sum(-1)  # (B, H, Tq): rowsum(dO ∘ O) = Σ_j P_ij dP_ij
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    for k0 in range(0, Tk, block_k):
        k1 = min(k0 + block_k, Tk)
        kj, vj = k[:, :, k0:k1], v[:, :, k0:k1]
        for q0 in range(0, Tq, block_q):
            q1 = min(q0 + block_q, Tq)
            qi, doi = q[:, :, q0:q1], dout[:, :, q0:q1]
            tile = None if mask is None else mask[..., q0:q1, k0:k1]
            s = _scores(qi, kj, scale, tile)  # (B, H, n, m)
            p = torch.exp(s - lse[:, :, q0:q1, None])  # the forward's softmax, recomputed
            dv[:, :, k0:k1] += p.transpose(-2, -1) @ doi  # dV = Pᵀ dO
            dp = doi @ vj.transpose(-2, -1)  # dP = dO Vᵀ
            ds = p * (dp - delta[:, :, q0:q1, None])  # dS = P ∘ (dP − D)
            dq[:, :, q0:q1] += ds @ kj * scale  # dQ = dS K · scale
            dk[:, :, k0:k1] += ds.transpose(-2, -1) @ qi * scale  # dK = dSᵀ Q · scale
    return dq, dk, dv

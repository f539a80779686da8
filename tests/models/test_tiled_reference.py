"""The plain tiled kernel equals naive attention; the fast kernel equals the plain one, tile by
tile: the same outputs, the same log-sum-exp it saves, the same gradients, with every mask."""

from __future__ import annotations

import pytest
import torch
from attention_inputs import mask_kinds, random_qkv

from lmcore.models.attention import _Plan, _tiled_backward, _tiled_forward, naive_attention
from lmcore.models.masks import build_mask
from lmcore.models.tiled_reference import reference_tiled_backward, reference_tiled_forward

MASKS = ("bidirectional", "causal", "prefix", "padding", "causal+leftpad", "prefix+padding")
B, H, D = 3, 2, 4


def _fast(q, k, v, dout, kw, bq, bk, workers):
    """The fast kernel's forward (O, LSE) and backward (dQ, dK, dV), shaped (B, H, ...)."""
    Tq, Tk = q.shape[2], k.shape[2]
    plan = _Plan(B, Tq, Tk, kw.get("causal", False), kw.get("prefix_len"),
                 kw.get("key_padding_mask"), bq, bk, q.device)
    q3, k3, v3 = (t.reshape(B * H, -1, D) for t in (q, k, v))
    scale = D ** -0.5
    out, lse = _tiled_forward(q3, k3, v3, scale, plan, (B, H), workers)
    grads = _tiled_backward(q3, k3, v3, out, lse, dout.reshape(B * H, Tq, D), scale, plan,
                            (B, H), workers)
    return (out.view(B, H, Tq, D), lse.view(B, H, Tq),
            *(g.view(B, H, -1, D) for g in grads))


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("Tq,Tk", [(13, 13), (5, 13)])  # full and decode (queries at the end)
def test_reference_equals_naive_attention_forward_and_backward(mask, Tq, Tk):
    q, k, v = (t.detach().double() for t in random_qkv(B, H, Tq, Tk, D, seed=3))
    kw = mask_kinds(B, Tk, seed=3)[mask]
    out, lse = reference_tiled_forward(q, k, v, block_q=4, block_k=3, **kw)
    qd, kd, vd = (t.clone().requires_grad_() for t in (q, k, v))
    ref = naive_attention(qd, kd, vd, **kw)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-12, atol=1e-12)
    # LSE is the log-sum-exp of the visible scaled scores (+inf where a row sees nothing)
    scores = (q @ k.transpose(-2, -1)) * D ** -0.5
    m = build_mask(Tq, Tk, device=q.device, **kw)
    if m is not None:
        scores = scores.masked_fill(~m, float("-inf"))
    expect = torch.logsumexp(scores, -1)
    expect = torch.where(expect == float("-inf"), float("inf"), expect)
    torch.testing.assert_close(lse, expect, rtol=1e-12, atol=1e-12)
    dout = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    grads = reference_tiled_backward(q, k, v, out, lse, dout, block_q=4, block_k=3, **kw)
    expect_grads = torch.autograd.grad(ref, (qd, kd, vd), dout)
    for got, want in zip(grads, expect_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("mask", MASKS)
def test_fast_kernel_equals_the_plain_one(mask, workers, two_threads):
    """Same tiles, float64: the fast kernel's skipping, base-2 units, buffers and worker
    threads change nothing but rounding."""
    Tq = Tk = 29
    q, k, v = (t.detach().double() for t in random_qkv(B, H, Tq, Tk, D, seed=9))
    kw = mask_kinds(B, Tk, seed=9)[mask]
    dout = torch.randn(B, H, Tq, D, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(1))
    out, lse = reference_tiled_forward(q, k, v, block_q=8, block_k=4, **kw)
    grads = reference_tiled_backward(q, k, v, out, lse, dout, block_q=8, block_k=4, **kw)
    f_out, f_lse, *f_grads = _fast(q, k, v, dout, kw, 8, 4, workers)
    torch.testing.assert_close(f_out, out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f_lse, lse, rtol=1e-12, atol=1e-12)
    for got, want in zip(f_grads, grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)

"""Random q, k, v and every mask kind, shared by the attention tests (imported via conftest)."""

from __future__ import annotations

import torch


def random_qkv(B, H, Tq, Tk, D, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Tq, D, generator=g, dtype=dtype).requires_grad_()
    k = torch.randn(B, H, Tk, D, generator=g, dtype=dtype).requires_grad_()
    v = torch.randn(B, H, Tk, D, generator=g, dtype=dtype).requires_grad_()
    return q, k, v


def mask_kinds(B, Tk, seed):
    """Every mask kind: bidirectional, causal, prefix (per-sample), padding incl. a fully padded
    sample, and causal + left padding (whose first rows see nothing at all)."""
    g = torch.Generator().manual_seed(seed)
    prefix = torch.randint(0, Tk + 1, (B,), generator=g)
    if B > 1:
        prefix[0], prefix[1] = 0, Tk // 2 + 1
    kpm = torch.rand(B, Tk, generator=g) > 0.3
    if B > 1:
        kpm[1] = False  # fully padded sample: every row hidden
    left = torch.ones(B, Tk, dtype=torch.bool)
    left[0, : (Tk + 1) // 2] = False  # left padding: with causal, early rows see nothing
    return {
        "bidirectional": {},
        "causal": {"causal": True},
        "prefix": {"prefix_len": prefix},
        "padding": {"key_padding_mask": kpm},
        "causal+leftpad": {"causal": True, "key_padding_mask": left},
        "prefix+padding": {"prefix_len": prefix, "key_padding_mask": kpm},
    }

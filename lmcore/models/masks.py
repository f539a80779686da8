"""Attention masks shared by every attention implementation: causal, prefix, bidirectional, padding.

A mask is boolean, True = the query may attend to the key, shaped (B or 1, 1, Tq, Tk).

Position convention (the KV-cache one): when Tq != Tk the queries are the *last* Tq positions of
the Tk keys, so query row i sits at absolute position i + (Tk - Tq). "Causal" therefore lets row
i see keys 0 .. i + Tk - Tq (bottom-right aligned). For Tq == Tk this is the usual lower
triangle and equals `scaled_dot_product_attention(..., is_causal=True)`; for Tq != Tk sdpa's
`is_causal` is top-left aligned, so `sdpa_attention` passes an explicit mask instead.

The same rules are exposed per tile (`tile_mask`, `tile_visibility`) so the tiled kernel builds
each block's mask on the fly from positions and never needs a T×T tensor.
"""

from __future__ import annotations

import torch

MASK_KINDS = ("causal", "prefix", "bidirectional")


class MaskError(ValueError):
    """A mask argument has the wrong shape, dtype or values; the message says which."""


def check_mask_args(
    B: int,
    Tq: int,
    Tk: int,
    *,
    causal: bool,
    prefix_len: torch.Tensor | None,
    key_padding_mask: torch.Tensor | None,
) -> None:
    """Validate prefix_len (LongTensor (B,), 0..Tk) and key_padding_mask (bool (B, Tk))."""
    if prefix_len is not None:
        if not isinstance(prefix_len, torch.Tensor):
            raise MaskError("prefix_len must be a LongTensor of shape (B,)")
        if prefix_len.dtype in (torch.bool,) or prefix_len.is_floating_point():
            raise MaskError(f"prefix_len must hold integers, got dtype {prefix_len.dtype}")
        if prefix_len.shape != (B,):
            raise MaskError(f"prefix_len must have shape ({B},), got {tuple(prefix_len.shape)}")
        if B and (int(prefix_len.min()) < 0 or int(prefix_len.max()) > Tk):
            raise MaskError(f"prefix_len values must lie in 0..{Tk}, got {prefix_len.tolist()}")
    if key_padding_mask is not None:
        if not isinstance(key_padding_mask, torch.Tensor) or key_padding_mask.dtype != torch.bool:
            raise MaskError("key_padding_mask must be a bool tensor (True = real token)")
        if key_padding_mask.shape != (B, Tk):
            raise MaskError(
                f"key_padding_mask must have shape ({B}, {Tk}), got {tuple(key_padding_mask.shape)}"
            )


def tile_mask(
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    *,
    causal: bool = False,
    prefix_len: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """Mask for queries at absolute positions q_pos (n,) vs keys k_pos (m,); None = all visible.

    Returns bool (1 or B, 1, n, m). `key_padding_mask` is the (B, m) slice for these keys.
    With prefix_len set, causal is implied after the prefix (prefix-LM).
    """
    mask = None
    if causal or prefix_len is not None:
        mask = (k_pos[None, :] <= q_pos[:, None])[None, None]  # (1, 1, n, m)
        if prefix_len is not None:
            in_prefix = k_pos[None, :] < prefix_len[:, None]  # (B, m)
            mask = mask | in_prefix[:, None, None, :]  # (B, 1, n, m)
    if key_padding_mask is not None:
        kp = key_padding_mask[:, None, None, :]  # (B, 1, 1, m)
        mask = kp.expand(-1, 1, q_pos.shape[0], -1) if mask is None else mask & kp
    return mask


def build_mask(
    Tq: int,
    Tk: int,
    *,
    causal: bool = False,
    prefix_len: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor | None:
    """The full boolean mask (B or 1, 1, Tq, Tk), or None when every key is visible."""
    if prefix_len is not None:
        device = prefix_len.device
    elif key_padding_mask is not None:
        device = key_padding_mask.device
    q_pos = torch.arange(Tk - Tq, Tk, device=device)
    k_pos = torch.arange(Tk, device=device)
    return tile_mask(
        q_pos, k_pos, causal=causal, prefix_len=prefix_len, key_padding_mask=key_padding_mask
    )


def mask_for(
    kind: str,
    T: int,
    *,
    prefix_len: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """Mask by name ('causal' | 'prefix' | 'bidirectional'), for pictures and explanations."""
    if kind not in MASK_KINDS:
        raise MaskError(f"unknown mask kind {kind!r}; choose one of {', '.join(MASK_KINDS)}")
    if kind == "prefix" and prefix_len is None:
        raise MaskError("the prefix mask needs prefix_len (one prefix length per sample)")
    return build_mask(
        T,
        T,
        causal=kind == "causal",
        prefix_len=prefix_len if kind == "prefix" else None,
        key_padding_mask=key_padding_mask,
    )

"""Masks: each kind equals its definition written as plain loops; tiles equal slices of the whole."""

from __future__ import annotations

import pytest
import torch

from lmcore.models.masks import MaskError, build_mask, check_mask_args, mask_for, tile_mask


def _loop_mask(Tq, Tk, causal, prefix_len, kpm, B):
    """The definition, one (b, i, j) at a time; query row i sits at position i + Tk - Tq."""
    m = torch.ones(B, 1, Tq, Tk, dtype=torch.bool)
    for b in range(B):
        for i in range(Tq):
            p = i + Tk - Tq
            for j in range(Tk):
                ok = True
                if causal or prefix_len is not None:
                    ok = j <= p or (prefix_len is not None and j < int(prefix_len[b]))
                if kpm is not None:
                    ok = ok and bool(kpm[b, j])
                m[b, 0, i, j] = ok
    return m


@pytest.mark.parametrize("Tq,Tk", [(1, 1), (5, 5), (7, 7), (1, 9), (3, 8)])
def test_build_mask_matches_loop_definition(Tq, Tk):
    g = torch.Generator().manual_seed(Tq * 31 + Tk)
    B = 3
    prefix = torch.randint(0, Tk + 1, (B,), generator=g)
    kpm = torch.rand(B, Tk, generator=g) > 0.3
    kpm[1] = False  # a fully padded sample
    for causal, pl, kp in [
        (True, None, None),
        (False, prefix, None),
        (False, None, kpm),
        (True, None, kpm),
        (False, prefix, kpm),
    ]:
        got = build_mask(Tq, Tk, causal=causal, prefix_len=pl, key_padding_mask=kp)
        want = _loop_mask(Tq, Tk, causal, pl, kp, B)
        assert torch.equal(got.expand_as(want), want), (causal, pl, kp)


def test_bidirectional_is_none_and_causal_is_lower_triangle():
    assert build_mask(6, 6) is None
    assert torch.equal(build_mask(6, 6, causal=True)[0, 0], torch.ones(6, 6).tril().bool())
    # KV-cache convention: the last query row sees every key
    assert build_mask(2, 6, causal=True)[0, 0, -1].all()


def test_prefix_is_bidirectional_inside_and_causal_after():
    m = mask_for("prefix", 6, prefix_len=torch.tensor([3, 0]))
    assert m[0, 0, 0, :3].all() and not m[0, 0, 0, 3:].any()  # row 0 sees the whole prefix
    assert torch.equal(m[1, 0], torch.ones(6, 6).tril().bool())  # prefix 0 = causal
    assert torch.equal(m[0, 0, 3:], build_mask(6, 6, causal=True)[0, 0, 3:])


def test_tile_mask_equals_slice_of_full_mask():
    B, T = 2, 13
    prefix = torch.tensor([4, 9])
    kpm = torch.rand(B, T, generator=torch.Generator().manual_seed(0)) > 0.2
    full = build_mask(T, T, prefix_len=prefix, key_padding_mask=kpm)
    pos = torch.arange(T)
    for q0, q1, k0, k1 in [(0, 5, 0, 5), (5, 13, 0, 7), (3, 4, 10, 13)]:
        t = tile_mask(pos[q0:q1], pos[k0:k1], prefix_len=prefix, key_padding_mask=kpm[:, k0:k1])
        assert torch.equal(t.expand(B, 1, q1 - q0, k1 - k0), full[:, :, q0:q1, k0:k1])


def test_bad_arguments_raise_mask_error():
    with pytest.raises(MaskError, match="shape"):
        check_mask_args(2, 4, 4, causal=False, prefix_len=torch.tensor([1]), key_padding_mask=None)
    with pytest.raises(MaskError, match="0..4"):
        check_mask_args(1, 4, 4, causal=False, prefix_len=torch.tensor([5]), key_padding_mask=None)
    with pytest.raises(MaskError, match="integers"):
        check_mask_args(
            1, 4, 4, causal=False, prefix_len=torch.tensor([1.0]), key_padding_mask=None
        )
    with pytest.raises(MaskError, match="bool"):
        check_mask_args(1, 4, 4, causal=False, prefix_len=None, key_padding_mask=torch.ones(1, 4))
    with pytest.raises(MaskError, match=r"\(1, 4\)"):
        check_mask_args(
            1, 4, 4, causal=False, prefix_len=None, key_padding_mask=torch.ones(1, 5).bool()
        )
    with pytest.raises(MaskError, match="unknown mask kind"):
        mask_for("sideways", 4)
    with pytest.raises(MaskError, match="prefix_len"):
        mask_for("prefix", 4)

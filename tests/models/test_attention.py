"""Attention: tiled and sdpa equal naive computed in float64, forward and gradients, every mask."""

from __future__ import annotations

import pytest
import torch
from attention_inputs import mask_kinds, random_qkv
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcore.models.attention import (
    AttentionError,
    _Plan,
    attention,
    naive_attention,
    sdpa_attention,
    tiled_attention,
)
from lmcore.models.masks import MaskError, build_mask
from lmcore.models.tile_pool import run_units

TOL = 1e-5  # relative error in float32 against the float64 reference


def _rel(a, b, scale=None):
    """Max abs error over the reference's max magnitude (or a given scale)."""
    scale = b.detach().abs().max() if scale is None else scale
    return ((a.detach().double() - b.detach()).abs().max() / max(float(scale), 1e-12)).item()


def _check_against_reference(q, k, v, fn, mask_kw, tol=TOL):
    """fn's forward and gradients equal naive attention run in float64 on the same inputs."""
    qd, kd, vd = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = naive_attention(qd, kd, vd, **mask_kw)
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ref_grads = torch.autograd.grad(ref, (qd, kd, vd), g)
    y = fn(q, k, v, **mask_kw)
    assert y.dtype == q.dtype and y.shape == ref.shape
    assert torch.isfinite(y).all()
    assert _rel(y, ref) < tol
    grads = torch.autograd.grad(y, (q, k, v), g.to(q.dtype))
    # one scale for all three gradients: dq is exactly 0 when a row sees a single key
    scale = max(float(w.abs().max()) for w in ref_grads)
    for got, want, name in zip(grads, ref_grads, "qkv", strict=True):
        assert torch.isfinite(got).all(), name
        assert _rel(got, want, scale) < tol, (name, _rel(got, want, scale))
    return y, grads


def _tiled(bq, bk):
    return lambda q, k, v, **kw: tiled_attention(q, k, v, block_q=bq, block_k=bk, **kw)


@pytest.mark.parametrize("T", [1, 7, 33, 130])
@pytest.mark.parametrize(
    "mask", ["bidirectional", "causal", "prefix", "padding", "causal+leftpad", "prefix+padding"]
)
def test_tiled_and_sdpa_equal_float64_naive(T, mask):
    B, H, D = 2, 3, 16
    q, k, v = random_qkv(B, H, T, T, D, seed=T)
    kw = mask_kinds(B, T, seed=T)[mask]
    _check_against_reference(q, k, v, sdpa_attention, kw)
    for bq, bk in [(16, 16), (8, 32), (64, 16), (256, 512)]:
        _check_against_reference(q, k, v, _tiled(bq, bk), kw)


@pytest.mark.parametrize("B,H", [(1, 1), (3, 2)])
def test_batch_and_head_counts(B, H):
    q, k, v = random_qkv(B, H, 45, 45, 8, seed=B * 10 + H)
    for kw in mask_kinds(B, 45, seed=3).values():
        _check_against_reference(q, k, v, _tiled(16, 8), kw)


@pytest.mark.parametrize("Tq,Tk", [(1, 33), (5, 37), (16, 40)])
def test_decode_shapes_causal_aligned_to_the_end(Tq, Tk):
    """Tq != Tk (KV cache): queries are the last Tq positions, so the output equals the last Tq
    rows of full causal attention over Tk positions."""
    q, k, v = random_qkv(2, 2, Tk, Tk, 8, seed=Tq)
    full = naive_attention(q.double(), k.double(), v.double(), causal=True)[:, :, -Tq:]
    q_last = q.detach()[:, :, -Tq:].clone().requires_grad_()
    for fn in (sdpa_attention, _tiled(4, 8), tiled_attention):
        assert _rel(fn(q_last, k, v, causal=True), full) < TOL
        _check_against_reference(q_last, k, v, fn, {"causal": True})


def test_fully_masked_rows_give_zeros_and_zero_gradients():
    B, H, T = 2, 2, 9
    q, k, v = random_qkv(B, H, T, T, 4, seed=0)
    kpm = torch.ones(B, T, dtype=torch.bool)
    kpm[1] = False  # sample 1 has no real key at all
    kpm[0, :3] = False  # with causal, rows 0..2 of sample 0 see nothing
    for fn in (naive_attention, sdpa_attention, _tiled(4, 4)):
        y = fn(q, k, v, causal=True, key_padding_mask=kpm)
        assert torch.equal(y[1], torch.zeros_like(y[1])), fn
        assert torch.equal(y[0, :, :3], torch.zeros_like(y[0, :, :3])), fn
        dq, dk, dv = torch.autograd.grad(y.sum(), (q, k, v))
        assert torch.isfinite(dq).all() and torch.isfinite(dk).all() and torch.isfinite(dv).all()
        assert not dq[1].any() and not dk[1].any() and not dv[1].any(), fn
        assert not dq[0, :, :3].any(), fn


@pytest.mark.parametrize("mask", ["causal", "prefix+padding", "causal+leftpad", "bidirectional"])
def test_tiled_gradcheck_float64(mask):
    B, H, T, D = 2, 1, 6, 3
    q, k, v = random_qkv(B, H, T, T, D, seed=1, dtype=torch.float64)
    kw = mask_kinds(B, T, seed=1)[mask]

    def f(q, k, v):
        return tiled_attention(q, k, v, block_q=4, block_k=2, **kw)

    assert torch.autograd.gradcheck(f, (q, k, v))


def test_tiled_gradcheck_decode_shape():
    q, k, v = random_qkv(1, 2, 3, 7, 2, seed=2, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda q, k, v: tiled_attention(q, k, v, causal=True, block_q=2, block_k=3), (q, k, v)
    )


def _saved_bytes(fn):
    """Bytes of distinct storages autograd keeps for backward, and the largest tensor saved."""
    storages, largest = {}, 0

    def pack(t):
        nonlocal largest
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        largest = max(largest, t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values()), largest


@pytest.mark.parametrize("kw", [{"causal": True}, {"prefix_len": torch.tensor([3, 100])}])
def test_tiled_saves_no_txt_tensor_for_backward(kw):
    B, H, T, D = 2, 2, 256, 8
    q, k, v = random_qkv(B, H, T, T, D, seed=0)
    total, largest = _saved_bytes(lambda: tiled_attention(q, k, v, block_q=64, block_k=64, **kw))
    # q, k, v, O (B·H·T·D each) and the log-sum-exp (B·H·T), float32, plus the (B,) prefix
    assert total <= (4 * B * H * T * D + B * H * T) * 4 + 64
    assert largest <= B * H * T * D < T * T
    naive_total, naive_largest = _saved_bytes(lambda: naive_attention(q, k, v, **kw))
    assert naive_largest >= B * H * T * T  # the reference does keep the weights
    assert naive_total >= B * H * T * T * 4 > 4 * total  # 256 weights per row vs 4·8+1 floats


def test_tiled_saved_bytes_grow_linearly_in_t():
    sizes = []
    for T in (128, 256, 512):
        qkv = random_qkv(1, 2, T, T, 8, seed=T)
        sizes.append(_saved_bytes(lambda qkv=qkv: tiled_attention(*qkv, causal=True))[0])
    assert sizes[1] == 2 * sizes[0] and sizes[2] == 2 * sizes[1]


def _plan_for(B, Tq, Tk, kw, bq, bk):
    return _Plan(
        B,
        Tq,
        Tk,
        kw.get("causal", False),
        kw.get("prefix_len"),
        kw.get("key_padding_mask"),
        bq,
        bk,
        torch.device("cpu"),
    )


def _check_plan(B, Tq, Tk, kw, bq, bk):
    """The plan skips exactly the tiles the full mask hides in every sample, runs without a
    mask exactly the tiles visible everywhere, and its tile masks equal the full mask's slices.
    Returns how many tiles were skipped and how many ran unmasked."""
    full = build_mask(Tq, Tk, **kw)
    full = full.expand(B, 1, Tq, Tk)
    plan = _plan_for(B, Tq, Tk, kw, bq, bk)
    planned = {(q0, k0): needs for q0, _, k0, _, needs in plan.pairs}
    assert len(planned) == len(plan.pairs)  # no tile visited twice
    skipped = unmasked = 0
    for q0 in range(0, Tq, bq):
        for k0 in range(0, Tk, bk):
            block = full[:, :, q0 : q0 + bq, k0 : k0 + bk]
            if not block.any():  # hidden in every sample: must be skipped
                assert (q0, k0) not in planned, (kw, q0, k0)
                skipped += 1
                continue
            assert (q0, k0) in planned, (kw, q0, k0)  # a visible key is never skipped
            if block.all():
                assert not planned[(q0, k0)], (kw, q0, k0)
                unmasked += 1
            else:
                assert planned[(q0, k0)], (kw, q0, k0)
                hidden = plan.hidden(q0, min(q0 + bq, Tq), k0, min(k0 + bk, Tk))
                assert torch.equal(hidden.expand_as(block), ~block)
    return skipped, unmasked


def test_plan_skips_only_hidden_tiles_and_masks_only_partial_ones():
    """Every tile the plan skips is fully hidden, and every fully hidden tile is skipped (by
    the causal triangle, by padding in every sample, or by causal ∧ padding together); every
    unmasked tile is fully visible; the on-the-fly tile masks equal slices of the full mask."""
    B, Tq, Tk = 3, 21, 29
    prefix = torch.tensor([0, 11, 29])
    kpm = torch.ones(B, Tk, dtype=torch.bool)
    kpm[:, 20:25] = False  # keys 20..24 padded in every sample
    kpm[1, 3] = False
    for kw in (
        {"causal": True},
        {"prefix_len": prefix},
        {"causal": True, "key_padding_mask": kpm},
        {"key_padding_mask": kpm},
        {"prefix_len": prefix, "key_padding_mask": kpm},
    ):
        skipped, unmasked = _check_plan(B, Tq, Tk, kw, 4, 5)
        assert unmasked > 0, kw  # some tiles run without a mask
        # some are not run at all (a prefix of 29 = Tk lets sample 2 see every key)
        assert skipped > 0 or "key_padding_mask" not in kw and "causal" not in kw, kw
    # padding in every sample alone hides key tile 20..24 (bk=5): skipped for every query tile
    plan = _plan_for(B, Tq, Tk, {"key_padding_mask": kpm}, 4, 5)
    assert {k0 for _, _, k0, _, _ in plan.pairs} == {0, 5, 10, 15, 25}


def test_plan_skips_tiles_hidden_only_by_causal_and_padding_together():
    """Left padding that differs per sample: in tile (rows 0..3, keys 0..7) sample 0's rows may
    reach keys 0..3 but those are padded, sample 1's keys 0..5 are padded too; neither the
    causal triangle nor the padding alone hides the tile, both together do."""
    B, T = 2, 16
    kpm = torch.ones(B, T, dtype=torch.bool)
    kpm[0, :4] = False  # sample 0: keys 4..7 real, but rows 0..3 cannot reach them
    kpm[1, :6] = False
    kw = {"causal": True, "key_padding_mask": kpm}
    plan = _plan_for(B, T, T, kw, 4, 8)
    assert (0, 0) not in {(q0, k0) for q0, _, k0, _, _ in plan.pairs}
    assert kpm[:, :8].any()  # the padding alone leaves real keys in the tile
    skipped, _ = _check_plan(B, T, T, kw, 4, 8)
    assert skipped == 1 + 2  # that tile, and the 2 tiles (rows 0..7, keys 8..15) past the diagonal
    # the same with a prefix: sample 1's prefix of 2 lies inside its padding, still hidden
    kw = {"prefix_len": torch.tensor([0, 2]), "key_padding_mask": kpm}
    assert (0, 0) not in {(q0, k0) for q0, _, k0, _, _ in _plan_for(B, T, T, kw, 4, 8).pairs}
    _check_plan(B, T, T, kw, 4, 8)
    # ...and a prefix reaching a real key makes the tile visible again
    kw = {"prefix_len": torch.tensor([5, 0]), "key_padding_mask": kpm}
    assert (0, 0) in {(q0, k0) for q0, _, k0, _, _ in _plan_for(B, T, T, kw, 4, 8).pairs}
    _check_plan(B, T, T, kw, 4, 8)


@settings(max_examples=40, deadline=None)
@given(
    B=st.integers(1, 3),
    Tq=st.integers(1, 30),
    extra=st.integers(0, 6),
    bq=st.integers(1, 9),
    bk=st.integers(1, 9),
    kind=st.sampled_from(["causal", "prefix", "bidirectional"]),
    seed=st.integers(0, 2**16),
)
def test_property_plan_skips_exactly_the_hidden_tiles(B, Tq, extra, bq, bk, kind, seed):
    Tk = Tq + extra
    g = torch.Generator().manual_seed(seed)
    kpm = torch.rand(B, Tk, generator=g) > 0.5
    kpm[:, : int(torch.randint(0, Tk + 1, (1,), generator=g))] = False  # some left padding
    kw = {"key_padding_mask": kpm}
    if kind == "causal":
        kw["causal"] = True
    elif kind == "prefix":
        kw["prefix_len"] = torch.randint(0, Tk + 1, (B,), generator=g)
    _check_plan(B, Tq, Tk, kw, bq, bk)


def test_causal_plan_skips_upper_triangle():
    plan = _Plan(1, 1024, 1024, True, None, None, 256, 256, torch.device("cpu"))
    assert len(plan.pairs) == 4 * 5 // 2  # 10 of 16 tiles
    assert sum(p[4] for p in plan.pairs) == 4  # only the diagonal needs a mask


def test_float16_inputs_are_accumulated_in_float32():
    q, k, v = (t.detach().half() * 30 for t in random_qkv(1, 2, 40, 40, 16, seed=5))
    ref = naive_attention(q.double(), k.double(), v.double(), causal=True)
    y = tiled_attention(q, k, v, causal=True, block_q=16, block_k=16)
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    assert _rel(y, ref) < 2e-3


def test_dispatcher_and_return_weights():
    q, k, v = random_qkv(1, 2, 10, 10, 4, seed=3)
    for impl in ("naive", "sdpa", "tiled"):
        assert (
            _rel(
                attention(q, k, v, impl=impl, causal=True),
                naive_attention(q.double(), k.double(), v.double(), causal=True),
            )
            < TOL
        )
    y, w = naive_attention(q, k, v, causal=True, return_weights=True)
    assert w.shape == (1, 2, 10, 10)
    assert torch.allclose(w.sum(-1), torch.ones(1, 2, 10))
    assert not w.triu(1).any()
    with pytest.raises(AttentionError, match="unknown attention implementation"):
        attention(q, k, v, impl="fast")


def test_bad_inputs_raise_clear_errors():
    q, k, v = random_qkv(1, 2, 5, 5, 4, seed=0)
    with pytest.raises(AttentionError, match="4-D"):
        tiled_attention(q[0], k[0], v[0])
    with pytest.raises(AttentionError, match="head dims"):
        sdpa_attention(q, k[..., :3], v)
    with pytest.raises(AttentionError, match="tile sizes"):
        tiled_attention(q, k, v, block_q=0)
    with pytest.raises(MaskError, match="prefix_len"):
        naive_attention(q, k, v, prefix_len=torch.tensor([9]))


MASK_KINDS = st.sampled_from(
    ["bidirectional", "causal", "prefix", "padding", "causal+leftpad", "prefix+padding"]
)


@settings(max_examples=25, deadline=None)
@given(
    B=st.integers(1, 3),
    H=st.integers(1, 2),
    T=st.integers(1, 40),
    extra=st.integers(0, 9),
    D=st.sampled_from([1, 4, 8]),
    bq=st.integers(1, 24),
    bk=st.integers(1, 24),
    mask=MASK_KINDS,
    decode=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_tiled_equals_naive(B, H, T, extra, D, bq, bk, mask, decode, seed):
    Tk = T + extra if decode else T
    q, k, v = random_qkv(B, H, T, Tk, D, seed=seed)
    kw = mask_kinds(B, Tk, seed=seed)[mask]
    _check_against_reference(q, k, v, _tiled(bq, bk), kw)
    _check_against_reference(q, k, v, sdpa_attention, kw)


@pytest.mark.parametrize("mask", ["causal", "prefix+padding", "causal+leftpad", "bidirectional"])
def test_tiled_over_worker_threads_equals_float64_naive(two_threads, mask):
    B, H, T, D = 2, 3, 77, 8
    q, k, v = random_qkv(B, H, T, T, D, seed=11)
    kw = mask_kinds(B, T, seed=11)[mask]
    _check_against_reference(q, k, v, _tiled(16, 8), kw)  # 5 query tiles, 10 key tiles
    # reproducible: the key tiles are split among the workers the same way on every run
    runs = [torch.autograd.grad(_tiled(16, 8)(q, k, v, **kw).sum(), (q, k, v)) for _ in range(3)]
    for other in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], other, strict=True))
    qd, kd, vd = random_qkv(2, 1, 12, 12, 2, seed=12, dtype=torch.float64)
    kw = mask_kinds(2, 12, seed=12)[mask]
    assert torch.autograd.gradcheck(
        lambda q, k, v: tiled_attention(q, k, v, block_q=4, block_k=4, **kw), (qd, kd, vd)
    )


def test_tiled_over_worker_threads_in_inference_mode_and_errors_propagate(two_threads):
    q, k, v = (t.detach() for t in random_qkv(1, 2, 70, 70, 4, seed=4))
    with torch.inference_mode():
        y = tiled_attention(q, k, v, causal=True, block_q=8, block_k=8)
    ref = naive_attention(q.double(), k.double(), v.double(), causal=True)
    assert _rel(y, ref) < TOL

    def fail(u, slot):
        if u == 3:
            raise RuntimeError("tile 3 failed")

    with pytest.raises(RuntimeError, match="tile 3 failed"):
        run_units(list(range(6)), fail, 2)

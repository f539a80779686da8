"""Scaled dot-product attention three ways: naive (T×T weights), torch's sdpa, and lmcore's tiled.

All take (B, H, Tq, D) queries and (B, H, Tk, D) keys/values and the same masks (see `masks.py`:
causal, prefix per sample, bidirectional, plus key padding; when Tq != Tk the queries are the
last Tq positions, the KV-cache convention). A query row that the mask hides entirely gives a
zero output and zero gradients in every implementation, never NaN.
"""

from __future__ import annotations

import math
import threading

import torch
import torch.nn.functional as F

from lmcore.models.masks import build_mask, check_mask_args, tile_mask
from lmcore.models.tile_pool import run_units, tile_workers

IMPLS = ("sdpa", "naive", "tiled")


class AttentionError(ValueError):
    """Attention inputs with inconsistent shapes or an unknown implementation."""


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int, int, int]:
    """Validate (B, H, T, D) shapes; return B, H, Tq, Tk."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise AttentionError(
            f"q, k, v must be 4-D (B, H, T, D), got {tuple(q.shape)}, {tuple(k.shape)}, "
            f"{tuple(v.shape)}"
        )
    B, H, Tq, D = q.shape
    if k.shape[:2] != (B, H) or v.shape[:2] != (B, H):
        raise AttentionError(
            f"batch/head dims differ: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape[-1] != D:
        raise AttentionError(f"q and k head dims differ: {D} vs {k.shape[-1]}")
    if v.shape[2] != k.shape[2]:
        raise AttentionError(f"k and v lengths differ: {k.shape[2]} vs {v.shape[2]}")
    if not (q.dtype == k.dtype == v.dtype):
        raise AttentionError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    return B, H, Tq, k.shape[2]


def _check_args(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
                prefix_len: torch.Tensor | None,
                key_padding_mask: torch.Tensor | None) -> tuple[int, int, int, int]:
    """Validate q, k, v and the mask arguments together; return B, H, Tq, Tk."""
    B, H, Tq, Tk = _check_qkv(q, k, v)
    check_mask_args(B, Tq, Tk, causal=causal, prefix_len=prefix_len,
                    key_padding_mask=key_padding_mask)
    return B, H, Tq, Tk


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                    prefix_len: torch.Tensor | None = None,
                    key_padding_mask: torch.Tensor | None = None, scale: float | None = None,
                    return_weights: bool = False
                    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q·Kᵀ·scale + mask)·V, materialising the (B, H, Tq, Tk) weights (for pictures)."""
    B, H, Tq, Tk = _check_args(q, k, v, causal, prefix_len, key_padding_mask)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    att = (q @ k.transpose(-2, -1)).mul_(scale)  # (B, H, Tq, Tk); in place: one T×T fewer
    mask = build_mask(Tq, Tk, causal=causal, prefix_len=prefix_len,
                      key_padding_mask=key_padding_mask, device=q.device)
    row_any = None
    if mask is not None:
        row_any = mask.any(-1, keepdim=True)  # (B|1, 1, Tq, 1) rows with a visible key
        # a fully hidden row keeps finite logits (softmax stays finite); its output is zeroed
        att.masked_fill_(~(mask | ~row_any), float("-inf"))
    att = torch.softmax(att, dim=-1)
    y = att @ v  # (B, H, Tq, Dv)
    if row_any is not None and not bool(row_any.all()):
        y = y.masked_fill(~row_any, 0.0)
        att = att.masked_fill(~row_any, 0.0) if return_weights else att
    return (y, att) if return_weights else y


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                   prefix_len: torch.Tensor | None = None,
                   key_padding_mask: torch.Tensor | None = None,
                   scale: float | None = None) -> torch.Tensor:
    """torch's fused `scaled_dot_product_attention` with lmcore's masks and zero empty rows."""
    B, H, Tq, Tk = _check_args(q, k, v, causal, prefix_len, key_padding_mask)
    if causal and prefix_len is None and key_padding_mask is None and Tq == Tk:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    if prefix_len is None and key_padding_mask is None and Tq == 1:
        # one query (a KV-cache step) is the last position: it sees every key, no mask
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    mask = build_mask(Tq, Tk, causal=causal, prefix_len=prefix_len,
                      key_padding_mask=key_padding_mask, device=q.device)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    row_any = mask.any(-1, keepdim=True)  # (B|1, 1, Tq, 1)
    if bool(row_any.all()):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    # hidden rows would be NaN: let them see every key, then zero them (zero gradient too)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~row_any, scale=scale)
    return y.masked_fill(~row_any, 0.0)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, impl: str = "sdpa",
              **kwargs) -> torch.Tensor:
    """Dispatch to one implementation by name ('sdpa' | 'naive' | 'tiled'); same arguments."""
    if impl == "sdpa":
        return sdpa_attention(q, k, v, **kwargs)
    if impl == "naive":
        return naive_attention(q, k, v, **kwargs)
    if impl == "tiled":
        return tiled_attention(q, k, v, **kwargs)
    raise AttentionError(
        f"unknown attention implementation {impl!r}; choose one of {', '.join(IMPLS)}"
    )


# ---------------------------------------------------------------------------------------------
# lmcore's FlashAttention: tiles, online softmax, recompute in backward.

# Default tiles, by measurement (B=1, H=4, D=64, causal, 2 cores): 256×256 beat 128×256,
# 256×512, 512×512 and 256×1024 at T=2048 and 4096, forward and backward (a tile's scores,
# H·256·256 floats = 1 MiB at H=4, stay in cache while the matmuls keep MKL busy).
BLOCK_Q = 256  # query rows per tile
BLOCK_K = 256  # key columns per tile
TILE_ELEMS = 4 * BLOCK_Q * BLOCK_K  # one tile's scores for all (batch, head) pairs: 1 MiB fp32
MIN_BLOCK = 32
LOG2E = 1.4426950408889634  # exp(x) = exp2(x·log2 e); torch's exp2 is ~4x faster than exp on CPU
LN2 = 0.6931471805599453


def default_blocks(batch_heads: int) -> tuple[int, int]:
    """Tile sizes whose scores for all batch·heads fit TILE_ELEMS (so a tile stays in cache).

    Every tile op runs over all (batch, head) pairs at once, so a bigger B·H gets smaller
    tiles: 256×256 for B·H ≤ 4, 128×128 at 16, 64×64 at 64, never below 32×32.
    """
    per_head = max(1, TILE_ELEMS // max(1, batch_heads))
    side = BLOCK_K
    while side > MIN_BLOCK and side * side > per_head:
        side //= 2
    bk = side * 2 if side < BLOCK_K and side * side * 2 <= per_head else side
    return min(side, BLOCK_Q), min(bk, BLOCK_K)


class _Plan:
    """Which (query tile, key tile) pairs the mask leaves visible, and which need a tile mask.

    Computed from positions and per-sample counts of real keys (never a T×T tensor): a tile is
    skipped when, in every sample, no key in it is both reachable by one of the tile's rows
    (causal / prefix) and real (key padding), so causal ∧ padding hidden tiles go too.
    """

    def __init__(self, B: int, Tq: int, Tk: int, causal: bool, prefix_len: torch.Tensor | None,
                 key_padding_mask: torch.Tensor | None, block_q: int, block_k: int,
                 device: torch.device) -> None:
        self.causal = causal or prefix_len is not None
        self.prefix_len = prefix_len
        self.kpm = key_padding_mask
        self._cache: dict[tuple[int, int, int], torch.Tensor] = {}
        self.q_off = Tk - Tq  # query row i sits at absolute position i + Tk - Tq
        self.q_pos = torch.arange(Tk - Tq, Tk, device=device)  # absolute positions of queries
        self.k_pos = torch.arange(Tk, device=device)
        p_max = int(prefix_len.max()) if prefix_len is not None and B else 0
        p_min = int(prefix_len.min()) if prefix_len is not None and B else 0
        k_tiles = [(k0, min(k0 + block_k, Tk)) for k0 in range(0, Tk, block_k)]
        q_tiles = [(q0, min(q0 + block_q, Tq)) for q0 in range(0, Tq, block_q)]
        k_all = [True] * len(k_tiles)  # every key of the tile real in every sample
        k_any = [[True] * len(k_tiles) for _ in q_tiles]  # a reachable real key in some sample
        if key_padding_mask is not None and B and k_tiles and q_tiles:
            k_all, k_any = self._padding(key_padding_mask, prefix_len, Tk - Tq, q_tiles, k_tiles)
        self.pairs = []  # (q0, q1, k0, k1, needs_mask)
        for (q0, q1), anyk in zip(q_tiles, k_any, strict=True):
            first, last = q0 + Tk - Tq, q1 - 1 + Tk - Tq  # absolute positions of the tile's rows
            for (k0, k1), allk, visible in zip(k_tiles, k_all, anyk, strict=True):
                if self.causal and k0 > max(last, p_max - 1):
                    continue  # after the last visible key of every row in the tile
                if not visible:
                    continue  # every key the rows may reach is padding, in every sample
                full = allk and (not self.causal or k1 - 1 <= first or k1 <= p_min)
                self.pairs.append((q0, q1, k0, k1, not full))

    def _padding(self, key_padding_mask: torch.Tensor, prefix_len: torch.Tensor | None,
                 q_off: int, q_tiles: list[tuple[int, int]],
                 k_tiles: list[tuple[int, int]]) -> tuple[list[bool], list[list[bool]]]:
        """Per key tile: all keys real in every sample; per (query tile, key tile): some sample
        has a real key there that a row of the query tile may reach. From per-sample prefix
        counts of real keys, a few ops over (tiles × B), not T×T."""
        kpm = key_padding_mask.to("cpu", torch.int64)
        B = kpm.shape[0]
        real = torch.cat([torch.zeros(B, 1, dtype=torch.int64), kpm.cumsum(1)], dim=1).t()
        k0 = torch.tensor([t[0] for t in k_tiles])  # (nk,)
        k1 = torch.tensor([t[1] for t in k_tiles])
        k_all = ((real[k1] - real[k0]) == (k1 - k0)[:, None]).all(1).tolist()  # (nk,)
        if not self.causal:  # every row may reach every key: a real key anywhere in the tile
            some = ((real[k1] - real[k0]) > 0).any(1).tolist()
            return k_all, [some for _ in q_tiles]
        reach = torch.tensor([q1 + q_off for _, q1 in q_tiles])[:, None].expand(-1, B)  # (nq, B)
        if prefix_len is not None:  # the prefix is visible to every row
            reach = torch.maximum(reach, prefix_len.to("cpu", torch.int64)[None, :])
        hi = torch.minimum(torch.maximum(reach[:, None, :], k0[None, :, None]), k1[None, :, None])
        nq, nk = hi.shape[:2]
        ends = real.gather(0, hi.reshape(nq * nk, B)).view(nq, nk, B)  # real keys before hi
        return k_all, (ends > real[k0][None]).any(-1).tolist()

    def hidden(self, q0: int, q1: int, k0: int, k1: int) -> torch.Tensor:
        """Bool (B|1, 1, n, m): True where the key is hidden from the query, built on the fly."""
        if self.kpm is None and self.prefix_len is None:  # causal only: depends on the offset
            key = (q1 - q0, k1 - k0, self.q_off + q0 - k0)
            if key not in self._cache:
                self._cache[key] = self._hidden(q0, q1, k0, k1)
            return self._cache[key]
        return self._hidden(q0, q1, k0, k1)

    def _hidden(self, q0: int, q1: int, k0: int, k1: int) -> torch.Tensor:
        kpm = self.kpm[:, k0:k1] if self.kpm is not None else None
        visible = tile_mask(self.q_pos[q0:q1], self.k_pos[k0:k1], causal=self.causal,
                            prefix_len=self.prefix_len, key_padding_mask=kpm)
        return ~visible


def _tiled_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, plan: _Plan,
                   shape: tuple[int, int], workers: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Online-softmax forward over the plan's tiles; returns O (BH, Tq, Dv) and LSE (BH, Tq).

    Query-tile rows are independent, so they are the work units (longest rows first).
    """
    B, H = shape
    BH, Tq, _ = q.shape
    Dv = v.shape[-1]
    scale2 = scale * LOG2E  # logits in base-2 units
    out = torch.zeros(BH, Tq, Dv, dtype=q.dtype, device=q.device)  # rows no tile reaches stay 0
    lse = torch.full((BH, Tq), float("inf"), dtype=q.dtype, device=q.device)
    if not plan.pairs:
        return out, lse
    size = BH * max((p[1] - p[0]) * (p[3] - p[2]) for p in plan.pairs)
    bufs: dict[int, torch.Tensor] = {}  # one score buffer per worker thread
    by_q: dict[int, list] = {}
    for p in plan.pairs:
        by_q.setdefault(p[0], []).append(p)

    def row(tiles: list, slot: int) -> None:
        if slot not in bufs:
            bufs[slot] = torch.empty(size, dtype=q.dtype, device=q.device)
        buf = bufs[slot]
        q0, q1 = tiles[0][0], tiles[0][1]
        n = q1 - q0
        qi = q[:, q0:q1]  # (BH, n, D)
        acc = torch.zeros(BH, n, Dv, dtype=q.dtype, device=q.device)  # contiguous: one bmm
        m = torch.full((BH, n), float("-inf"), dtype=q.dtype, device=q.device)  # running max
        l = torch.zeros(BH, n, dtype=q.dtype, device=q.device)  # running sum  # noqa: E741
        for _, _, k0, k1, needs_mask in tiles:
            s = buf[: BH * n * (k1 - k0)].view(BH, n, k1 - k0)
            torch.baddbmm(s, qi, k[:, k0:k1].transpose(1, 2), beta=0.0, alpha=scale2, out=s)
            if needs_mask:
                s.view(B, H, n, k1 - k0).masked_fill_(plan.hidden(q0, q1, k0, k1), float("-inf"))
            m_new = torch.maximum(m, s.amax(-1))  # (BH, n)
            m_use = m_new.masked_fill(m_new == float("-inf"), 0.0)  # rows with nothing seen yet
            alpha = torch.exp2(m - m_use)  # rescales what was accumulated under the old max
            s.sub_(m_use[..., None]).exp2_()  # p = exp(s - m), in place (base 2 units)
            l.mul_(alpha).add_(s.sum(-1))
            acc.mul_(alpha[..., None]).baddbmm_(s, v[:, k0:k1])
            m = m_new
        seen = l > 0  # rows that saw at least one key
        torch.div(acc, torch.where(seen, l, 1.0)[..., None], out=out[:, q0:q1])
        # natural-log LSE per row; +inf for rows that saw nothing, so P = 0 in the backward
        lse[:, q0:q1] = torch.where(seen, (m + torch.log2(l)) * LN2, float("inf"))

    run_units(sorted(by_q.values(), key=len, reverse=True), row, workers)
    return out, lse


def _tiled_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                    lse: torch.Tensor, dout: torch.Tensor, scale: float, plan: _Plan,
                    shape: tuple[int, int],
                    workers: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FlashAttention-2 backward: recompute each tile's P from LSE; never a T×T tensor.

    Work units are key tiles (each owns its dK, dV rows), inner loop over query tiles. dQ sums
    over key tiles, so each worker thread accumulates its own dQ tiles; the worker finishing a
    query tile's last pair adds them into place, in worker order. The key tiles are split
    among the workers beforehand (not taken as they come), so the gradients are the same
    bits on every run. D = rowsum(dO ∘ O) is computed per query
    tile by its first user. All in one pass over the workers: each extra fork/join would cost
    a wake-up of an idle core. Gradients accumulate in contiguous per-tile buffers (an
    in-place batched matmul into a strided slice falls back to one matmul per batch·head on
    the CPU), copied into place once per tile.
    """
    B, H = shape
    BH, Tq, D = q.shape
    dk = torch.zeros_like(k)
    dv = torch.zeros_like(v)
    dq = torch.zeros_like(q)
    if not plan.pairs:
        return dq, dk, dv
    size = BH * max((p[1] - p[0]) * (p[3] - p[2]) for p in plan.pairs)
    slots: dict[int, tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]] = {}
    rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # q0: (D, base-2 LSE), (BH, n)
    row_locks = {p[0]: threading.Lock() for p in plan.pairs}
    left = {q0: 0 for q0 in row_locks}  # pairs of each query tile not yet done
    for p in plan.pairs:
        left[p[0]] += 1
    left_lock = threading.Lock()
    by_k: dict[int, list] = {}
    for pair in plan.pairs:
        by_k.setdefault(pair[2], []).append(pair)

    def row(q0: int, q1: int) -> tuple[torch.Tensor, torch.Tensor]:
        if q0 not in rows:
            with row_locks[q0]:
                if q0 not in rows:
                    delta = (dout[:, q0:q1] * out[:, q0:q1]).sum(-1)  # (BH, n)
                    rows[q0] = (delta, lse[:, q0:q1] * LOG2E)  # base-2, like the logits
        return rows[q0]

    def place(q0: int, q1: int) -> None:
        # in slot order, so the sum is the same on every run; pop frees each part
        parts = [slots[i][2].pop(q0) for i in sorted(slots) if q0 in slots[i][2]]
        target = dq[:, q0:q1]
        target.copy_(parts[0])
        for part in parts[1:]:
            target.add_(part)
        del rows[q0]

    def column(pairs: list, slot: int) -> None:
        if slot not in slots:
            slots[slot] = (
                torch.empty(size, dtype=q.dtype, device=q.device),
                torch.empty(size, dtype=q.dtype, device=q.device),
                {},
            )
        buf_p, buf_d, dq_tiles = slots[slot]
        k0, k1 = pairs[0][2], pairs[0][3]
        mk = k1 - k0
        kj, vj = k[:, k0:k1], v[:, k0:k1]
        dk_j = torch.zeros(BH, mk, D, dtype=q.dtype, device=q.device)
        dv_j = torch.zeros(BH, mk, v.shape[-1], dtype=q.dtype, device=q.device)
        for q0, q1, _, _, needs_mask in pairs:
            n = q1 - q0
            qi, doi = q[:, q0:q1], dout[:, q0:q1]
            delta, lse2 = row(q0, q1)
            p = buf_p[: BH * n * mk].view(BH, n, mk)
            torch.baddbmm(p, qi, kj.transpose(1, 2), beta=0.0, alpha=scale * LOG2E, out=p)
            if needs_mask:
                p.view(B, H, n, mk).masked_fill_(plan.hidden(q0, q1, k0, k1), float("-inf"))
            p.sub_(lse2[..., None]).exp2_()  # P = exp(S − LSE)
            dv_j.baddbmm_(p.transpose(1, 2), doi)  # dV += Pᵀ dO
            ds = buf_d[: BH * n * mk].view(BH, n, mk)
            torch.bmm(doi, vj.transpose(1, 2), out=ds)  # dP = dO Vᵀ
            ds.sub_(delta[..., None]).mul_(p)  # dS = P ∘ (dP − D)
            if q0 not in dq_tiles:
                dq_tiles[q0] = torch.zeros(BH, n, D, dtype=q.dtype, device=q.device)
            dq_tiles[q0].baddbmm_(ds, kj, alpha=scale)  # dQ += dS K · scale
            dk_j.baddbmm_(ds.transpose(1, 2), qi, alpha=scale)  # dK += dSᵀ Q · scale
            with left_lock:
                left[q0] -= 1
                last = left[q0] == 0
            if last:  # every pair of this query tile is done, in every worker
                place(q0, q1)
        dk[:, k0:k1] = dk_j
        dv[:, k0:k1] = dv_j

    # a fixed split of the key tiles over the workers: dQ's partial sums are reproducible
    run_units(sorted(by_k.values(), key=len, reverse=True), column, workers, cost=len)
    return dq, dk, dv


class TiledAttentionFunction(torch.autograd.Function):
    """Autograd wrapper: forward saves only q, k, v, O and the per-row log-sum-exp."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, q: torch.Tensor, k: torch.Tensor,
                v: torch.Tensor, prefix_len: torch.Tensor | None,
                key_padding_mask: torch.Tensor | None, causal: bool, scale: float, block_q: int,
                block_k: int) -> torch.Tensor:
        B, H, Tq, D = q.shape
        Tk, Dv = k.shape[2], v.shape[-1]
        plan = _Plan(B, Tq, Tk, causal, prefix_len, key_padding_mask, block_q, block_k, q.device)
        q3, k3, v3 = q.reshape(B * H, Tq, D), k.reshape(B * H, Tk, D), v.reshape(B * H, Tk, Dv)
        workers = tile_workers(q.device)
        out, lse = _tiled_forward(q3, k3, v3, scale, plan, (B, H), workers)
        ctx.save_for_backward(q3, k3, v3, out, lse)
        ctx.plan, ctx.scale, ctx.shape = plan, scale, (B, H, Tq, Tk, D, Dv)
        return out.view(B, H, Tq, Dv)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q3, k3, v3, out, lse = ctx.saved_tensors
        B, H, Tq, Tk, D, Dv = ctx.shape
        dout = dout.reshape(B * H, Tq, Dv)
        workers = tile_workers(q3.device)
        dq, dk, dv = _tiled_backward(q3, k3, v3, out, lse, dout, ctx.scale, ctx.plan, (B, H),
                                     workers)
        # gradients for q, k, v; none for prefix_len, key_padding_mask, causal, scale, blocks
        return (dq.view(B, H, Tq, D), dk.view(B, H, Tk, D), dv.view(B, H, Tk, Dv),
                None, None, None, None, None, None)


def tiled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                    prefix_len: torch.Tensor | None = None,
                    key_padding_mask: torch.Tensor | None = None, scale: float | None = None,
                    block_q: int | None = None, block_k: int | None = None) -> torch.Tensor:
    """lmcore's FlashAttention: exact attention in O(T·d) memory by query/key tiles.

    Forward: online softmax (running row max m, running sum l, rescaled accumulator) over the
    tiles the mask leaves visible; saves only O and the per-row log-sum-exp. Backward: a custom
    autograd Function that recomputes each tile's probabilities (FlashAttention-2).
    Tiles default to `default_blocks(B·H)`. On the CPU the tiles are shared among
    `torch.get_num_threads()` single-threaded workers (`tile_workers`), one join per call.
    """
    B, H, Tq, Tk = _check_args(q, k, v, causal, prefix_len, key_padding_mask)
    auto_q, auto_k = default_blocks(B * H)
    block_q = auto_q if block_q is None else int(block_q)
    block_k = auto_k if block_k is None else int(block_k)
    if block_q < 1 or block_k < 1:
        raise AttentionError(
            f"tile sizes must be positive, got block_q={block_q}, block_k={block_k}"
        )
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    dtype = q.dtype
    if dtype in (torch.float16, torch.bfloat16):  # accumulate low precision in float32
        q, k, v = q.float(), k.float(), v.float()
    if prefix_len is not None:
        prefix_len = prefix_len.to(q.device)
    y = TiledAttentionFunction.apply(
        q, k, v, prefix_len, key_padding_mask, causal, scale, block_q, block_k
    )
    return y.to(dtype)

"""The HBM traffic model equals the counts of literal naive and tiled attention loops that
tally every element they read from and write to a simulated HBM (and give the same output)."""

from __future__ import annotations

import numpy as np
import pytest

from lmcore.models.attention_io import GPUS, attention_io, visible_tiles


class HBM:
    """Arrays in 'HBM': every element read or written through it is counted."""

    def __init__(self):
        self.moved = 0

    def read(self, a: np.ndarray) -> np.ndarray:
        self.moved += a.size
        return a.copy()

    def write(self, dst: np.ndarray, idx, value: np.ndarray) -> None:
        self.moved += np.asarray(value).size
        dst[idx] = value


def naive(q, k, v, causal, hbm):
    T = len(q)
    S = np.empty((T, T))
    hbm.write(S, slice(None), hbm.read(q) @ hbm.read(k).T / np.sqrt(q.shape[1]))
    s = hbm.read(S)
    if causal:
        s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    P = np.empty((T, T))
    e = np.exp(s - s.max(1, keepdims=True))
    hbm.write(P, slice(None), e / e.sum(1, keepdims=True))
    O = np.empty_like(q)
    hbm.write(O, slice(None), hbm.read(P) @ hbm.read(v))
    return O


def tiled(q, k, v, causal, bq, bk, hbm):
    T, d = q.shape
    O, lse = np.empty_like(q), np.empty(T)
    for i0 in range(0, T, bq):
        qi = hbm.read(q[i0:i0 + bq])
        n = len(qi)
        m, l, acc = np.full(n, -np.inf), np.zeros(n), np.zeros((n, d))
        for j0 in range(0, T, bk):
            if causal and j0 > i0 + n - 1:
                break  # the whole tile is above the diagonal: skipped, never read
            kj, vj = hbm.read(k[j0:j0 + bk]), hbm.read(v[j0:j0 + bk])
            s = qi @ kj.T / np.sqrt(d)
            if causal:
                s = np.where(np.arange(j0, j0 + len(kj))[None] <= np.arange(i0, i0 + n)[:, None],
                             s, -np.inf)
            m_new = np.maximum(m, s.max(1))
            a = np.exp(m - m_new)
            p = np.exp(s - m_new[:, None])
            l, acc, m = a * l + p.sum(1), a[:, None] * acc + p @ vj, m_new
        hbm.write(O, slice(i0, i0 + n), acc / l[:, None])
        hbm.write(lse, slice(i0, i0 + n), m + np.log(l))
    return O


@pytest.mark.parametrize("T, d, bq, bk, causal", [(16, 4, 4, 4, True), (37, 8, 8, 5, True),
                                                  (37, 8, 8, 5, False), (20, 4, 32, 32, True),
                                                  (64, 16, 16, 8, True)])
def test_counts_equal_instrumented_loops(T, d, bq, bk, causal):
    rng = np.random.default_rng(T + d)
    q, k, v = (rng.normal(size=(T, d)) for _ in range(3))
    h_naive, h_tiled = HBM(), HBM()
    o1 = naive(q, k, v, causal, h_naive)
    o2 = tiled(q, k, v, causal, bq, bk, h_tiled)
    np.testing.assert_allclose(o1, o2, atol=1e-12)
    io = attention_io(T, d, bq, bk, causal, bytes_per_element=4)
    assert io.naive_elements == h_naive.moved
    assert io.tiled_elements == h_tiled.moved
    assert io.naive_bytes == 4 * h_naive.moved


def test_causal_skips_about_half_the_tiles_and_the_ratio_grows_with_T():
    vis, total, _ = visible_tiles(4096, 128, 128, True)
    assert total == 32 * 32 and vis == 32 * 33 // 2
    ratios = [attention_io(T, 64, 128, 128).ratio for T in (512, 2048, 8192)]
    assert ratios == sorted(ratios) and ratios[0] > 1
    io = attention_io(2048, 64, 128, 128)
    bw = next(iter(GPUS.values()))[0]
    naive_s, tiled_s = io.seconds(bw, batch_heads=16)
    assert naive_s / tiled_s == pytest.approx(io.ratio)


def test_bad_sizes():
    with pytest.raises(ValueError, match="block_q must be at least 1"):
        attention_io(128, 64, 0, 64)

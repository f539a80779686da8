"""Bytes attention moves between a GPU's HBM and its on-chip SRAM: naive vs tiled (a model).

A GPU keeps tensors in HBM (large, ~2-3 TB/s) and computes from SRAM (per-SM shared memory,
~100-228 KB, an order of magnitude faster). Attention's arithmetic is cheap next to its
traffic, so its time follows the bytes read and written in HBM (Dao et al. 2022,
"FlashAttention", section 3.2). Counted per (batch, head) of one forward pass, in elements:

- naive: read Q, K (2Td); write the scores S (T²); read S, write P = softmax(S) (2T²); read P
  and V (T² + Td); write O (Td): 4Td + 4T²; a causal mask changes none of it (the full T×T
  matrices are still written and read).
- tiled, query tiles of Bq rows and key tiles of Bk columns (lmcore's loop order, that of
  FlashAttention-2): each query tile is read once and its output and log-sum-exp written once
  (2Td + T); K and V are streamed through SRAM once per query tile, only for the tiles a
  causal mask does not hide entirely: 2·d per key column of each visible (query tile, key
  tile) pair. The
  T×T scores live only in SRAM, a Bq×Bk tile at a time.
The SRAM a tile needs: Q tile, K and V tiles, the score tile, the output accumulator and the
running max and sum (Bq·d + 2·Bk·d + Bq·Bk + Bq·d + 2·Bq elements).

This is a count, not a measurement: the CPU kernels of this lab have caches, not an HBM; the
page sets it beside the CPU timings it measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# public figures for two common GPUs (datasheet HBM bandwidth, shared memory per SM)
GPUS = {
    "A100 (1.56 TB/s HBM2, 164 KiB SRAM/SM)": (1.555e12, 164 * 1024),
    "H100 SXM (3.35 TB/s HBM3, 228 KiB SRAM/SM)": (3.35e12, 228 * 1024),
}


@dataclass(frozen=True)
class AttentionIO:
    """HBM traffic of one forward pass per (batch, head), in elements and bytes."""

    T: int
    d: int
    block_q: int
    block_k: int
    causal: bool
    bytes_per_element: int
    naive_elements: int
    tiled_elements: int
    visible_tiles: int
    total_tiles: int
    sram_elements: int  # what one tile step keeps on chip

    @property
    def naive_bytes(self) -> int:
        return self.naive_elements * self.bytes_per_element

    @property
    def tiled_bytes(self) -> int:
        return self.tiled_elements * self.bytes_per_element

    @property
    def sram_bytes(self) -> int:
        return self.sram_elements * self.bytes_per_element

    @property
    def ratio(self) -> float:
        """How many times more bytes the naive pass moves."""
        return self.naive_elements / self.tiled_elements

    def seconds(self, bandwidth: float, batch_heads: int = 1) -> tuple[float, float]:
        """(naive, tiled) time if HBM traffic alone set the pace, at `bandwidth` bytes/s."""
        return (batch_heads * self.naive_bytes / bandwidth,
                batch_heads * self.tiled_bytes / bandwidth)


def visible_tiles(T: int, block_q: int, block_k: int, causal: bool) -> tuple[int, int, int]:
    """(visible pairs, total pairs, keys streamed): (query tile, key tile) pairs a causal
    mask does not hide wholly (every key after every query of the tile), and the key columns
    those visible tiles hold (the last tile of a row may be partial)."""
    nq, nk = math.ceil(T / block_q), math.ceil(T / block_k)
    visible = keys = 0
    for i in range(nq):
        last_q = min(T, (i + 1) * block_q) - 1
        n = min(nk, last_q // block_k + 1) if causal else nk  # tiles starting <= last_q
        visible += n
        keys += min(T, n * block_k)
    return visible, nq * nk, keys


def attention_io(T: int, d: int = 64, block_q: int = 128, block_k: int = 128,
                 causal: bool = True, bytes_per_element: int = 2) -> AttentionIO:
    """Count HBM elements moved by naive and tiled attention at length T, head width d."""
    for name, v in (("T", T), ("d", d), ("block_q", block_q), ("block_k", block_k),
                    ("bytes_per_element", bytes_per_element)):
        if int(v) < 1:
            raise ValueError(f"{name} must be at least 1, got {v}")
    naive = 4 * T * d + 4 * T * T
    visible, total, keys = visible_tiles(T, block_q, block_k, causal)
    tiled = 2 * T * d + T + 2 * keys * d
    bq, bk = min(block_q, T), min(block_k, T)
    sram = bq * d + 2 * bk * d + bq * bk + bq * d + 2 * bq
    return AttentionIO(T, d, block_q, block_k, causal, bytes_per_element, naive, tiled,
                       visible, total, sram)

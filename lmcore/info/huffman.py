"""Huffman coding of a unigram distribution: the source coding theorem H <= L < H + 1, measured.

Huffman's code is the best prefix code for one symbol at a time; its average length L lies
within one bit of the entropy H. A single-symbol alphabet still needs one bit per symbol
(a code word cannot be empty if the decoder is to count symbols), so there L = 1 = H + 1:
the one case where the strict upper bound becomes an equality.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmcore.info.entropy import distribution, entropy


def huffman_lengths(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """(n,) code-word lengths of a Huffman code for positive `weights` (ties: lowest index)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError("Huffman coding needs at least one symbol")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("Huffman weights must be positive and finite (drop unseen symbols)")
    if w.size == 1:
        return np.ones(1, dtype=np.int64)
    tie = itertools.count()
    heap = [(float(x), next(tie), [i]) for i, x in enumerate(w)]
    heapq.heapify(heap)
    lengths = np.zeros(w.size, dtype=np.int64)
    while len(heap) > 1:
        wa, _, a = heapq.heappop(heap)
        wb, _, b = heapq.heappop(heap)
        lengths[a] += 1  # every leaf under a merged node goes one level deeper
        lengths[b] += 1
        heapq.heappush(heap, (wa + wb, next(tie), a + b))
    return lengths


def canonical_codes(lengths: Sequence[int] | np.ndarray) -> list[str]:
    """Canonical prefix code words (as '0'/'1' strings) for the given lengths (Kraft <= 1)."""
    lengths = [int(n) for n in lengths]
    if any(n < 1 for n in lengths):
        raise ValueError("code-word lengths must be >= 1")
    if sum(2.0 ** -n for n in lengths) > 1 + 1e-12:
        raise ValueError("these lengths violate Kraft's inequality: no prefix code has them")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    codes = [""] * len(lengths)
    code, prev = 0, lengths[order[0]]
    for rank, i in enumerate(order):
        if rank:
            code = (code + 1) << (lengths[i] - prev)
        prev = lengths[i]
        codes[i] = format(code, f"0{lengths[i]}b")
    return codes


@dataclass(frozen=True)
class HuffmanCode:
    """A Huffman code over the outcomes of a text, with H, L and the bound between them."""

    outcomes: list
    counts: np.ndarray
    probs: np.ndarray
    codes: list[str]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(c) for c in self.codes], dtype=np.int64)

    @property
    def entropy(self) -> float:
        """H in bits per symbol."""
        return entropy(self.probs)

    @property
    def average_length(self) -> float:
        """L = sum p(x) len(code(x)) in bits per symbol."""
        return float((self.probs * self.lengths).sum())

    @property
    def kraft_sum(self) -> float:
        return float((2.0 ** -self.lengths.astype(np.float64)).sum())

    def satisfies_bound(self) -> bool:
        """The source coding theorem for this code: H <= L < H + 1 (L = 1 for one symbol)."""
        h, L = self.entropy, self.average_length
        if len(self.codes) == 1:
            return L == 1.0
        return h - 1e-9 <= L < h + 1

    def encode(self, seq: Sequence) -> str:
        """The bit string of `seq` (every symbol must be one of the code's outcomes)."""
        table = dict(zip(self.outcomes, self.codes, strict=True))
        try:
            return "".join(table[s] for s in seq)
        except KeyError as exc:
            raise ValueError(f"symbol {exc.args[0]!r} has no code word") from None

    def decode(self, bits: str) -> list:
        """Symbols of a bit string made by `encode` (prefix property: read left to right)."""
        table = dict(zip(self.codes, self.outcomes, strict=True))
        out, cur = [], ""
        for b in bits:
            cur += b
            if cur in table:
                out.append(table[cur])
                cur = ""
        if cur:
            raise ValueError("the bit string ends inside a code word")
        return out

    def rows(self) -> list[dict]:
        """One dict per outcome: symbol, count, probability, self-information, code, length."""
        return [{"symbol": o, "count": int(c), "p": float(p),
                 "self-information (bits)": -math.log2(p), "code": code, "length": len(code)}
                for o, c, p, code in zip(self.outcomes, self.counts, self.probs, self.codes,
                                         strict=True)]


def huffman_code(seq: Sequence) -> HuffmanCode:
    """The Huffman code of the unigram distribution of `seq` (chars, bytes or token ids)."""
    d = distribution(seq)
    lengths = huffman_lengths(d.counts.astype(np.float64))
    return HuffmanCode(outcomes=d.outcomes, counts=d.counts, probs=d.probs,
                       codes=canonical_codes(lengths))

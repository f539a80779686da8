"""A seeded order-k Markov source over a small alphabet whose entropy rate is known exactly.

The state is the last k symbols; the entropy rate is H = sum_s pi(s) H(P(.|s)) with pi the
stationary distribution of the chain on states, so a page can show a model's cross-entropy
approaching the Shannon limit of the text it was trained on.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np


def _row_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of a stochastic matrix (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=1)


@dataclass(frozen=True)
class MarkovSource:
    """P(next symbol | previous `order` symbols); `probs` has shape (len(alphabet)**order, A)."""

    order: int
    alphabet: str
    probs: np.ndarray = field(repr=False)  # (S, A), row s = state s in base-A, oldest digit first

    def __post_init__(self) -> None:
        a = len(self.alphabet)
        if self.order < 0:
            raise ValueError(f"order must be >= 0, got {self.order}")
        if a < 2 or len(set(self.alphabet)) != a:
            raise ValueError(f"alphabet needs at least 2 distinct symbols, got {self.alphabet!r}")
        p = np.asarray(self.probs, dtype=np.float64)
        if p.shape != (a**self.order, a):
            raise ValueError(f"probs must have shape {(a**self.order, a)}, got {p.shape}")
        if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-12):
            raise ValueError("each row of probs must be a probability distribution")
        object.__setattr__(self, "probs", p / p.sum(axis=1, keepdims=True))

    @property
    def n_states(self) -> int:
        return len(self.alphabet) ** self.order

    def state_transitions(self) -> np.ndarray:
        """The (S, S) transition matrix of the chain on k-symbol states."""
        a, s = len(self.alphabet), self.n_states
        t = np.zeros((s, s))
        for state in range(s):
            for sym in range(a):
                t[state, (state * a + sym) % s] += self.probs[state, sym]
        return t

    def stationary(self) -> np.ndarray:
        """The stationary distribution pi over states (pi T = pi, sum pi = 1)."""
        s = self.n_states
        if s == 1:
            return np.ones(1)
        t = self.state_transitions()
        m = t.T - np.eye(s)  # (S, S)
        m[-1, :] = 1.0  # replace one (redundant) balance equation by normalisation
        rhs = np.zeros(s)
        rhs[-1] = 1.0
        pi = np.linalg.solve(m, rhs)
        pi = np.clip(pi, 0.0, None)
        return pi / pi.sum()

    def entropy_rate(self) -> float:
        """Exact entropy rate in bits per symbol: sum_s pi(s) H(P(.|s))."""
        return float(self.stationary() @ _row_entropy(self.probs))

    @classmethod
    def with_entropy(cls, order: int, alphabet: str, target_bits: float,
                     seed: int = 0) -> MarkovSource:
        """A source whose entropy rate equals `target_bits` (to 1e-9): tempered random rows."""
        a = len(alphabet)
        hmax = math.log2(a) if a else 0.0
        if not 0.0 < target_bits < hmax:
            raise ValueError(
                f"target entropy must lie strictly between 0 and log2({a}) = {hmax:.4f} bits, "
                f"got {target_bits}"
            )
        rng = np.random.default_rng(seed)
        logits = rng.standard_normal((a**order, a)) * 3.0  # (S, A)

        def build(log_t: float) -> MarkovSource:
            z = logits / math.exp(log_t)
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            return cls(order, alphabet, p / p.sum(axis=1, keepdims=True))

        lo, hi = math.log(1e-3), math.log(1e4)
        h_lo, h_hi = build(lo).entropy_rate(), build(hi).entropy_rate()
        if not h_lo < target_bits < h_hi:
            raise ValueError(
                f"cannot reach {target_bits} bits with this seed (range {h_lo:.4f}..{h_hi:.4f})"
            )
        src = build(hi)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            src = build(mid)
            h = src.entropy_rate()
            if abs(h - target_bits) <= 1e-12:
                break
            if h < target_bits:
                lo = mid
            else:
                hi = mid
        return src

    def sample(self, n: int, seed: int = 0) -> str:
        """n symbols from the stationary chain (first state drawn from pi), reproducible by seed."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        rng = np.random.default_rng(seed)
        a, s_count = len(self.alphabet), self.n_states
        pi = self.stationary()
        state = int(min(np.searchsorted(np.cumsum(pi), rng.random(), side="right"),
                        s_count - 1))
        digits = [(state // a**i) % a for i in reversed(range(self.order))]
        cum = np.cumsum(self.probs, axis=1).tolist()
        u = rng.random(n).tolist()
        out = [self.alphabet[d] for d in digits][:n]
        last = a - 1
        for i in range(len(out), n):
            sym = bisect.bisect_right(cum[state], u[i])
            sym = sym if sym < last else last
            out.append(self.alphabet[sym])
            state = (state * a + sym) % s_count
        return "".join(out)

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


MAX_STATES = 1 << 20  # |A|^k beyond this needs more memory than a demo should take


@dataclass(frozen=True, eq=False)
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
        if a**self.order > MAX_STATES:
            raise ValueError(f"order {self.order} over {a} symbols has {a**self.order:,} states, "
                             f"more than {MAX_STATES:,}; use a lower order or fewer symbols")
        p = np.asarray(self.probs, dtype=np.float64)
        if p.shape != (a**self.order, a):
            raise ValueError(f"probs must have shape {(a**self.order, a)}, got {p.shape}")
        if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-12):
            raise ValueError("each row of probs must be a probability distribution")
        p = p / p.sum(axis=1, keepdims=True)
        p.setflags(write=False)  # the rate is computed from these; keep them as they are
        object.__setattr__(self, "probs", p)

    @property
    def n_states(self) -> int:
        return len(self.alphabet) ** self.order

    def state_transitions(self) -> np.ndarray:
        """The (S, S) transition matrix of the chain on k-symbol states."""
        a, s = len(self.alphabet), self.n_states
        t = np.zeros((s, s))
        states = np.arange(s)[:, None]  # (S, 1)
        nxt = (states * a + np.arange(a)[None, :]) % s  # (S, A): state after each symbol
        np.add.at(t, (np.broadcast_to(states, nxt.shape), nxt), self.probs)
        return t

    def stationary(self) -> np.ndarray:
        """The stationary distribution pi over states (pi T = pi, sum pi = 1)."""
        s = self.n_states
        if s == 1:
            return np.ones(1)
        if s > 128:  # big chains: sparse power iteration, O(S*A) a step instead of O(S^3)
            pi = self._stationary_power()
            if pi is not None:
                return pi
            if s > 4096:
                raise ValueError("the chain mixes too slowly to find its stationary law; "
                                 "choose a higher entropy or a lower order")
        m = self.state_transitions().T - np.eye(s)  # (S, S)
        m[-1, :] = 1.0  # replace one (redundant) balance equation by normalisation
        rhs = np.zeros(s)
        rhs[-1] = 1.0
        try:
            pi = np.linalg.solve(m, rhs)
        except np.linalg.LinAlgError as exc:
            raise ValueError("the chain has no unique stationary distribution "
                             "(some states cannot reach others)") from exc
        pi = np.clip(pi, 0.0, None)
        return pi / pi.sum()

    def _stationary_power(self, tol: float = 1e-16, max_steps: int = 50_000) -> np.ndarray | None:
        """pi by power iteration on the sparse state chain; None if it has not converged."""
        a, s = len(self.alphabet), self.n_states
        nxt = ((np.arange(s)[:, None] * a + np.arange(a)[None, :]) % s).ravel()  # (S*A,)
        pi = np.full(s, 1.0 / s)
        for step in range(max_steps):
            new = np.bincount(nxt, weights=(pi[:, None] * self.probs).ravel(), minlength=s)
            new /= new.sum()
            if step % 8 == 0 and np.abs(new - pi).max() <= tol:
                return new
            pi = new
        return None

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

        hi = math.log(1e4)
        if build(hi).entropy_rate() <= target_bits:
            raise ValueError(f"{target_bits} bits is too close to the maximum {hmax:.4f}")
        lo = 0.0  # cool down until the rate falls below the target (rows sharpen towards one-hot)
        while True:
            try:
                h_lo = build(lo).entropy_rate()
            except ValueError:
                h_lo = math.inf
            if h_lo < target_bits:
                break
            lo -= 0.5
            if lo < math.log(1e-3) or h_lo == math.inf:
                raise ValueError(
                    f"{target_bits} bits is too low for an order-{order} source over {a} "
                    f"symbols with seed {seed}; choose a larger target"
                )
        # Illinois (regula falsi) on log-temperature: the rate is continuous in it, and the
        # bracket [lo, hi] always holds a root, so this converges like bisection at worst
        f_lo, f_hi = h_lo - target_bits, math.inf
        best, best_err = build(hi), math.inf
        f_hi = best.entropy_rate() - target_bits
        side = 0
        for _ in range(200):
            mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
            if not lo < mid < hi:
                mid = 0.5 * (lo + hi)
            src = build(mid)
            f_mid = src.entropy_rate() - target_bits
            if abs(f_mid) < best_err:
                best, best_err = src, abs(f_mid)
            if best_err <= 1e-12 or hi - lo < 1e-15:
                break
            if f_mid > 0:
                hi, f_hi = mid, f_mid
                if side == -1:
                    f_lo /= 2
                side = -1
            else:
                lo, f_lo = mid, f_mid
                if side == 1:
                    f_hi /= 2
                side = 1
        return best

    def bits_per_char(self, text: str) -> float:
        """Mean -log2 P(x_i | previous k symbols) over positions k.. of `text`: what the true
        source itself scores on that text (it approaches entropy_rate() on long samples)."""
        a, s = len(self.alphabet), self.n_states
        index = {c: i for i, c in enumerate(self.alphabet)}
        try:
            ids = np.array([index[c] for c in text], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]!r} is not in the alphabet {self.alphabet!r}") from exc
        k = self.order
        if len(ids) <= k:
            raise ValueError(f"text needs more than {k} symbols to be scored")
        state = np.zeros(len(ids) - k, dtype=np.int64)  # (N-k,) state before each position
        for j in range(k):
            state = state * a + ids[j:len(ids) - k + j]
        p = self.probs[state % s, ids[k:]]
        return float(-np.log2(p).mean())

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

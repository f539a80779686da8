"""Entropy, self-information, cross-entropy and KL divergence, measured on a person's own text.

All quantities are in bits (log base 2). For distributions p (the truth, where samples come
from) and q (the model, whose code we use):

- self-information  I(x) = -log2 p(x): the bits an optimal code spends on one outcome x;
- entropy           H(p) = E_p[-log2 p(X)]: the average of I, the floor of any lossless code;
- cross-entropy     H(p, q) = E_p[-log2 q(X)]: the average bits to code samples of p with the
                    code built for q (what a language model's held-out loss measures);
- KL divergence     D(p || q) = H(p, q) - H(p) = E_p[log2 p(X)/q(X)] >= 0: the bits wasted
                    per symbol by using q's code for p's samples. It is not symmetric: the
                    expectation is under p, so D(p||q) is infinite where q misses something
                    p produces, while D(q||p) does not care about what q never produces.

Text comes in three granularities ('char', 'byte', 'token'); `conditional_entropies` gives the
plug-in estimate of H(X_t | X_{t-k} .. X_{t-1}) for k = 0..K in one vectorised pass per k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer
    from lmcore.models.lm import LanguageModel

UNITS = ("char", "byte", "token")

BIAS_NOTE = (
    "Plug-in (counting) estimates of H(X_t | previous k) are biased low: with a finite text, "
    "longer contexts are seen fewer times each, and a context seen once looks perfectly "
    "predictable. The estimate therefore keeps falling with k and reaches 0 once almost every "
    "context is unique, long before the true conditional entropy does. Trust the curve only "
    "while the contexts are seen many times each (mean count per context well above the "
    "alphabet size).")


def _check_distribution(p: np.ndarray, name: str = "p") -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of probabilities")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} has negative, infinite or NaN entries")
    total = p.sum()
    if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"{name} sums to {total:.6g}, not 1: normalise it first")
    return p


def self_information(p: float | np.ndarray) -> float | np.ndarray:
    """-log2 p in bits (inf where p = 0): how surprising one outcome of probability p is."""
    arr = np.asarray(p, dtype=np.float64)
    if np.any(arr < 0) or np.any(arr > 1) or np.any(np.isnan(arr)):
        raise ValueError("probabilities must lie in [0, 1]")
    with np.errstate(divide="ignore"):
        out = -np.log2(arr)
    return float(out) if out.ndim == 0 else out


def entropy(p: Sequence[float] | np.ndarray) -> float:
    """H(p) = -sum p log2 p in bits (0 log 0 = 0)."""
    p = _check_distribution(p)
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


def _support(p: Sequence[float] | np.ndarray,
             q: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """p and q on p's support (where p > 0), checked; None where q misses part of it."""
    p, q = _check_distribution(p, "p"), _check_distribution(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q cover different alphabets ({p.size} vs {q.size} outcomes)")
    on = p > 0
    return None if np.any(q[on] == 0) else (p[on], q[on])


def cross_entropy(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """H(p, q) = -sum p log2 q: bits per sample of p coded with q's code (inf if q misses p)."""
    pq = _support(p, q)
    if pq is None:
        return math.inf
    p, q = pq
    return float(-(p * np.log2(q)).sum())


def kl_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """D(p || q) = sum p log2(p/q) >= 0: extra bits per sample of p when coding with q's code."""
    pq = _support(p, q)
    if pq is None:
        return math.inf
    p, q = pq
    return max(0.0, float((p * (np.log2(p) - np.log2(q))).sum()))


# ----------------------------------------------------------------------------- text


def symbols(text: str, unit: str = "char", tokenizer: Tokenizer | None = None) -> list:
    """The text as a sequence of characters, UTF-8 byte values, or token ids of `tokenizer`."""
    if unit == "char":
        return list(text)
    if unit == "byte":
        return list(text.encode("utf-8"))
    if unit == "token":
        if tokenizer is None:
            raise ValueError("unit 'token' needs a tokenizer (train one on the Corpus page)")
        return list(tokenizer.encode(text))
    raise ValueError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")


@dataclass(frozen=True)
class Distribution:
    """An empirical distribution: outcomes in decreasing count order, counts and probabilities."""

    outcomes: list
    counts: np.ndarray  # (n,) int64
    probs: np.ndarray  # (n,) float64

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def entropy(self) -> float:
        return entropy(self.probs)

    def prob(self, outcome: object) -> float:
        """Probability of one outcome (0 if never seen)."""
        try:
            return float(self.probs[self.outcomes.index(outcome)])
        except ValueError:
            return 0.0


def distribution(seq: Sequence) -> Distribution:
    """Count the outcomes of `seq` (ties broken by the outcome itself, so the order is stable)."""
    if len(seq) == 0:
        raise ValueError("cannot measure the distribution of an empty text")
    from collections import Counter

    counts = Counter(seq)
    outcomes = sorted(counts, key=lambda o: (-counts[o], str(o)))
    c = np.array([counts[o] for o in outcomes], dtype=np.int64)
    return Distribution(outcomes=outcomes, counts=c, probs=c / c.sum())


@dataclass(frozen=True)
class TextEntropy:
    """Order-0 entropy of a text at one granularity, and what it implies per character."""

    unit: str
    symbols: int  # how many symbols the text has at this granularity
    distinct: int
    bits_per_symbol: float
    chars: int
    bytes: int

    @property
    def bits_per_char(self) -> float:
        """Unigram code length per character: bits/symbol * symbols/char."""
        return self.bits_per_symbol * self.symbols / self.chars if self.chars else math.nan

    @property
    def max_bits(self) -> float:
        """log2 of the number of distinct symbols: the entropy if all were equally likely."""
        return math.log2(self.distinct) if self.distinct else 0.0


def text_entropy(text: str, unit: str = "char",
                 tokenizer: Tokenizer | None = None) -> TextEntropy:
    """Unigram (order-0) entropy of `text` in bits per symbol, plus bits per character."""
    seq = symbols(text, unit, tokenizer)
    d = distribution(seq)
    return TextEntropy(unit=unit, symbols=len(seq), distinct=len(d.outcomes),
                       bits_per_symbol=d.entropy(), chars=len(text),
                       bytes=len(text.encode("utf-8")))


def aligned(p: Distribution, q: Distribution, alpha: float = 0.0) -> tuple[list, np.ndarray,
                                                                           np.ndarray]:
    """Both distributions over the union of their outcomes, each smoothed by add-`alpha`."""
    if alpha < 0:
        raise ValueError(f"smoothing alpha must be >= 0, got {alpha}")
    outcomes = list(p.outcomes) + [o for o in q.outcomes if o not in set(p.outcomes)]
    index = {o: i for i, o in enumerate(outcomes)}

    def vec(d: Distribution) -> np.ndarray:
        v = np.zeros(len(outcomes))
        for o, c in zip(d.outcomes, d.counts, strict=True):
            v[index[o]] = c
        v = v + alpha
        return v / v.sum()

    return outcomes, vec(p), vec(q)


@dataclass(frozen=True)
class KLReport:
    """D(p||q) and D(q||p) between two texts' unigram distributions (add-alpha smoothed)."""

    unit: str
    alpha: float
    h_p: float
    h_q: float
    cross_pq: float  # H(p, q)
    cross_qp: float  # H(q, p)
    kl_pq: float  # D(p || q): coding text P with text Q's code wastes this many bits/symbol
    kl_qp: float
    top: list[tuple[object, float, float, float]]  # (outcome, p, q, p log2 p/q) largest terms


def text_kl(text_p: str, text_q: str, unit: str = "char", tokenizer: Tokenizer | None = None,
            alpha: float = 0.5, top: int = 10) -> KLReport:
    """KL divergence both ways between the unigram distributions of two texts.

    Smoothing (add-alpha over the union alphabet) keeps both directions finite: without it a
    symbol present in P but absent from Q makes D(P||Q) infinite.
    """
    dp = distribution(symbols(text_p, unit, tokenizer))
    dq = distribution(symbols(text_q, unit, tokenizer))
    outcomes, p, q = aligned(dp, dq, alpha)
    terms = np.where(p > 0, p * (np.log2(np.where(p > 0, p, 1)) -
                                 np.log2(np.where(q > 0, q, 1e-300))), 0.0)
    order = np.argsort(-np.abs(terms), kind="stable")[:top]
    return KLReport(unit=unit, alpha=alpha, h_p=entropy(p), h_q=entropy(q),
                    cross_pq=cross_entropy(p, q), cross_qp=cross_entropy(q, p),
                    kl_pq=kl_divergence(p, q), kl_qp=kl_divergence(q, p),
                    top=[(outcomes[i], float(p[i]), float(q[i]), float(terms[i]))
                         for i in order])


# ----------------------------------------------------------------------------- conditional


def _integer_codes(seq: Sequence) -> np.ndarray:
    """Map any hashable symbols to dense int64 codes 0..n-1."""
    if isinstance(seq, np.ndarray) and np.issubdtype(seq.dtype, np.integer):
        return np.unique(seq, return_inverse=True)[1].astype(np.int64)
    if isinstance(seq, str):
        arr = np.frombuffer(seq.encode("utf-32-le"), dtype=np.uint32)
        return np.unique(arr, return_inverse=True)[1].astype(np.int64)
    index: dict = {}
    return np.fromiter((index.setdefault(s, len(index)) for s in seq), dtype=np.int64,
                       count=len(seq))


def _plugin_entropy(counts: np.ndarray) -> float:
    n = counts.sum()
    return float(-(counts * (np.log2(counts) - math.log2(n))).sum() / n)


@dataclass(frozen=True)
class ConditionalEntropy:
    """Plug-in H(X_t | previous k) for k = 0..K, with how well-sampled each context order is."""

    orders: np.ndarray  # (K+1,) k
    bits: np.ndarray  # (K+1,) H(X_t | X_{t-k..t-1}) plug-in, bits per symbol
    contexts: np.ndarray  # (K+1,) distinct contexts of length k seen
    mean_count: np.ndarray  # (K+1,) positions per distinct context
    note: str = BIAS_NOTE


def conditional_entropies(seq: Sequence | np.ndarray | str, max_order: int = 6
                          ) -> ConditionalEntropy:
    """Plug-in H(X_t | X_{t-k} .. X_{t-1}) for k = 0..max_order over positions t >= k.

    H(X|C) = H(C, X) - H(C) with both counted over the same positions; the (k+1)-gram codes
    are built from the k-gram codes one np.unique at a time, so the work is O(K n log n).
    """
    if max_order < 0:
        raise ValueError(f"max_order must be >= 0, got {max_order}")
    x = _integer_codes(seq)
    n = len(x)
    if n <= max_order:
        raise ValueError(f"the text has {n} symbols: too short for context order {max_order}")
    V = int(x.max()) + 1
    bits, ctxs, mean = [], [], []
    ctx = np.zeros(n, dtype=np.int64)  # code of the length-k context ending before each t
    for k in range(max_order + 1):
        # positions t >= k; ctx[t] = code of x[t-k:t]
        c = ctx[k:]
        joint = c * V + x[k:]
        _, joint_counts = np.unique(joint, return_counts=True)
        _, ctx_counts = np.unique(c, return_counts=True)
        bits.append(max(0.0, _plugin_entropy(joint_counts) - _plugin_entropy(ctx_counts)))
        ctxs.append(len(ctx_counts))
        mean.append((n - k) / len(ctx_counts))
        # context of length k+1 ending before t: (ctx of x[t-k-1:t-1], x[t-1])
        nxt = np.zeros(n, dtype=np.int64)
        key = ctx[k:n - 1] * V + x[k:n - 1]
        nxt[k + 1:] = np.unique(key, return_inverse=True)[1].reshape(-1)
        ctx = nxt
    return ConditionalEntropy(orders=np.arange(max_order + 1), bits=np.array(bits),
                              contexts=np.array(ctxs), mean_count=np.array(mean))


def surprisal(model: LanguageModel, ids: Sequence[int]) -> np.ndarray:
    """(T,) bits -log2 p(ids[t] | ids[:t]) of each token under a LanguageModel."""
    lp = model.token_logprobs(ids)
    return -np.asarray(lp, dtype=np.float64) / math.log(2.0)


def merge_spans(offsets: Sequence[tuple[int, int]], values: Sequence[float]
                ) -> tuple[list[tuple[int, int]], list[float]]:
    """Join tokens whose character spans overlap (byte-fallback pieces of one character),
    summing their values, so each character is drawn once with its whole surprisal."""
    spans: list[tuple[int, int]] = []
    out: list[float] = []
    for (s, e), v in zip(offsets, values, strict=True):
        if spans and s < spans[-1][1]:
            ps, pe = spans[-1]
            spans[-1] = (ps, max(pe, e))
            out[-1] += float(v)
        else:
            spans.append((int(s), int(e)))
            out.append(float(v))
    return spans, out

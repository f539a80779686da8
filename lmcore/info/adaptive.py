"""An adaptive model: a base LM sharpened online by the text it is reading (PPM-style).

p(x | h) is built bottom-up from the base model's prediction p_base(x | h): for k = 0..K, if
the last k tokens of h occurred before *in this same text*, with n(x) counts after them (N in
all), then

    p_k(x) = (max(n(x) - D(n(x)), 0) + (theta + sum_y D(n(y))) p_{k-1}(x)) / (N + theta)

(the predictive rule of a hierarchical Pitman-Yor process with one table per type, i.e.
interpolated Kneser-Ney/PPM with a concentration theta, with modified Kneser-Ney's three
discounts D1, D2, D3+ for tokens seen once, twice, or more). Everything depends only on the
tokens before position t, so a decoder that has decoded them computes the very same floats:
learning from the text being coded is legitimate and standard in compression (PPM, cmix).

The contract stays stateless: `next_logprobs(context)` equals "replay the counts of `context`,
then predict". A cache of the last replayed history makes the usual left-to-right calls (the
coder's) cost O(K) each instead of O(t).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lmcore.info.prefix import extends
from lmcore.models.lm import LanguageModel

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer


@dataclass(frozen=True)
class AdaptiveConfig:
    """Online context orders min_order..order, discounts D1 < 1, D2 < 2, D3+ < 3 (for tokens
    seen once, twice, more), concentration theta > -D1.

    Tuned on the validation part of the built-in corpus over an order-6 KN char model:
    short online contexts add nothing a trained base does not know, and overriding the base
    with them costs bits, so they start at the base's own order (`min_order=None`: the base's
    `order` for an n-gram, 4 for another base, 0 without a base).
    """

    order: int = 10
    discounts: tuple[float, float, float] = (0.5, 0.9, 1.5)
    concentration: float = 5.0
    min_order: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.order <= 32:
            raise ValueError(f"order must be from 0 to 32, got {self.order}")
        if self.min_order is not None and not 0 <= self.min_order <= self.order:
            raise ValueError(f"min_order must lie in 0..order ({self.order}), "
                             f"got {self.min_order}")
        if len(self.discounts) != 3 or not all(
                0 <= d < k for k, d in enumerate(self.discounts, start=1)):
            raise ValueError(f"discounts must be (D1, D2, D3+) with 0 <= D1 < 1, 0 <= D2 < 2, "
                             f"0 <= D3+ < 3; got {self.discounts}")
        if not (math.isfinite(self.concentration) and self.concentration > -self.discounts[0]):
            raise ValueError(f"concentration must exceed -D1, got {self.concentration}")


class _Node:
    """Counts of the tokens seen after one context (in the text so far)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0


class AdaptiveLM(LanguageModel):
    """`base` (or a uniform law when None) refined by counts of the text read so far."""

    def __init__(self, base: LanguageModel | None, config: AdaptiveConfig | None = None, *,
                 vocab_size: int | None = None, tokenizer: Tokenizer | None = None):
        if base is None and vocab_size is None:
            raise ValueError("an adaptive model without a base needs vocab_size")
        self.base = base
        self.config = config or AdaptiveConfig()
        self.vocab_size = base.vocab_size if base is not None else int(vocab_size)
        self.tokenizer = tokenizer if tokenizer is not None else getattr(base, "tokenizer", None)
        low = self.config.min_order
        if low is None:
            order = getattr(base, "order", None)
            low = 0 if base is None else (order if isinstance(order, int) else 4)
        self.min_order = min(low, self.config.order)
        self._reset()

    def _reset(self) -> None:
        self._hist: list[int] = []
        self._nodes: dict[tuple[int, ...], _Node] = {}
        self._last: list | None = None  # the list object last passed to next_logprobs

    def _feed(self, x: int) -> None:
        """Count token x after each of its contexts of length 0..order, then append it."""
        h, K = self._hist, self.config.order
        for k in range(self.min_order, min(K, len(h)) + 1):
            key = tuple(h[len(h) - k:])
            node = self._nodes.get(key)
            if node is None:
                node = self._nodes[key] = _Node()
            node.counts[x] = node.counts.get(x, 0) + 1
            node.total += 1
        h.append(x)

    def _sync(self, context: Sequence[int]) -> None:
        """Make the counts those of `context` (extend the cached history when it is a prefix).

        The prefix check is a full comparison, except for the coder's pattern: the very list
        object passed last time, grown by appends (then only its new tail is read), which
        keeps coding O(n) instead of O(n^2). Mutating such a list in place is not supported.
        """
        n = len(self._hist)
        if not extends(context, self._hist, self._last):
            self._reset()
            n = 0
        self._last = context if isinstance(context, list) else None
        for x in context[n:]:
            x = int(x)
            if not 0 <= x < self.vocab_size:
                raise ValueError(f"token id {x} is outside the vocabulary (0..{self.vocab_size - 1})")
            self._feed(x)

    def _base_probs(self, context: list[int]) -> np.ndarray:
        if self.base is None:
            return np.full(self.vocab_size, 1.0 / self.vocab_size)
        from lmcore.info.coding import next_probs

        return next_probs(self.base, context)

    def _predict(self) -> np.ndarray:
        h, theta = self._hist, self.config.concentration
        d1, d2, d3 = self.config.discounts
        p = self._base_probs(h)
        for k in range(self.min_order, min(self.config.order, len(h)) + 1):
            node = self._nodes.get(tuple(h[len(h) - k:]))
            if node is None:
                break  # a longer context cannot have been seen if this one was not
            ids = np.fromiter(node.counts.keys(), dtype=np.int64, count=len(node.counts))
            n = np.fromiter(node.counts.values(), dtype=np.float64, count=len(node.counts))
            d = np.where(n == 1, d1, np.where(n == 2, d2, d3))  # (T,) discount per token
            q = p * ((theta + d.sum()) / (node.total + theta))
            q[ids] += (n - d) / (node.total + theta)
            p = q
        return p

    def next_logprobs(self, context: Sequence[int]) -> np.ndarray:
        self._sync(context)
        with np.errstate(divide="ignore"):
            return np.log(self._predict())

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        self._reset()  # (also forgets the last context object)
        out = np.empty(len(ids), dtype=np.float64)
        for t, x in enumerate(ids):
            p = self._predict()
            out[t] = math.log(p[int(x)]) if p[int(x)] > 0 else -math.inf
            self._sync_one(int(x))
        return out

    def _sync_one(self, x: int) -> None:
        if not 0 <= x < self.vocab_size:
            raise ValueError(f"token id {x} is outside the vocabulary (0..{self.vocab_size - 1})")
        self._feed(x)

    def fingerprint(self) -> str:
        base = self.base.fingerprint() if self.base is not None else f"uniform{self.vocab_size}"
        spec = f"adaptive|{base}|{self.config}|{self.min_order}"
        return hashlib.sha256(spec.encode()).hexdigest()[:16]

    def num_parameters(self) -> int:
        return self.base.num_parameters() if self.base is not None else 0

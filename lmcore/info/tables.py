"""An n-gram's next-token distributions kept per context, so a coder asks each context once.

A static n-gram's prediction depends only on its last n - 1 tokens, and a text revisits the
same contexts again and again (46,494 held-out characters of the built-in corpus have 13,740
distinct 5-character contexts). `NGramTable` wraps an `NGramLM` and computes the
distributions of many contexts at once (`probs_of`: the backoff sum of `NGramLM.next_logprobs`
vectorised over contexts, the same additions and assignments element by element, so the very
same floats; `reference_probs` is the one-context version a reader learns from, and the tests
hold the batch to it). The encoder fills the table for every context of the text in one
call; the decoder, which learns its contexts one token at a time, computes a missing one
through `_row`: the same additions and assignments again, one context at a time, each
shorter context's log-domain sum remembered so that a new context costs one step of backoff
(a dozen microseconds) instead of a batch call. A file coded through the table decodes with
the bare model and back (same fingerprint, same floats). Both memos are cleared when they grow
past `max_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmcore.models.lm import LanguageModel
from lmcore.models.ngram import NGramLM


def reference_probs(model: NGramLM, context: Sequence[int]) -> np.ndarray:
    """(V,) probabilities of the next token: exp of the model's own `next_logprobs`."""
    return np.exp(model.next_logprobs(context))


def _history(model: NGramLM, context: Sequence[int]) -> tuple[int, ...]:
    """What the model conditions on: `<s>` + the context, its last order - 1 ids."""
    k = model.order - 1
    if k == 0:
        return ()
    return tuple([model.vocab.bos, *[int(i) for i in context[-k:]]][-k:])


def probs_of(model: NGramLM, hists: Sequence[tuple[int, ...]]) -> np.ndarray:
    """(K, V) probabilities after each history (as `_history` gives), vectorised."""
    V, K = model.vocab_size, len(hists)
    out = np.empty((K, V), dtype=np.float64)
    by_len: dict[int, list[int]] = {}
    for i, h in enumerate(hists):
        by_len.setdefault(len(h), []).append(i)
    for L, where in by_len.items():
        H = np.asarray([hists[i] for i in where], dtype=np.int64).reshape(len(where), L)
        dist = np.tile(model.lp[0], (len(where), 1))  # (k, V)
        valid = np.ones(len(where), dtype=bool)
        for j in range(1, L + 1):  # suffixes of length j, while every shorter one is stored
            words = H[:, L - j:]  # (k, j)
            r = words[:, 0].copy()
            for n in range(2, j + 1):
                keys = model.keys[n - 1]
                key = r * V + words[:, n - 1]
                i = np.searchsorted(keys, key)
                found = (i < len(keys)) & (keys[np.minimum(i, len(keys) - 1)] == key) \
                    if len(keys) else np.zeros(len(key), dtype=bool)
                valid &= found
                r = np.where(found, i, 0)
            idx = np.flatnonzero(valid)
            if not len(idx):
                break
            r = r[idx]
            dist[idx] = dist[idx] + model.bo[j - 1][r][:, None]
            keys = model.keys[j]
            lo = np.searchsorted(keys, r * V)
            hi = np.searchsorted(keys, (r + 1) * V)
            n_each = hi - lo
            total = int(n_each.sum())
            if total:
                starts = np.repeat(lo - (np.cumsum(n_each) - n_each), n_each)
                ki = np.arange(total) + starts  # every stored n-gram after each context
                dist[np.repeat(idx, n_each), keys[ki] - np.repeat(r, n_each) * V] = \
                    model.lp[j][ki]
        out[where] = np.exp(dist)
    return out


class NGramTable(LanguageModel):
    """`model`'s next-token distributions, memoised by context (see the module doc)."""

    def __init__(self, model: NGramLM, max_rows: int = 50_000):
        self.model = model
        self.vocab_size = model.vocab_size
        self.tokenizer = getattr(model, "tokenizer", None)
        self.order = model.order
        self.max_rows = max_rows
        self._rows: dict[tuple[int, ...], np.ndarray] = {}
        self._sums: dict[tuple[int, ...], np.ndarray] = {}  # log-domain sum after a suffix
        self._index: dict[tuple[int, ...], int] = {}  # n-gram -> its row, -1: not stored

    def fill(self, hists: Sequence[tuple[int, ...]]) -> None:
        """Compute the missing ones of these histories in one vectorised call."""
        todo = list(dict.fromkeys(h for h in hists if h not in self._rows))
        if len(self._rows) + len(todo) > self.max_rows:
            self._rows.clear()
        for a in range(0, len(todo), 4096):
            part = todo[a:a + 4096]
            for h, row in zip(part, probs_of(self.model, part), strict=True):
                row.setflags(write=False)
                self._rows[h] = row

    def probs(self, context: Sequence[int]) -> np.ndarray:
        """(V,) probabilities of the next token after `context`."""
        h = _history(self.model, context)
        row = self._rows.get(h)
        if row is None:
            self.model._check_ids(context[-max(1, self.order - 1):] if context else [])
            if len(self._rows) >= self.max_rows:
                self._rows.clear()
            row = self._rows[h] = np.exp(self._sum(h))
            row.setflags(write=False)
        return row

    def _sum(self, h: tuple[int, ...]) -> np.ndarray:
        """(V,) log-domain distribution after history h: `probs_of`'s steps for one context,
        each suffix's partial sum memoised (it depends on that suffix alone)."""
        m, V, L = self.model, self.vocab_size, len(h)
        if len(self._sums) >= self.max_rows:
            self._sums.clear()
            self._index.clear()
        known = L
        while known > 0 and h[L - known:] not in self._sums:  # the longest remembered suffix
            known -= 1
        dist = self._sums[h[L - known:]] if known else m.lp[0]
        for j in range(known + 1, L + 1):  # one word longer at a time
            r = self._gram(h[L - j:])
            if r < 0:
                break  # a longer suffix cannot be stored when this one is not
            dist = dist + m.bo[j - 1][r]
            keys = m.keys[j]
            lo, hi = np.searchsorted(keys, [r * V, (r + 1) * V])
            dist[keys[lo:hi] - r * V] = m.lp[j][lo:hi]
            dist.setflags(write=False)
            self._sums[h[L - j:]] = dist
        return dist

    def _gram(self, g: tuple[int, ...]) -> int:
        """Row of the n-gram g in the model's order-len(g) table, or -1 when not stored."""
        r = self._index.get(g)
        if r is None:
            if len(g) == 1:
                r = g[0]
            else:
                head = self._gram(g[:-1])
                keys = self.model.keys[len(g) - 1]
                key = head * self.vocab_size + g[-1]
                i = int(np.searchsorted(keys, key)) if head >= 0 else len(keys)
                r = i if i < len(keys) and keys[i] == key else -1
            self._index[g] = r
        return r

    def next_logprobs(self, context: Sequence[int]) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.probs(context))

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        return self.model.token_logprobs(ids)

    def fingerprint(self) -> str:
        return self.model.fingerprint()

    def num_parameters(self) -> int:
        return self.model.num_parameters()

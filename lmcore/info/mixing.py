"""A mixing coder in the PAQ/cmix tradition: several predictors, one online logistic mixer.

Every token, each predictor gives a distribution p_i over the vocabulary: trained models
(Kneser-Ney n-grams of several orders, the adaptive model over the best of them, a
Transformer read with a KV cache: on the built-in corpus's held-out 10%, 1.161 bits/char
without it and 1.061 with a 4x128 char model that alone codes 1.64), an online PPM that only counts the text being coded, a word model (counts of the next token
after the current and the previous word, over the training text and the coded one), and
match models that
predict the token which followed the longest earlier occurrence of the last k tokens (k = 6,
12, 20; "earlier" includes the training text when it is given as `primer`). The mixer
combines them geometrically (logistic mixing generalised to V symbols),

    p(x) = softmax_x( sum_i w_i log p_i(x) ),

with four weight vectors averaged: three chosen per token by context (the match length
bucket, the previous token, the previous two hashed) and one for every token. After the token x is known, both take one gradient step on
-log2 p(x):  w_i += lr * (log p_i(x) - sum_y p(y) log p_i(y)).  The weights therefore learn,
as the text is read, which predictor to trust where. Everything depends only on the tokens
already coded, computed in float64 numpy in a fixed order, so the decoder, reading the same
tokens, reproduces the encoder's mixer state bit for bit (tests round-trip it).

The contract stays stateless as in `lmcore.info.adaptive`: `next_logprobs(context)` equals
"replay the mixer over `context`, then predict"; a cache of the last context makes the coder's
left-to-right calls cost one step each.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lmcore.info.adaptive import AdaptiveConfig, AdaptiveLM
from lmcore.info.prefix import extends
from lmcore.models.lm import LanguageModel

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

LOG_FLOOR = math.log(1e-12)  # a predictor's log-probability is clipped here (MLE zeros)
MAX_MATCH = 64  # match lengths are verified and bucketed up to this


@dataclass(frozen=True)
class MixConfig:
    """Match models for these context lengths, an online PPM of this order, the mixer's
    learning rate. Tuned on the built-in corpus's held-out part (bench/compress.py)."""

    match_lengths: tuple[int, ...] = (6, 12, 20)
    online_order: int = 5
    learning_rate: float = 0.005

    def __post_init__(self) -> None:
        if not all(1 <= k <= 64 for k in self.match_lengths):
            raise ValueError(f"match lengths must lie in 1..64, got {self.match_lengths}")
        if not 0 <= self.online_order <= 16:
            raise ValueError(f"online_order must lie in 0..16, got {self.online_order}")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate < 1):
            raise ValueError(f"learning_rate must lie in (0, 1), got {self.learning_rate}")


class MatchModel:
    """The token that followed the last earlier occurrence of the current k-token context.

    A table maps every k-gram of the history to the position after its latest occurrence.
    While a match holds (its predicted token keeps coming true) it is followed; when it breaks,
    the table is asked again. Its confidence for a match of length L is learned online: the
    share of predictions at that length that came true so far (starting at 1/2).
    """

    def __init__(self, k: int, vocab_size: int):
        self.k, self.V = k, vocab_size
        self.table: dict[tuple[int, ...], int] = {}
        self.ptr = self.length = 0
        self.hits = np.ones((MAX_MATCH + 1, 2))  # per length: [came true + 1, predicted + 1]

    def prime(self, hist: list[int]) -> None:
        """Index a text read before the coded one (its k-grams only; no statistics)."""
        k = self.k
        for i in range(k, len(hist)):
            self.table[tuple(hist[i - k:i])] = i

    def predict(self, hist: list[int]) -> tuple[int, int]:
        """(predicted token or -1, match length) for the position after `hist`."""
        i, k = len(hist), self.k
        if i < k:
            return -1, 0
        key = tuple(hist[i - k:i])
        if self.length == 0:
            q = self.table.get(key)
            if q is not None:
                n = 0
                while n < MAX_MATCH and q - n - 1 >= 0 and hist[q - n - 1] == hist[i - n - 1]:
                    n += 1
                self.ptr, self.length = q, n
        self.table[key] = i
        if self.length == 0:
            return -1, 0
        return hist[self.ptr], min(self.length, MAX_MATCH)

    def features(self, expected: int, length: int) -> np.ndarray:
        """(V,) log-probabilities: the learned confidence on the expected token."""
        if expected < 0:
            return np.full(self.V, -math.log(self.V))
        h = self.hits[length]
        c = h[0] / (h[1] + 1)
        f = np.full(self.V, math.log((1 - c) / (self.V - 1)))
        f[expected] = math.log(c)
        return f

    def update(self, expected: int, length: int, x: int) -> None:
        if expected < 0:
            return
        self.hits[length] += (1.0 if expected == x else 0.0, 1.0)
        if expected == x:
            self.ptr += 1
            self.length += 1
        else:
            self.length = 0


class WordModel:
    """Counts of the next token after (the word being typed, the word before it), over the
    primer and the coded text, smoothed towards a base distribution:
    p(x) = (n(x) + beta p_base(x)) / (N + beta). A word is a run of alphanumeric tokens."""

    def __init__(self, word_tokens: np.ndarray, beta: float = 2.0):
        self.word = word_tokens  # (V,) bool: the token is part of a word
        self.beta = beta
        self.counts: dict[tuple[int, int], dict[int, int]] = {}
        self.cur = self.prev = 0

    def key(self) -> tuple[int, int]:
        return self.cur, self.prev

    def add(self, x: int) -> None:
        """Count x in the current context, then move the context past it."""
        d = self.counts.setdefault((self.cur, self.prev), {})
        d[x] = d.get(x, 0) + 1
        if self.word[x]:
            self.cur = (self.cur * 1000003 + x + 1) & 0xFFFFFFFFFFFF
        else:
            if self.cur:
                self.prev, self.cur = self.cur, 0
            self.prev = (self.prev * 31 + x) & 0xFFFFFFFFFFFF  # punctuation joins the context

    def features(self, base: np.ndarray) -> np.ndarray:
        """(V,) log-probabilities given the base distribution `base` (sums to 1)."""
        d = self.counts.get((self.cur, self.prev))
        if not d:
            return np.log(np.maximum(base, 1e-12))
        ids = np.fromiter(d.keys(), dtype=np.int64, count=len(d))
        n = np.fromiter(d.values(), dtype=np.float64, count=len(d))
        p = self.beta * base
        p[ids] += n
        p /= n.sum() + self.beta
        return np.log(np.maximum(p, 1e-12))


def _bucket(length: int) -> int:
    """0 for no match, then 1 + floor(log2 L), capped at 7."""
    return 0 if length == 0 else min(1 + int(math.log2(length)), 7)


class MixingLM(LanguageModel):
    """Predictors mixed per token by an online logistic mixer (see the module docstring).

    `components`: trained LanguageModels on the coder's tokenizer (n-grams, an adaptive model,
    a Transformer); the mixer starts by trusting the last one. `primer`: token ids of the
    training text, read by the match models before the coded text.
    """

    def __init__(self, components: Sequence[LanguageModel], config: MixConfig | None = None, *,
                 primer: Sequence[int] = (), tokenizer: Tokenizer | None = None,
                 vocab_size: int | None = None):
        if not components and vocab_size is None:
            raise ValueError("a mixer without components needs vocab_size")
        self.components = list(components)
        sizes = {m.vocab_size for m in self.components}
        if len(sizes) > 1:
            raise ValueError(f"the components predict different vocabularies ({sorted(sizes)})")
        self.vocab_size = sizes.pop() if sizes else int(vocab_size)
        self.config = config or MixConfig()
        self.tokenizer = tokenizer if tokenizer is not None else next(
            (m.tokenizer for m in self.components if getattr(m, "tokenizer", None)), None)
        self.primer = [int(i) for i in primer]
        bad = [i for i in self.primer if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"primer token id {bad[0]} is outside the vocabulary")
        self._primed: list[MatchModel] | None = None
        self._primed_words: WordModel | None = None
        self._words = self._word_tokens()
        self._reset()

    # ------------------------------------------------------------------ state

    def _word_tokens(self) -> np.ndarray:
        """(V,) bool: tokens made of letters and digits only (words, for the word model)."""
        out = np.zeros(self.vocab_size, dtype=bool)
        tok = self.tokenizer
        if tok is None:
            return out
        for i in range(self.vocab_size):
            try:
                piece = tok.decode([i])
            except Exception:  # a token with no text of its own
                continue
            out[i] = bool(piece) and piece.isalnum()
        return out

    def _fresh_words(self) -> WordModel:
        """A word model that has counted the primer (counted once, then copied)."""
        if self._primed_words is None:
            self._primed_words = WordModel(self._words)
            for x in self.primer:
                self._primed_words.add(x)
        w = WordModel(self._words)
        w.counts = {k: dict(v) for k, v in self._primed_words.counts.items()}
        w.cur, w.prev = self._primed_words.cur, self._primed_words.prev
        return w

    def _fresh_matches(self) -> list[MatchModel]:
        """Match models that have indexed the primer (built once, then copied)."""
        if self._primed is None:
            self._primed = []
            for k in self.config.match_lengths:
                m = MatchModel(k, self.vocab_size)
                m.prime(self.primer)
                self._primed.append(m)
        out = []
        for p in self._primed:
            m = MatchModel(p.k, p.V)
            m.table = dict(p.table)
            out.append(m)
        return out

    def _reset(self) -> None:
        cfg, V = self.config, self.vocab_size
        self._ctx: list[int] = []  # the coded tokens so far (passed to the components)
        self._hist = list(self.primer)  # primer + coded tokens (the match models' history)
        self._matches = self._fresh_matches()
        self._word = self._fresh_words()
        self._online = AdaptiveLM(None, AdaptiveConfig(order=cfg.online_order, min_order=0),
                                  vocab_size=V)
        # components, online PPM, word model, match models, bias
        self._n_inputs = len(self.components) + 2 + len(self._matches) + 1
        w = np.zeros(self._n_inputs)
        if self.components:
            w[len(self.components) - 1] = 1.0  # start by trusting the last (best) component
        else:
            w[0] = 1.0  # the online PPM
        self._w_match = np.tile(w, (8, 1))  # (8, M) by match length bucket
        self._w_prev = np.tile(w, (V + 1, 1))  # (V + 1, M) by previous token (V: none)
        self._w_prev2 = np.tile(w, (4096, 1))  # (4096, M) by the previous two (hashed)
        self._w_all = w.copy()  # (M,) for every token
        self._step: tuple | None = None  # (F, p, bucket, prev, match predictions) of now
        self._last: list | None = None

    def _features(self) -> np.ndarray:
        """(M, V) log-probabilities of every input at the current position."""
        rows = [np.maximum(np.asarray(m.next_logprobs(self._ctx), dtype=np.float64), LOG_FLOOR)
                for m in self.components]
        rows.append(np.maximum(self._online.next_logprobs(self._ctx), LOG_FLOOR))
        base = np.exp(rows[len(self.components) - 1] if self.components else rows[-1])
        rows.append(self._word.features(base / base.sum()))
        preds = [m.predict(self._hist) for m in self._matches]
        rows += [m.features(e, n) for m, (e, n) in zip(self._matches, preds, strict=True)]
        rows.append(np.full(self.vocab_size, -math.log(self.vocab_size)))
        return np.stack(rows), preds

    def _predict(self) -> np.ndarray:
        """p over the vocabulary at the current position (kept for the update)."""
        if self._step is None:
            F, preds = self._features()
            length = max(n for _, n in preds) if preds else 0
            b = _bucket(length)
            V = self.vocab_size
            prev = self._ctx[-1] if self._ctx else V
            prev2 = ((self._ctx[-2] if len(self._ctx) > 1 else V) * (V + 1) + prev) % 4096
            # weights (M,) times inputs (M, V), summed row by row in a fixed order (not BLAS,
            # whose summation order depends on the CPU and thread count)
            w = (self._w_match[b] + self._w_prev[prev] + self._w_prev2[prev2] + self._w_all) / 4
            z = (w[:, None] * F).sum(axis=0)  # (V,)
            prev = (prev, prev2)
            z = z - z.max()
            p = np.exp(z)
            p /= p.sum()
            self._step = (F, p, b, prev, preds)
        return self._step[1]

    def _feed(self, x: int) -> None:
        """Learn from token x at the current position, then move past it."""
        if not 0 <= x < self.vocab_size:
            raise ValueError(f"token id {x} is outside the vocabulary (0..{self.vocab_size - 1})")
        self._predict()
        F, p, b, prev, preds = self._step
        g = self.config.learning_rate * (F[:, x] - (F * p).sum(axis=1))  # (M,) d log p(x)
        self._w_match[b] += g
        self._w_prev[prev[0]] += g
        self._w_prev2[prev[1]] += g
        self._w_all += g
        self._word.add(x)
        for m, (e, n) in zip(self._matches, preds, strict=True):
            m.update(e, n, x)
        self._ctx.append(x)
        self._hist.append(x)
        self._step = None

    def _sync(self, context: Sequence[int]) -> None:
        """Make the state that after `context` (extending the last one when it is a prefix)."""
        n = len(self._ctx)
        if not extends(context, self._ctx, self._last):
            self._reset()
            n = 0
        self._last = context if isinstance(context, list) else None
        for x in context[n:]:
            self._feed(int(x))

    # ------------------------------------------------------------------ contract

    def next_logprobs(self, context: Sequence[int]) -> np.ndarray:
        self._sync(context)
        with np.errstate(divide="ignore"):
            return np.log(self._predict())

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        self._reset()
        out = np.empty(len(ids), dtype=np.float64)
        for t, x in enumerate(ids):
            p = self._predict()
            out[t] = math.log(p[int(x)]) if p[int(x)] > 0 else -math.inf
            self._feed(int(x))
        self._reset()
        return out

    def fingerprint(self) -> str:
        parts = [m.fingerprint() for m in self.components]
        primer = hashlib.sha256(np.asarray(self.primer, dtype=np.int64).tobytes()).hexdigest()
        spec = f"mixing|{'|'.join(parts)}|{self.config}|primer {primer[:16]}|V{self.vocab_size}"
        return hashlib.sha256(spec.encode()).hexdigest()[:16]

    def num_parameters(self) -> int:
        return sum(m.num_parameters() for m in self.components)


def mixing_coder(ngrams: Sequence[LanguageModel], primer: Sequence[int] = (),
                 config: MixConfig | None = None,
                 transformer: LanguageModel | None = None) -> MixingLM:
    """The mixing coder over trained char n-grams (lowest order first): each n-gram through
    its per-context table, a Transformer when one is given (read with a KV cache, on the same
    tokenizer), the adaptive model over the highest n-gram last (the mixer starts by trusting
    it), match and word models primed with `primer` (the training text's ids)."""
    if not ngrams:
        raise ValueError("the mixing coder needs at least one trained n-gram")
    tables = [_stepwise(m) for m in ngrams]
    extra: list[LanguageModel] = []
    if transformer is not None:
        if transformer.vocab_size != tables[-1].vocab_size:
            raise ValueError(f"the Transformer predicts {transformer.vocab_size} tokens, the "
                             f"n-grams {tables[-1].vocab_size}: they need the same tokenizer")
        extra.append(_stepwise(transformer))
    return MixingLM([*tables, *extra, AdaptiveLM(tables[-1])], config, primer=primer)


def _stepwise(model: LanguageModel) -> LanguageModel:
    """`model` as the mixer asks it, one token after another: an n-gram through its
    per-context table, a Transformer with a KV cache (lmcore.info.streams.Stepper)."""
    from lmcore.info.tables import NGramTable
    from lmcore.models.ngram import NGramLM

    if isinstance(model, NGramLM):
        return NGramTable(model)
    mod = sys.modules.get("lmcore.models.transformer")  # (no torch import for n-grams)
    if mod is not None and isinstance(model, mod.TransformerLM):
        from lmcore.info.streams import Stepper

        return Stepper(model)
    return model

"""N-gram language models of order 1..6: MLE, add-k, KenLM's Kneser-Ney, stupid backoff.

Counting is vectorised numpy: every sentence is padded `<s> w1 .. wk </s>` and laid end to end;
the n-gram ending at each position gets an integer key `id(context) * V + word`, where
`id(context)` is the row of its (n-1)-gram in the sorted table of the order below, so one
`np.unique` per order gives the sorted table, the counts and each n-gram's suffix row.

Interpolated modified Kneser-Ney is built exactly as KenLM's `lmplz`:
- adjusted counts: the raw count at the highest order and for n-grams starting with `<s>`,
  the number of distinct left extensions (continuation count) otherwise;
- three discounts per order from the counts-of-counts t1..t4 of the adjusted counts,
  Y = t1 / (t1 + 2 t2), D_k = k - (k + 1) Y t_{k+1} / t_k (Chen & Goodman eq. 26);
- p(w|c) = (a(cw) - D(a(cw))) / sum_x a(cx) + gamma(c) p(w|c'), with
  gamma(c) = (D1 N1(c.) + D2 N2(c.) + D3 N3+(c.)) / sum_x a(cx); at the unigram level gamma
  is spread uniformly over every predictable type (the vocabulary less `<s>`), which is where
  `<unk>` gets its probability;
- when counts-of-counts are too sparse for a discount (t1..t3 = 0, or a D out of [0, k]),
  lmplz stops; lmcore uses lmplz's `--discount_fallback` values 0.5, 1, 1.5 for that order and
  lists it in `fallback_orders`.

Vocabularies: KenLM's whitespace convention (`from_sentences`: one sentence per line, words
split exactly where lmplz splits them, on NUL, tab, LF, CR and space (not on vertical tab, form
feed or any non-ASCII space), ids `<unk>`, `<s>`, `</s>`, then words in first-seen order,
unseen test words map to `<unk>`; `<s>`, `</s>` and `<unk>` may not appear in the training
text, as lmplz refuses them), or a lmcore tokenizer (`from_tokenizer`: its ids are the
vocabulary, its BOS/EOS/UNK play `<s>`/`</s>`/`<unk>`, each text is one sequence, and the
unused specials PAD/MASK/CLS/SEP are never predicted). Out-of-vocabulary tokens, excluded by
`perplexity_no_oov`, are those never seen in training and `<unk>` itself (KenLM's OOV count is
the number of tokens scored as `<unk>`).

Every smoothing is stored in backoff (ARPA) form: per order a log-probability for each seen
n-gram and a backoff weight for each n-gram used as a context, and scored by one routine:
p(w|h) = p(w|h_k) * b(h_{k+1}) ... b(h), h_k the longest suffix of h with (h_k w) seen.
A context of unseen or unknown words therefore falls back to its longest known suffix (down
to the unigram level); MLE gives probability 0 (log -inf) to a word unseen after a context it
has seen, which `Evaluation` reports as perplexity inf with the count of such tokens.
Stupid backoff (Brants et al. 2007) is normalised per context so its perplexity is a real one;
its unigram level is add-k so unseen words keep a non-zero probability.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lmcore.models.lm import LN2, LanguageModel, Score, generate_ids
from lmcore.models.ngram_vocab import Vocab, split_words, tokenizer_vocab

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

Progress = Callable[[float, str], None]

SMOOTHINGS = ("mle", "addk", "kn", "stupid")
MAX_ORDER = 6
LN10 = math.log(10.0)
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback defaults
LOADED = "arpa"  # smoothing of a model read from an ARPA file (unknown, already applied)


@dataclass(frozen=True)
class NGramConfig:
    """What model to fit: order 1..6 and smoothing ('mle', 'addk', 'kn', 'stupid')."""

    order: int = 3
    smoothing: str = "kn"
    k: float = 1.0  # add-k pseudo-count (Laplace when 1); also stupid backoff's unigram level
    alpha: float = 0.4  # stupid backoff factor

    def __post_init__(self) -> None:
        if isinstance(self.order, bool) or not isinstance(self.order, int | np.integer):
            raise ValueError(f"order must be an integer from 1 to {MAX_ORDER}, got {self.order!r}")
        if not 1 <= self.order <= MAX_ORDER:
            raise ValueError(f"order must be from 1 to {MAX_ORDER}, got {self.order} "
                             "(an order-0 model predicts nothing; above 6 almost every n-gram "
                             "is unseen)")
        if self.smoothing not in (*SMOOTHINGS, LOADED):
            raise ValueError(f"unknown smoothing {self.smoothing!r}; choose one of "
                             f"{', '.join(SMOOTHINGS)}")
        if not (math.isfinite(self.k) and self.k > 0):
            raise ValueError(f"add-k needs k > 0 (k = 1 is Laplace), got k={self.k}")
        if not (math.isfinite(self.alpha) and 0 < self.alpha <= 1):
            raise ValueError(f"stupid backoff needs 0 < alpha <= 1, got alpha={self.alpha}")


# ----------------------------------------------------------------------------- counting


@dataclass
class _Stream:
    """Sentences laid end to end as `<s> ids .. </s>`, with each token's place in its sentence."""

    tok: np.ndarray  # (P,) token ids
    pos: np.ndarray  # (P,) 0 at each <s>
    sent: np.ndarray  # (P,) sentence index


def _stream(seqs: Sequence[Sequence[int]], vocab: Vocab, add_eos: bool,
            final_eos: bool = True) -> _Stream:
    """The stream of `seqs`; `final_eos=False` leaves `</s>` off the last one only."""
    arrays = [np.asarray(s, dtype=np.int64).reshape(-1) for s in seqs]
    lens = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    body = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    if body.size and (body.min() < 0 or body.max() >= vocab.size):
        bad = body[(body < 0) | (body >= vocab.size)][0]
        raise ValueError(f"token id {bad} is outside the vocabulary (0..{vocab.size - 1})")
    if body.size and np.any(body == vocab.bos):
        raise ValueError("a sequence contains the beginning-of-sentence id; it is added "
                         "automatically and may not appear inside a text")
    eos = np.full(len(arrays), add_eos, dtype=bool)
    if len(arrays) and not final_eos:
        eos[-1] = False
    full = lens + 1 + eos
    starts = (np.cumsum(full) - full).astype(np.int64)
    total = int(full.sum())
    tok = np.empty(total, dtype=np.int64)
    is_body = np.ones(total, dtype=bool)
    tok[starts] = vocab.bos
    is_body[starts] = False
    if add_eos:
        ends = (starts + full - 1)[eos]
        tok[ends] = vocab.eos
        is_body[ends] = False
    tok[is_body] = body
    sent = np.repeat(np.arange(len(arrays), dtype=np.int64), full)
    pos = np.arange(total, dtype=np.int64) - starts[sent]
    return _Stream(tok, pos, sent)


@dataclass
class _Table:
    """One order's n-grams: sorted keys `row(context) * V + word`, counts, suffix rows."""

    keys: np.ndarray  # (K,) int64, sorted
    counts: np.ndarray  # (K,) raw occurrences in the training stream
    suffix: np.ndarray  # (K,) row of the (n-1)-gram suffix in the order below (order >= 2)
    bos_start: np.ndarray  # (K,) bool: the n-gram starts with <s>


def _count(stream: _Stream, order: int, V: int) -> list[_Table]:
    """Tables for orders 1..order; order 1 is dense over the vocabulary."""
    tok, pos = stream.tok, stream.pos
    uni = np.bincount(tok[pos > 0], minlength=V).astype(np.int64)
    tables = [_Table(np.arange(V, dtype=np.int64), uni, np.zeros(V, dtype=np.int64),
                     np.arange(V) < 0)]
    prev = tok  # row of the (n-1)-gram ending at each position (-1: none)
    for n in range(2, order + 1):
        p = np.flatnonzero(pos >= n - 1)
        key = prev[p - 1] * V + tok[p]
        keys, first, inv, counts = np.unique(key, return_index=True, return_inverse=True,
                                             return_counts=True)
        at = p[first]
        tables.append(_Table(keys, counts.astype(np.int64), prev[at], pos[at] == n - 1))
        cur = np.full(len(tok), -1, dtype=np.int64)
        cur[p] = inv.reshape(-1)
        prev = cur
    return tables


def _count_checked(sequences: Sequence[Sequence[int]], vocab: Vocab, order: int,
                   final_eos: bool = True) -> list[_Table]:
    stream = _stream(sequences, vocab, add_eos=True, final_eos=final_eos)
    if not (stream.pos > 0).any():
        raise ValueError("the training text is empty: there is nothing to count")
    return _count(stream, order, vocab.size)


# ----------------------------------------------------------------------------- smoothing


def _context(table: _Table, V: int, n: int) -> np.ndarray:
    return table.keys // V if n > 1 else np.zeros(len(table.keys), dtype=np.int64)


def kn_discounts(adjusted: np.ndarray) -> tuple[float, float, float] | None:
    """(D1, D2, D3+) from counts-of-counts of adjusted counts; None when they are undefined."""
    t = np.bincount(np.clip(adjusted, 0, 5), minlength=6)[:5].astype(np.float64)
    if np.any(t[1:4] == 0):
        return None
    y = t[1] / (t[1] + 2.0 * t[2])
    d = tuple(float(j - (j + 1) * y * t[j + 1] / t[j]) for j in (1, 2, 3))
    if any(not 0.0 <= dj <= j for j, dj in zip((1, 2, 3), d, strict=True)):
        return None
    return d  # type: ignore[return-value]


def _adjusted_counts(tables: list[_Table], vocab: Vocab) -> list[np.ndarray]:
    """KenLM's adjusted counts: raw at the top order and after <s>, continuation otherwise."""
    N = len(tables)
    adj = []
    for n in range(1, N + 1):
        t = tables[n - 1]
        if n == N:
            a = t.counts.copy()
        else:
            a = np.bincount(tables[n].suffix, minlength=len(t.keys)).astype(np.int64)
            a = np.where(t.bos_start, t.counts, a)
            if n == 1:
                a[vocab.bos] = 0
        adj.append(a)
    return adj


@dataclass
class _Fitted:
    lp: list[np.ndarray]  # natural-log probability of each n-gram, per order
    bo: list[np.ndarray]  # natural-log backoff of each n-gram as a context, orders 1..N-1
    discounts: dict[int, tuple[float, float, float]]
    fallback_orders: list[int]


def _predictable(vocab: Vocab, uni_counts: np.ndarray) -> np.ndarray:
    """(V,) bool: ids the model may emit (everything but <s> and unused reserved ids)."""
    mask = np.ones(vocab.size, dtype=bool)
    mask[vocab.bos] = False
    for i in vocab.reserved:
        if uni_counts[i] == 0:
            mask[i] = False
    return mask


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


def _fit_kn(tables: list[_Table], vocab: Vocab, emit: np.ndarray) -> _Fitted:
    V, N = vocab.size, len(tables)
    adj = _adjusted_counts(tables, vocab)
    lp, bo, discounts, fallback = [], [], {}, []
    prob_below = None
    for n in range(1, N + 1):
        a, t = adj[n - 1], tables[n - 1]
        d = kn_discounts(a)
        if d is None:
            d = FALLBACK_DISCOUNTS
            fallback.append(n)
        discounts[n] = d
        dvec = np.array([0.0, *d])
        ctx = _context(t, V, n)
        n_ctx = len(tables[n - 2].keys) if n > 1 else 1
        denom = np.bincount(ctx, weights=a, minlength=n_ctx)
        mass = sum(d[j - 1] * np.bincount(ctx, weights=(np.minimum(a, 3) == j),
                                          minlength=n_ctx) for j in (1, 2, 3))
        has = denom > 0
        gamma = np.where(has, mass / np.where(has, denom, 1.0), 0.0)
        u = (a - dvec[np.minimum(a, 3)]) / np.where(has, denom, 1.0)[ctx]
        if n == 1:
            p = np.where(emit, u + gamma[0] / emit.sum(), 0.0)
        else:
            p = u + gamma[ctx] * prob_below[t.suffix]
            bo.append(np.where(has, _log(np.where(has, gamma, 1.0)), 0.0))
        lp.append(_log(p))
        prob_below = p
    return _Fitted(lp, bo, discounts, fallback)


def _fit_mle(tables: list[_Table], vocab: Vocab) -> _Fitted:
    V, N = vocab.size, len(tables)
    lp, bo = [], []
    for n in range(1, N + 1):
        t = tables[n - 1]
        ctx = _context(t, V, n)
        n_ctx = len(tables[n - 2].keys) if n > 1 else 1
        denom = np.bincount(ctx, weights=t.counts, minlength=n_ctx)
        has = denom > 0
        lp.append(_log(t.counts / np.where(has, denom, 1.0)[ctx]))
        if n > 1:
            bo.append(np.where(has, -np.inf, 0.0))
    return _Fitted(lp, bo, {}, [])


def _fit_addk(tables: list[_Table], vocab: Vocab, emit: np.ndarray, k: float) -> _Fitted:
    """(c(hw) + k) / (c(h.) + kF) over the full context h (truncated at <s>), else uniform."""
    V, N = vocab.size, len(tables)
    F = float(emit.sum())
    if N == 1:
        uni = tables[0].counts
        return _Fitted([np.where(emit, np.log(uni + k) - math.log(uni.sum() + k * F), -np.inf)],
                       [], {}, [])
    lp = [np.where(emit, -math.log(F), -np.inf)]
    bo = []
    for n in range(2, N + 1):
        t = tables[n - 1]
        # the full context of a token: N-1 words, or fewer right after <s>
        full = np.ones(len(t.keys), dtype=bool) if n == N else t.bos_start
        ctx = t.keys // V
        denom = np.bincount(ctx, weights=np.where(full, t.counts, 0), minlength=len(
            tables[n - 2].keys))
        lp.append(np.where(full, np.log(t.counts + k) - np.log(denom + k * F)[ctx],
                           -math.log(F)))
        bo.append(np.where(denom > 0, math.log(k * F) - np.log(denom + k * F), 0.0))
    return _Fitted(lp, bo, {}, [])


def _fit_stupid(tables: list[_Table], vocab: Vocab, emit: np.ndarray, k: float,
                alpha: float) -> _Fitted:
    V, N = vocab.size, len(tables)
    uni = tables[0].counts
    p1 = np.where(emit, (uni + k) / (uni[emit].sum() + k * emit.sum()), 0.0)
    lp, bo = [_log(p1)], []
    score_below = p1  # unnormalised S of each n-gram of the order below (its relative frequency)
    z_below = np.ones(1)  # normaliser Z of each context two orders below (order 0: empty)
    for n in range(2, N + 1):
        t, c = tables[n - 1], tables[n - 2]
        ctx = t.keys // V
        denom = np.bincount(ctx, weights=t.counts, minlength=len(c.keys))
        has = denom > 0
        r = t.counts / np.where(has, denom, 1.0)[ctx]
        seen_below = np.bincount(ctx, weights=score_below[t.suffix], minlength=len(c.keys))
        ctx_suffix = c.suffix if n > 2 else np.zeros(len(c.keys), dtype=np.int64)
        z_sfx = z_below[ctx_suffix]
        z = 1.0 + alpha * np.maximum(z_sfx - seen_below, 0.0)
        lp.append(np.log(r) - np.log(z)[ctx])
        bo.append(np.where(has, math.log(alpha) + np.log(z_sfx) - np.log(z), 0.0))
        score_below, z_below = r, z
    return _Fitted(lp, bo, {}, [])


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Evaluation:
    """Held-out numbers, KenLM's way: totals over the whole text, never averages of averages."""

    log10_prob: float  # sum of log10 p over every scored token (-inf if any p = 0)
    log10_prob_known: float  # the same without the out-of-vocabulary tokens
    tokens: int  # scored tokens (words and </s> for sentences)
    oov: int  # tokens never seen in training (KenLM: mapped to <unk>)
    zero_prob: int  # tokens with probability 0 (MLE on unseen n-grams)
    chars: int = 0
    bytes: int = 0
    sentence_log10: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def perplexity(self) -> float:
        return _ppl(self.log10_prob, self.tokens)

    @property
    def perplexity_no_oov(self) -> float:
        return _ppl(self.log10_prob_known, self.tokens - self.oov)

    @property
    def bits(self) -> float:
        return -self.log10_prob * LN10 / LN2

    @property
    def bits_per_token(self) -> float:
        return self.bits / self.tokens if self.tokens else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.bits / self.chars if self.chars else float("nan")

    def to_score(self) -> Score:
        """The lab-wide `Score` (bits, tokens, chars, bytes, zero-probability tokens)."""
        return Score(bits=self.bits, tokens=self.tokens, chars=self.chars, bytes=self.bytes,
                     zero_prob_tokens=self.zero_prob)


def _ppl(log10_sum: float, n: int) -> float:
    if n <= 0:
        return float("nan")
    if log10_sum == -math.inf:
        return math.inf
    return float(10.0 ** (-log10_sum / n))


# ----------------------------------------------------------------------------- the model


class NGramLM(LanguageModel):
    """An n-gram LM in backoff form; fit it with `fit`, `from_sentences` or `from_tokenizer`."""

    def __init__(self, config: NGramConfig, vocab: Vocab, keys: list[np.ndarray],
                 lp: list[np.ndarray], bo: list[np.ndarray], known: np.ndarray,
                 counts: list[np.ndarray] | None = None,
                 discounts: dict[int, tuple[float, float, float]] | None = None,
                 fallback_orders: Sequence[int] = (), tokenizer: Tokenizer | None = None) -> None:
        if len(keys) != config.order or len(lp) != config.order or len(bo) != config.order - 1:
            raise ValueError("tables do not match the model order")
        self.config = config
        self.vocab = vocab
        self.vocab_size = vocab.size
        self.keys, self.lp, self.bo = keys, lp, bo
        self.known = known  # (V,) bool: seen in training and not <unk> (others count as OOV)
        self.counts = counts
        self.discounts = discounts or {}
        self.fallback_orders = list(fallback_orders)
        self.tokenizer = tokenizer
        self.hidden_prefixes = 0  # ARPA import: missing prefixes added by backing off

    # -- fitting

    @classmethod
    def fit(cls, sequences: Sequence[Sequence[int]], vocab: Vocab,
            config: NGramConfig | None = None, tokenizer: Tokenizer | None = None,
            final_eos: bool = True, **kwargs) -> NGramLM:
        """Fit on id sequences (each padded `<s> .. </s>`); kwargs build the config.

        `final_eos=False` leaves `</s>` off the last sequence, as lmplz does for a last line
        without a newline.
        """
        config = config or NGramConfig(**kwargs)
        tables = _count_checked(sequences, vocab, config.order, final_eos)
        return cls._smooth(tables, vocab, config, tokenizer)

    @classmethod
    def _smooth(cls, tables: list[_Table], vocab: Vocab, config: NGramConfig,
                tokenizer: Tokenizer | None = None) -> NGramLM:
        if config.smoothing == LOADED:
            raise ValueError(f"choose a smoothing to fit: {', '.join(SMOOTHINGS)}")
        tables = tables[:config.order]
        if len(tables[-1].keys) == 0:
            raise ValueError(f"the corpus is too small for order {config.order}: no sentence "
                             f"is long enough to hold a {config.order}-gram (with <s> and </s>)"
                             "; choose a lower order or a longer text")
        emit = _predictable(vocab, tables[0].counts)
        s = config.smoothing
        if s == "kn":
            fitted = _fit_kn(tables, vocab, emit)
        elif s == "mle":
            fitted = _fit_mle(tables, vocab)
        elif s == "addk":
            fitted = _fit_addk(tables, vocab, emit, config.k)
        else:
            fitted = _fit_stupid(tables, vocab, emit, config.k, config.alpha)
        known = tables[0].counts > 0
        known[vocab.unk] = False  # KenLM: a token scored as <unk> is out of vocabulary
        return cls(config, vocab, [t.keys for t in tables], fitted.lp, fitted.bo,
                   known=known, counts=[t.counts for t in tables],
                   discounts=fitted.discounts, fallback_orders=fitted.fallback_orders,
                   tokenizer=tokenizer)

    @classmethod
    def fit_grid(cls, sequences: Sequence[Sequence[int]], vocab: Vocab, orders: Sequence[int],
                 smoothings: Sequence[str], k: float = 1.0, alpha: float = 0.4,
                 tokenizer: Tokenizer | None = None, progress: Progress | None = None,
                 stop: threading.Event | None = None) -> dict[tuple[str, int], NGramLM]:
        """One model per (smoothing, order), counting once at the highest order.

        `progress(fraction, message)` is told before each model; when `stop` is set the
        models fitted so far are returned.
        """
        configs = [NGramConfig(order=int(n), smoothing=s, k=k, alpha=alpha)
                   for s in smoothings for n in orders]
        if not configs:
            raise ValueError("choose at least one order and one smoothing")
        tables = _count_checked(sequences, vocab, max(c.order for c in configs))
        out = {}
        for i, c in enumerate(configs):
            if stop is not None and stop.is_set():
                return out
            if progress is not None:
                progress(i / len(configs), f"{c.smoothing}, n = {c.order}")
            out[(c.smoothing, c.order)] = cls._smooth(tables, vocab, c, tokenizer)
        if progress is not None:
            progress(1.0, "done")
        return out

    @classmethod
    def from_sentences(cls, lines: Iterable[str], config: NGramConfig | None = None,
                       final_eos: bool = True, **kwargs) -> NGramLM:
        """KenLM's convention: one sentence per line, tokens separated by whitespace.

        `final_eos=False`: the last line had no newline, and gets no `</s>` (as in lmplz).
        """
        vocab = Vocab.empty()
        seqs = vocab.add_sentences(lines)
        return cls.fit(seqs, vocab, config, final_eos=final_eos, **kwargs)

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer, texts: str | Sequence[str],
                       config: NGramConfig | None = None, **kwargs) -> NGramLM:
        """Fit over a lmcore tokenizer's ids; each text is one sequence `<s> ids .. </s>`."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        seqs = [tokenizer.encode(t) for t in texts]
        return cls.fit(seqs, tokenizer_vocab(tokenizer), config, tokenizer=tokenizer, **kwargs)

    # -- properties

    @property
    def order(self) -> int:
        return self.config.order

    def ngram_counts(self) -> list[int]:
        """Distinct n-grams stored per order (the `ngram n=` lines of the ARPA file)."""
        return [len(k) for k in self.keys]

    def num_parameters(self) -> int:
        return int(sum(len(x) for x in self.lp) + sum(len(x) for x in self.bo))

    def fingerprint(self) -> str:
        h = hashlib.sha256(repr((self.config, self.vocab.words)).encode())
        for arr in [*self.keys, *self.lp, *self.bo]:
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    # -- lookups

    def _rows(self, stream: _Stream) -> list[np.ndarray]:
        """Row of the n-gram ending at each position in each order's table (-1: not stored)."""
        tok, pos, V = stream.tok, stream.pos, self.vocab_size
        rows = [tok.copy()]
        for n in range(2, self.order + 1):
            cur = np.full(len(tok), -1, dtype=np.int64)
            p = np.flatnonzero(pos >= n - 1)
            ctx = rows[-1][p - 1]
            p = p[ctx >= 0]
            key = rows[-1][p - 1] * V + tok[p]
            keys = self.keys[n - 1]
            j = np.searchsorted(keys, key)
            j = np.minimum(j, len(keys) - 1) if len(keys) else j
            hit = (keys[j] == key) if len(keys) else np.zeros(len(key), dtype=bool)
            cur[p[hit]] = j[hit]
            rows.append(cur)
        return rows

    def _logprobs(self, stream: _Stream) -> np.ndarray:
        """(P,) natural-log p of each token given its context; NaN at the <s> positions."""
        rows, pos, N = self._rows(stream), stream.pos, self.order
        P = len(pos)
        longest = np.minimum(N, pos + 1)  # longest n-gram that fits at each position
        matched = np.zeros(P, dtype=np.int64)
        lp_at = np.full((P, N + 1), np.nan)
        for n in range(1, N + 1):
            r = rows[n - 1]
            ok = r >= 0
            lp_at[ok, n] = self.lp[n - 1][r[ok]]
            matched = np.where(ok & (n <= longest), n, matched)
        # backoff of the j-gram context ending just before each position, 0 if not stored
        bo = np.zeros((P, N + 1))
        for j in range(1, N):
            ctx = np.full(P, -1, dtype=np.int64)
            ctx[1:] = rows[j - 1][:-1]
            use = (ctx >= 0) & (j < longest)
            bo[use, j] = self.bo[j - 1][ctx[use]]
        with np.errstate(invalid="ignore"):
            tail = np.cumsum(bo[:, ::-1], axis=1)[:, ::-1]  # tail[:, j] = sum_{j' >= j} bo
        idx = np.arange(P)
        out = lp_at[idx, matched] + tail[idx, matched]
        out[pos == 0] = np.nan
        return out

    def context_rows(self, context: Sequence[int]) -> list[int]:
        """Rows of the context's suffixes of length 1, 2, .. (stops at the first unstored one)."""
        V = self.vocab_size
        h = [self.vocab.bos, *[int(i) for i in context]][-(self.order - 1):] if self.order > 1 \
            else []
        rows = []
        for j in range(1, len(h) + 1):
            words = h[-j:]
            r = words[0]
            for n in range(2, j + 1):
                keys = self.keys[n - 1]
                key = r * V + words[n - 1]
                i = int(np.searchsorted(keys, key))
                if i >= len(keys) or keys[i] != key:
                    return rows
                r = i
            rows.append(r)
        return rows

    def _check_ids(self, ids: Sequence[int]) -> np.ndarray:
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            bad = arr[(arr < 0) | (arr >= self.vocab_size)][0]
            raise ValueError(f"token id {bad} is outside the vocabulary (0..{self.vocab_size - 1})")
        if arr.size and np.any(arr == self.vocab.bos):
            raise ValueError("the beginning-of-sentence id may not appear inside a text")
        return arr

    # -- the LanguageModel contract

    def next_logprobs(self, context: Sequence[int]) -> np.ndarray:
        """(V,) natural-log p(next | context); a context of unknown words backs off."""
        self._check_ids(context)
        V = self.vocab_size
        dist = self.lp[0].copy()
        for j, r in enumerate(self.context_rows(context), start=1):
            dist = dist + self.bo[j - 1][r]
            keys = self.keys[j]
            lo, hi = np.searchsorted(keys, [r * V, (r + 1) * V])
            dist[keys[lo:hi] - r * V] = self.lp[j][lo:hi]
        return dist

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """(T,) natural-log p(ids[t] | ids[:t]), batched; the start is `<s>`, no `</s>` added."""
        arr = self._check_ids(ids)
        stream = _stream([arr], self.vocab, add_eos=False)
        return self._logprobs(stream)[1:]

    # -- scoring text

    def score_sequences(self, sequences: Sequence[Sequence[int]], add_eos: bool = True,
                        chars: int = 0, nbytes: int = 0, final_eos: bool = True) -> Evaluation:
        """KenLM-style totals over `<s> ids .. </s>` sequences (batched, one pass).

        `final_eos=False` scores no `</s>` after the last sequence (KenLM's `query` on a last
        line without a newline).
        """
        seqs = [self._check_ids(s) for s in sequences]
        stream = _stream(seqs, self.vocab, add_eos=add_eos, final_eos=final_eos)
        lp = self._logprobs(stream)
        scored = stream.pos > 0
        lp10 = lp[scored] / LN10
        oov = ~self.known[stream.tok[scored]]
        per_sent = np.bincount(stream.sent[scored], weights=np.where(np.isneginf(lp10), 0, lp10),
                               minlength=len(seqs))
        zero_by_sent = np.bincount(stream.sent[scored], weights=np.isneginf(lp10),
                                   minlength=len(seqs))
        per_sent = np.where(zero_by_sent > 0, -np.inf, per_sent)
        return Evaluation(log10_prob=float(lp10.sum()), log10_prob_known=float(lp10[~oov].sum()),
                          tokens=int(scored.sum()), oov=int(oov.sum()),
                          zero_prob=int(np.isneginf(lp10).sum()), chars=chars, bytes=nbytes,
                          sentence_log10=per_sent)

    def score_lines(self, lines: Sequence[str], final_eos: bool = True) -> Evaluation:
        """Score whitespace-tokenised lines as KenLM does (each line + its newline as chars).

        `final_eos=False`: the last line had no newline (no `</s>` scored, no newline counted).
        """
        lines = list(lines)
        open_end = int(bool(lines) and not final_eos)
        text_chars = sum(len(s) + 1 for s in lines) - open_end
        text_bytes = sum(len(s.encode("utf-8")) + 1 for s in lines) - open_end
        return self.score_sequences(self.vocab.encode_sentences(lines), chars=text_chars,
                                    nbytes=text_bytes, final_eos=final_eos)

    def score_text(self, text: str) -> Evaluation:
        """Score a text through the tokenizer as one sequence (bits per char comparable)."""
        if self.tokenizer is None:  # KenLM's query: no </s> after a last line without newline
            lines = text.split("\n")
            return self.score_lines(lines[:-1] if lines[-1] == "" else lines,
                                    final_eos=lines[-1] == "")
        ids = self.tokenizer.encode(text)
        return self.score_sequences([ids], add_eos=False, chars=len(text),
                                    nbytes=len(text.encode("utf-8")))

    def unseen_fraction(self, sequences: Sequence[Sequence[int]]) -> dict[int, float]:
        """Per order n: share of held-out n-grams (incl. <s>, </s>) never seen in training."""
        stream = _stream([self._check_ids(s) for s in sequences], self.vocab, add_eos=True)
        rows, pos = self._rows(stream), stream.pos
        out = {}
        for n in range(1, self.order + 1):
            at = pos >= max(n - 1, 1)
            if n == 1:
                seen = self.known[stream.tok[at]]
            else:
                seen = rows[n - 1][at] >= 0
            out[n] = float(1.0 - seen.mean()) if at.any() else float("nan")
        return out

    def encode(self, text: str) -> list[int]:
        """Ids of `text` in this model's vocabulary (tokenizer, or whitespace words)."""
        if self.tokenizer is not None:
            return self.tokenizer.encode(text)
        get, unk = self.vocab.index.get, self.vocab.unk
        return [get(w, unk) for w in split_words(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids` (tokenizer decode, or words joined by spaces)."""
        if self.tokenizer is not None:
            return self.tokenizer.decode([int(i) for i in ids])
        return " ".join(self.vocab.words[int(i)] for i in ids)

    def top_next(self, context: Sequence[int], k: int = 10) -> list[tuple[int, float]]:
        """The k most likely next ids after `context` with their probabilities."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        lp = self.next_logprobs(context)
        k = min(k, self.vocab_size)
        top = np.argpartition(-lp, k - 1)[:k]
        top = top[np.lexsort((top, -lp[top]))]
        return [(int(i), float(np.exp(lp[i]))) for i in top if lp[i] > -np.inf]

    def generate(self, context: Sequence[int] = (), n: int = 50, *, seed: int = 0,
                 temperature: float = 1.0, top_k: int | None = None,
                 stop_at_eos: bool = True) -> list[int]:
        """Sample up to `n` ids after `context` (stops at `</s>` unless told otherwise)."""
        return generate_ids(self, list(context), n, seed=seed, temperature=temperature,
                            top_k=top_k, stop_id=self.vocab.eos if stop_at_eos else None)



# ----------------------------------------------------------------------------- the n trade-off


@dataclass
class Tradeoff:
    """A grid of models over one vocabulary, each scored on its training and held-out text."""

    models: dict[tuple[str, int], NGramLM]  # (smoothing, order) -> fitted model
    rows: list[dict]  # per model and split: perplexity, bits_per_char, zero_prob, oov, tokens
    unseen: dict[int, float]  # share of held-out n-grams unseen in training, per order
    counts: list[np.ndarray]  # raw n-gram counts per order (highest-order model)
    planned: int  # models asked for; more than len(models) when stopped early

    @property
    def complete(self) -> bool:
        return len(self.models) == self.planned

    def row(self, smoothing: str, order: int, split: str = "held-out") -> dict:
        """The numbers of one model on one split ('train' or 'held-out')."""
        return next(r for r in self.rows if (r["smoothing"], r["order"], r["split"])
                    == (smoothing, order, split))

    def best(self, smoothing: str = "kn") -> tuple[str, int] | None:
        """The (smoothing, order) with the lowest held-out bits per character (ties: lower n)."""
        keys = [sn for sn in self.models if sn[0] == smoothing]
        if not keys:
            return None
        return min(keys, key=lambda sn: (self.row(*sn)["bits_per_char"], sn[1]))

    def fallbacks(self) -> dict[int, list[int]]:
        """Kneser-Ney models whose discounts fell back to lmplz's defaults: order -> orders."""
        return {n: m.fallback_orders for (s, n), m in self.models.items()
                if s == "kn" and m.fallback_orders}


def tradeoff(train_ids: Sequence[int], held_ids: Sequence[int], vocab: Vocab,
             orders: Sequence[int], smoothings: Sequence[str], *, train_chars: int,
             held_chars: int, k: float = 1.0, alpha: float = 0.4,
             tokenizer: Tokenizer | None = None, progress: Progress | None = None,
             stop: threading.Event | None = None) -> Tradeoff:
    """Fit every (smoothing, order) on one training sequence and score train and held-out.

    Both texts are scored as one sequence without `</s>` (as `score_text` does), so bits per
    character use `train_chars` / `held_chars`. `progress(fraction, message)` is told before each
    step; when `stop` is set, the models finished so far are returned (`complete` is False).
    """
    configs = [NGramConfig(order=int(n), smoothing=sm, k=k, alpha=alpha)
               for sm in smoothings for n in orders]
    if not configs:
        raise ValueError("choose at least one order and one smoothing")
    if progress is not None:
        progress(0.0, "counting n-grams")
    tables = _count_checked([train_ids], vocab, max(c.order for c in configs))
    rows: list[dict] = []
    scored: dict[tuple[str, int], NGramLM] = {}
    for i, c in enumerate(configs):  # each model fitted and scored before the next
        if stop is not None and stop.is_set():
            break
        s, n = c.smoothing, c.order
        if progress is not None:
            progress(i / len(configs), f"fitting and scoring {s}, n = {n}")
        model = NGramLM._smooth(tables, vocab, c, tokenizer)
        for split, ids, chars in (("train", train_ids, train_chars),
                                  ("held-out", held_ids, held_chars)):
            ev = model.score_sequences([ids], add_eos=False, chars=chars)
            rows.append(dict(smoothing=s, order=n, split=split, perplexity=ev.perplexity,
                             bits_per_char=ev.bits_per_char, zero_prob=ev.zero_prob,
                             oov=ev.oov, tokens=ev.tokens))
        scored[(s, n)] = model
    unseen: dict[int, float] = {}
    counts: list[np.ndarray] = []
    if scored:
        top = scored[max(scored, key=lambda sn: sn[1])]
        unseen, counts = top.unseen_fraction([held_ids]), top.counts or []
    if progress is not None:
        progress(1.0, f"fitted {len(scored)} models")
    return Tradeoff(scored, rows, unseen, counts, len(configs))

"""The N-gram page's background job: train the tokenizer, tokenize, fit and score every order.

The page builds a `FitRequest` in the script thread (which checks the settings, so a bad k or an
empty choice is an error box at once) and submits `fit_job` (the job body: `ctx` first, the
request as its one plain argument) to the session's job registry; the worker reports progress
for the bar and its ETA and stops at the next model when the Stop button or the job time limit
sets `stop`, keeping the models finished so far.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmcore.data.tokenizers import Tokenizer, train_tokenizer
from lmcore.models.ngram import NGramConfig, Tradeoff, tradeoff
from lmcore.models.ngram_vocab import tokenizer_vocab


@dataclass(frozen=True)
class FitRequest:
    """One click of "Fit all orders": texts, tokenizer, orders n_min..n_max, smoothings."""

    corpus: str  # fingerprint of the corpus the texts come from
    train_text: str
    held_text: str
    kind: str  # tokenizer kind to train ('char', 'word', 'bpe') unless `tokenizer` is given
    orders: tuple[int, int]
    smoothings: tuple[str, ...]
    k: float = 1.0
    alpha: float = 0.4
    vocab_size: int | None = None
    tokenizer: Tokenizer | None = None  # one already trained (the session's or a cached one)

    def __post_init__(self) -> None:
        if not self.smoothings:
            raise ValueError("choose at least one smoothing")
        if self.orders[0] > self.orders[1]:
            raise ValueError(f"the order range {self.orders[0]}..{self.orders[1]} is empty")
        for s in self.smoothings:
            for n in self.order_list:
                NGramConfig(order=n, smoothing=s, k=self.k, alpha=self.alpha)
        if not self.train_text:
            raise ValueError("the training split is empty: load a longer corpus")

    @property
    def order_list(self) -> list[int]:
        return list(range(int(self.orders[0]), int(self.orders[1]) + 1))


@dataclass
class FitResult:
    """What the job hands back to the page."""

    request: FitRequest
    tokenizer: Tokenizer
    tradeoff: Tradeoff
    held_ids: list[int]


def run_fit(req: FitRequest, progress: Callable[[float, str], None],
            stop: threading.Event) -> FitResult | None:
    """Train the tokenizer if needed, tokenize both texts, fit and score the grid."""
    tok = req.tokenizer
    if tok is None:
        progress(0.0, f"training the {req.kind} tokenizer")
        tok = train_tokenizer(req.kind, req.train_text, vocab_size=req.vocab_size)
    if stop.is_set():
        return None
    progress(0.08, "tokenizing")
    train_ids, held_ids = tok.encode(req.train_text), tok.encode(req.held_text)
    result = tradeoff(train_ids, held_ids, tokenizer_vocab(tok), req.order_list, req.smoothings,
                      train_chars=len(req.train_text), held_chars=len(req.held_text), k=req.k,
                      alpha=req.alpha, tokenizer=tok, stop=stop,
                      progress=lambda f, m: progress(0.12 + 0.88 * f, m))
    if not result.models:
        return None
    return FitResult(req, tok, result, held_ids)


def fit_job(ctx: Any, *, request: FitRequest) -> FitResult | None:
    """The job body: `run_fit` reporting to the job's context."""
    return run_fit(request, ctx.progress, ctx.stop)

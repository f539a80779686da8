"""Partial processing: continue a long text from its last window only.

A model with a W-token window cannot read a book before writing its next sentence; it sees
only the last W tokens. `continue_text` makes that visible: it returns where in the text the
model's view starts, what it saw, and what it wrote after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lmcore.longtext.strategies import max_window
from lmcore.models.lm import LanguageModel, sample_next

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer


@dataclass(frozen=True)
class Continuation:
    """What the model saw of the text and what it generated after it."""

    context_start: int  # character offset in the text where the model's view begins
    context_text: str
    context_tokens: int
    total_tokens: int  # tokens in the whole text
    ids: list[int]
    text: str  # the generated continuation
    seconds: float

    @property
    def unseen_chars(self) -> int:
        """Characters of the text the model never saw."""
        return self.context_start


def continue_text(model: LanguageModel, tokenizer: Tokenizer, text: str, n_tokens: int, *,
                  window: int | None = None, seed: int = 0, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None,
                  stop: threading.Event | None = None,
                  on_token: Callable[[int, int], None] | None = None) -> Continuation:
    """Generate `n_tokens` after the last window of `text` (window: the model's, by default).

    `on_token(done, n_tokens)` is called after each generated token (progress for a job);
    setting `stop` ends the generation early with the tokens so far.
    """
    if n_tokens < 1:
        raise ValueError(f"generate at least 1 token, got {n_tokens}")
    if not text:
        raise ValueError("the text is empty: there is nothing to continue")
    limit = max_window(model)
    window = window or limit
    if window is None:
        raise ValueError("this model has no window of its own: give one")
    if limit is not None and window > limit:
        raise ValueError(f"a window of {window} tokens exceeds the model's {limit}")
    if n_tokens >= window:
        raise ValueError(f"the continuation ({n_tokens} tokens) must be shorter than the "
                         f"window ({window} tokens) so that some of the text stays in view")
    ids, offsets = tokenizer.encode_offsets(text)
    if not ids:
        raise ValueError("the tokenizer produced no tokens for this text")
    # keep the last window - n tokens so the whole continuation is written with the text in view
    keep = min(len(ids), window - n_tokens)
    start_tok = len(ids) - keep
    context = list(ids[start_tok:])
    char_start = offsets[start_tok][0] if start_tok > 0 else 0
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    out: list[int] = []
    for _ in range(n_tokens):
        if stop is not None and stop.is_set():
            break
        tok = sample_next(model.next_logprobs(context + out), rng, temperature=temperature,
                          top_k=top_k, top_p=top_p)
        eos = getattr(tokenizer, "eos_id", None)
        if eos is not None and tok == eos:
            break
        out.append(tok)
        if on_token is not None:
            on_token(len(out), n_tokens)
    return Continuation(context_start=char_start, context_text=text[char_start:],
                        context_tokens=keep, total_tokens=len(ids), ids=out,
                        text=tokenizer.decode(out, skip_special=True) if out else "",
                        seconds=time.perf_counter() - t0)

"""Frequency tables of characters and tokens, for the corpus page's plots."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from lmcore.data.tokenizers import Tokenizer


@dataclass(frozen=True)
class Frequency:
    """The most common items of a text, with counts and shares of the total."""

    items: list[str]
    counts: list[int]
    total: int
    distinct: int

    @property
    def shares(self) -> list[float]:
        return [c / self.total for c in self.counts] if self.total else []


def _top(counter: Counter, top: int, show) -> Frequency:
    common = counter.most_common(top)
    return Frequency(items=[show(k) for k, _ in common], counts=[c for _, c in common],
                     total=sum(counter.values()), distinct=len(counter))


def char_frequency(text: str, top: int = 40) -> Frequency:
    """The `top` most frequent characters; whitespace is shown visibly (␣, ⏎, ⇥)."""
    visible = {" ": "␣", "\n": "⏎", "\t": "⇥"}
    return _top(Counter(text), top, lambda ch: visible.get(ch, ch))


def token_frequency(tok: Tokenizer, text: str, top: int = 40) -> Frequency:
    """The `top` most frequent tokens of `text` under `tok`, shown as readable strings."""
    ids = tok.encode(text)
    return _top(Counter(ids), top, lambda i: tok.token_strings([i])[0])

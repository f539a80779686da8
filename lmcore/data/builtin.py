"""Built-in corpora that need no network: Python's reference docs and exact-entropy Markov text."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache, partial

from lmcore.data.corpus import Corpus, check_chars
from lmcore.data.markov import MarkovSource

PYDOC_NAME = "Python reference docs (pydoc_data.topics)"


@lru_cache(maxsize=1)
def pydoc_corpus() -> Corpus:
    """Python's bundled reference documentation, topics joined by newlines in key order."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics))
    return Corpus(name=PYDOC_NAME, text=text, source="builtin", encoding="utf-8")


def markov_name(order: int, alphabet: str, target_bits: float) -> str:
    """The display name of a Markov corpus, stable so pickers can find it again."""
    return (f"Markov source: order {order} over {alphabet!r}, "
            f"{target_bits:.3f} bits/char")


def markov_order(name: str) -> int | None:
    """The order of the Markov corpus named `name` (by `markov_name`), None for others."""
    m = re.match(r"Markov source: order (\d+) ", name)
    return int(m.group(1)) if m else None


def default_entropy(alphabet: str) -> float:
    """60% of the maximum entropy log2|A|: predictable enough to learn, far from trivial."""
    return 0.6 * math.log2(len(alphabet))


@lru_cache(maxsize=16)
def markov_source(order: int = 2, alphabet: str = "abcd", seed: int = 0,
                  target_bits: float | None = None) -> MarkovSource:
    """The source behind `markov_corpus` with the same arguments (its exact probabilities)."""
    if target_bits is None:
        target_bits = default_entropy(alphabet)
    return MarkovSource.with_entropy(order, alphabet, target_bits, seed=seed)


@lru_cache(maxsize=16)
def markov_corpus(order: int = 2, alphabet: str = "abcd", n_chars: int = 200_000,
                  seed: int = 0, target_bits: float | None = None) -> Corpus:
    """`n_chars` symbols from a seeded order-k Markov source whose entropy rate is exact."""
    if n_chars < 1:
        raise ValueError(f"n_chars must be at least 1, got {n_chars}")
    check_chars(n_chars)
    if target_bits is None:
        target_bits = default_entropy(alphabet)
    source = markov_source(order, alphabet, seed, target_bits)
    text = source.sample(n_chars, seed=seed)
    return Corpus(name=markov_name(order, alphabet, target_bits), text=text,
                  source="synthetic", encoding="utf-8", entropy_rate=source.entropy_rate())


_MARKOV_BUILTINS = (  # (order, alphabet, bits/char): two different entropy rates and orders;
    (1, "abc ", 1.5),  # the space is a symbol like any other, so word tokenizers see words
    (3, "abcdefg ", 2.0),
)


def builtin_corpora() -> dict[str, Callable[[], Corpus]]:
    """Name -> zero-argument factory for every built-in corpus (the first is the default)."""
    out: dict[str, Callable[[], Corpus]] = {PYDOC_NAME: pydoc_corpus}
    for order, alphabet, bits in _MARKOV_BUILTINS:
        out[markov_name(order, alphabet, bits)] = partial(
            markov_corpus, order=order, alphabet=alphabet, target_bits=bits)
    return out

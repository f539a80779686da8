"""Built-in corpora: Python's reference docs and the exact-entropy Markov sources."""

from __future__ import annotations

import math

import pytest

from lmcore.data.builtin import (
    PYDOC_NAME,
    builtin_corpora,
    markov_corpus,
    markov_source,
    pydoc_corpus,
)
from lmcore.data.corpus import Corpus


def test_pydoc_corpus_is_the_bundled_topics_in_key_order():
    from pydoc_data.topics import topics

    c = pydoc_corpus()
    assert c.name == PYDOC_NAME == "Python reference docs (pydoc_data.topics)"
    assert c.source == "builtin" and c.entropy_rate is None
    assert c.text == "\n".join(topics[k] for k in sorted(topics))
    assert c.chars > 100_000
    assert pydoc_corpus() is c  # cached: immutable and the same for everyone


def test_markov_corpus_exposes_its_exact_rate():
    c = markov_corpus(order=1, alphabet="abc", n_chars=5000, seed=3, target_bits=1.2)
    assert c.source == "synthetic"
    assert c.entropy_rate == pytest.approx(1.2, abs=1e-9)
    assert c.chars == 5000 and set(c.text) <= set("abc")
    assert c == markov_corpus(order=1, alphabet="abc", n_chars=5000, seed=3, target_bits=1.2)
    other = markov_corpus(order=1, alphabet="abc", n_chars=5000, seed=4, target_bits=1.2)
    assert other.text != c.text
    src = markov_source(order=1, alphabet="abc", seed=3, target_bits=1.2)
    assert src.entropy_rate() == c.entropy_rate
    assert src.sample(5000, seed=3) == c.text


def test_markov_corpus_default_entropy_is_below_the_maximum():
    c = markov_corpus(order=2, alphabet="abcd", n_chars=1000)
    assert 0 < c.entropy_rate < math.log2(4)


def test_markov_corpus_respects_the_char_limit(monkeypatch):
    from lmcore.data.corpus import CorpusLimitError

    monkeypatch.setenv("LMCORE_MAX_CHARS", "1000")
    with pytest.raises(CorpusLimitError, match="LMCORE_MAX_CHARS"):
        markov_corpus(order=1, alphabet="ab", n_chars=1001, target_bits=0.5)


def test_builtin_corpora_names_match_their_corpora():
    table = builtin_corpora()
    assert next(iter(table)) == PYDOC_NAME
    rates = set()
    for name, factory in table.items():
        c = factory()
        assert isinstance(c, Corpus)
        assert c.name == name  # pickers find the current corpus again by its name
        if c.source == "synthetic":
            rates.add(round(c.entropy_rate, 6))
    assert len(rates) >= 2  # two Markov sources of different entropy rates

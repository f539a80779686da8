"""Entropy, cross-entropy, KL and conditional entropy against exact values and brute force."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lmcore.info.entropy import (
    conditional_entropies,
    cross_entropy,
    distribution,
    entropy,
    kl_divergence,
    self_information,
    symbols,
    text_entropy,
    text_kl,
)


def test_entropy_of_known_distributions():
    assert entropy([1.0]) == 0.0
    assert entropy([0.5, 0.5]) == 1.0
    assert entropy([0.25] * 4) == 2.0
    assert entropy([0.5, 0.25, 0.125, 0.125]) == 1.75
    assert entropy([1.0, 0.0, 0.0]) == 0.0  # 0 log 0 = 0
    assert entropy(np.full(1000, 1e-3)) == pytest.approx(math.log2(1000), abs=1e-12)
    p = 0.1
    assert entropy([p, 1 - p]) == pytest.approx(-p * math.log2(p) - (1 - p) * math.log2(1 - p))


def test_self_information():
    assert self_information(0.5) == 1.0
    assert self_information(1.0) == 0.0
    assert math.isinf(self_information(0.0))
    np.testing.assert_array_equal(self_information(np.array([0.25, 0.125])), [2.0, 3.0])
    with pytest.raises(ValueError):
        self_information(1.5)


def test_cross_entropy_and_kl_exact():
    p, q = [0.5, 0.5], [0.25, 0.75]
    assert cross_entropy(p, q) == pytest.approx(0.5 * 2 + 0.5 * math.log2(4 / 3))
    assert kl_divergence(p, q) == pytest.approx(cross_entropy(p, q) - entropy(p))
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == 1.0
    # direction matters: q never produces outcome 2, p does -> D(p||q) infinite, D(q||p) not
    assert math.isinf(kl_divergence([0.5, 0.5], [1.0, 0.0]))
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == 1.0


@pytest.mark.parametrize("bad", [[0.5, 0.6], [-0.1, 1.1], [math.nan, 1.0], []])
def test_bad_distributions_rejected(bad):
    with pytest.raises(ValueError):
        entropy(bad)


def test_mismatched_alphabets_rejected():
    with pytest.raises(ValueError, match="different alphabets"):
        kl_divergence([0.5, 0.5], [1 / 3] * 3)


prob_vectors = arrays(np.float64, st.integers(1, 12),
                      elements=st.floats(0.0, 1.0, allow_nan=False)).filter(
    lambda a: a.sum() > 1e-6).map(lambda a: a / a.sum())


@settings(max_examples=200, deadline=None)
@given(prob_vectors)
def test_kl_p_p_is_zero(p):
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert cross_entropy(p, p) == pytest.approx(entropy(p), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10).flatmap(lambda n: st.tuples(
    arrays(np.float64, n, elements=st.floats(1e-3, 1.0)),
    arrays(np.float64, n, elements=st.floats(1e-3, 1.0)))))
def test_kl_nonnegative_gibbs(pq):
    p, q = (a / a.sum() for a in pq)
    assert kl_divergence(p, q) >= 0
    assert cross_entropy(p, q) >= entropy(p) - 1e-12  # Gibbs' inequality


def test_entropy_bounded_by_log_alphabet():
    rng = np.random.default_rng(0)
    for n in (2, 5, 50):
        p = rng.dirichlet(np.ones(n))
        assert 0 <= entropy(p) <= math.log2(n) + 1e-12


def test_text_granularities():
    text = "aab你"
    assert symbols(text, "char") == ["a", "a", "b", "你"]
    assert symbols(text, "byte") == list(text.encode("utf-8"))
    te = text_entropy(text, "char")
    assert te.symbols == 4 and te.distinct == 3 and te.chars == 4 and te.bytes == 6
    assert te.bits_per_symbol == pytest.approx(entropy([0.5, 0.25, 0.25]))
    tb = text_entropy(text, "byte")
    assert tb.symbols == 6 and tb.bits_per_char == pytest.approx(tb.bits_per_symbol * 6 / 4)
    with pytest.raises(ValueError, match="needs a tokenizer"):
        text_entropy(text, "token")
    with pytest.raises(ValueError, match="unknown unit"):
        text_entropy(text, "word")
    with pytest.raises(ValueError, match="empty"):
        text_entropy("", "char")


def test_token_granularity_uses_tokenizer():
    from lmcore.data.tokenizers import train_tokenizer

    tok = train_tokenizer("char", "abcabc")
    te = text_entropy("abca", "token", tok)
    assert te.symbols == 4 and te.bits_per_symbol == pytest.approx(1.5)


def test_distribution_order_and_lookup():
    d = distribution("banana")
    assert d.outcomes == ["a", "n", "b"]
    assert d.counts.tolist() == [3, 2, 1] and d.prob("n") == pytest.approx(1 / 3)
    assert d.prob("z") == 0.0


def test_text_kl_directions():
    r = text_kl("aaab", "abbb", alpha=0.0)
    p, q = [0.75, 0.25], [0.25, 0.75]
    assert r.kl_pq == pytest.approx(kl_divergence(p, q))
    assert r.kl_qp == pytest.approx(kl_divergence(q, p))
    assert r.cross_pq == pytest.approx(r.h_p + r.kl_pq)
    # a symbol only in P: infinite without smoothing, finite with it
    assert math.isinf(text_kl("abc", "ab", alpha=0.0).kl_pq)
    assert math.isfinite(text_kl("abc", "ab", alpha=0.5).kl_pq)
    assert text_kl("same text", "same text").kl_pq == pytest.approx(0.0, abs=1e-12)


def _brute_conditional(seq, k):
    joint = Counter(tuple(seq[t - k:t + 1]) for t in range(k, len(seq)))
    ctx = Counter(tuple(seq[t - k:t]) for t in range(k, len(seq)))
    n = len(seq) - k
    return -sum(c / n * math.log2(c / ctx[g[:-1]]) for g, c in joint.items())


@pytest.mark.parametrize("seq", ["abracadabra abracadabra", "mississippi" * 3,
                                 list(np.random.default_rng(1).integers(0, 4, 300))])
def test_conditional_entropy_equals_brute_force(seq):
    ce = conditional_entropies(seq, max_order=4)
    for k in range(5):
        assert ce.bits[k] == pytest.approx(_brute_conditional(list(seq), k), abs=1e-9)
    assert ce.bits[0] == pytest.approx(entropy(distribution(list(seq)).probs))
    assert ce.contexts[0] == 1


def test_conditional_entropy_of_markov_source_near_its_rate():
    from lmcore.data.builtin import markov_corpus

    c = markov_corpus(order=2, alphabet="abcd", n_chars=60_000, seed=3)
    ce = conditional_entropies(c.text, max_order=4)
    assert ce.bits[2] == pytest.approx(c.entropy_rate, abs=0.02)  # exact order: close
    assert ce.bits[3] <= ce.bits[2] + 1e-9  # plug-in never rises with k
    assert np.all(np.diff(ce.bits) <= 1e-9)
    assert ce.mean_count[4] < ce.mean_count[0]
    assert "biased low" in ce.note


def test_conditional_entropy_too_short():
    with pytest.raises(ValueError, match="too short"):
        conditional_entropies("ab", max_order=3)


def test_merge_spans_joins_byte_fallback_pieces():
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.info.entropy import merge_spans

    tok = train_tokenizer("char", "abc")
    text = "a🦊b"
    ids, offsets = tok.encode_offsets(text)
    assert len(ids) == 6  # the fox falls back to its four UTF-8 bytes
    spans, vals = merge_spans(offsets, [1.0] * len(ids))
    assert [text[s:e] for s, e in spans] == ["a", "🦊", "b"]
    assert vals == [1.0, 4.0, 1.0]

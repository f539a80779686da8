"""MarkovSource: the exact entropy rate against brute force and against long samples."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from lmcore.data.markov import MarkovSource


def _tiny() -> MarkovSource:
    """Order 2 over 'ab' with uneven rows, so the stationary law is far from uniform."""
    probs = np.array([[0.9, 0.1],   # after 'aa'
                      [0.3, 0.7],   # after 'ab'
                      [0.6, 0.4],   # after 'ba'
                      [0.2, 0.8]])  # after 'bb'
    return MarkovSource(2, "ab", probs)


def _block_entropy(src: MarkovSource, pi_start: np.ndarray, m: int) -> float:
    """H(X_1..X_m) in bits by enumerating every string of length m (m >= order)."""
    a, k = len(src.alphabet), src.order
    h = 0.0
    for seq in itertools.product(range(a), repeat=m):
        state = 0
        for d in seq[:k]:
            state = state * a + d
        p = pi_start[state]
        for sym in seq[k:]:
            p *= src.probs[state, sym]
            state = (state * a + sym) % (a**k)
        if p > 0:
            h -= p * math.log2(p)
    return h


def _power_stationary(src: MarkovSource) -> np.ndarray:
    """pi by plain power iteration on the dense state matrix (independent of the library)."""
    a, s = len(src.alphabet), src.n_states
    t = np.zeros((s, s))
    for state in range(s):
        for sym in range(a):
            t[state, (state * a + sym) % s] += src.probs[state, sym]
    pi = np.full(s, 1.0 / s)
    for _ in range(5000):
        pi = pi @ t
    return pi


def test_entropy_rate_equals_brute_force_block_entropy_difference():
    src = _tiny()
    pi = _power_stationary(src)
    assert np.allclose(src.stationary(), pi, atol=1e-12)
    # for a stationary order-k chain, H(X_1..X_m) - H(X_1..X_{m-1}) is the rate once m > k
    rate = _block_entropy(src, pi, 7) - _block_entropy(src, pi, 6)
    assert src.entropy_rate() == pytest.approx(rate, abs=1e-12)
    by_hand = sum(pi[s] * -sum(p * math.log2(p) for p in src.probs[s]) for s in range(4))
    assert src.entropy_rate() == pytest.approx(by_hand, abs=1e-12)


def test_order_zero_is_the_symbol_entropy():
    src = MarkovSource(0, "abc", np.array([[0.5, 0.25, 0.25]]))
    assert src.entropy_rate() == pytest.approx(1.5, abs=1e-15)


def test_power_iteration_and_dense_solve_agree_on_a_big_chain():
    src = MarkovSource.with_entropy(3, "abcdef", 1.7, seed=3)  # 216 states: power iteration
    assert src.n_states > 128
    dense = _power_stationary(src)
    assert np.allclose(src.stationary(), dense, atol=1e-12)


@pytest.mark.parametrize(("order", "alphabet", "target"), [
    (0, "ab", 0.5), (1, "abcd", 1.5), (2, "abcd", 0.7), (3, "abcdefgh", 2.0), (1, "ab", 0.05),
])
def test_with_entropy_hits_the_target(order, alphabet, target):
    src = MarkovSource.with_entropy(order, alphabet, target, seed=7)
    assert abs(src.entropy_rate() - target) < 1e-9
    assert np.allclose(src.probs.sum(axis=1), 1.0)


def test_empirical_conditional_entropy_approaches_the_rate():
    src = MarkovSource.with_entropy(2, "abcd", 1.2, seed=5)
    text = src.sample(300_000, seed=11)
    k = src.order
    ctx = Counter(text[i - k:i] for i in range(k, len(text)))
    joint = Counter(text[i - k:i + 1] for i in range(k, len(text)))
    n = len(text) - k
    h = -sum(c / n * math.log2(c / ctx[g[:k]]) for g, c in joint.items())
    assert h == pytest.approx(src.entropy_rate(), abs=0.01)
    freq = Counter(text)  # symbol frequencies match the stationary marginal
    marg = np.zeros(4)
    for s, p in enumerate(src.stationary()):
        marg[s % 4] += p
    for i, ch in enumerate("abcd"):
        assert freq[ch] / len(text) == pytest.approx(marg[i], abs=0.01)


def test_bits_per_char_is_the_true_surprisal():
    src = _tiny()
    text = "aabab"
    p = src.probs
    # positions 2..4 after states 'aa', 'ab', 'ba' (a=0, b=1; state = 2*older + newer)
    expected = -(math.log2(p[0, 1]) + math.log2(p[1, 0]) + math.log2(p[2, 1])) / 3
    assert src.bits_per_char(text) == pytest.approx(expected, abs=1e-12)
    long = MarkovSource.with_entropy(1, "abc", 1.1, seed=2)
    assert long.bits_per_char(long.sample(100_000, seed=3)) == pytest.approx(1.1, abs=0.01)
    with pytest.raises(ValueError, match="alphabet"):
        src.bits_per_char("abz")


def test_same_seed_same_text_other_seed_other_text():
    src = MarkovSource.with_entropy(1, "abcd", 1.5, seed=0)
    assert src.sample(5000, seed=1) == src.sample(5000, seed=1)
    assert src.sample(5000, seed=1) != src.sample(5000, seed=2)
    assert len(src.sample(0)) == 0 and len(src.sample(1)) == 1
    assert set(src.sample(2000)) <= set("abcd")
    a = MarkovSource.with_entropy(2, "abc", 1.0, seed=4)
    b = MarkovSource.with_entropy(2, "abc", 1.0, seed=4)
    assert np.array_equal(a.probs, b.probs)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="between 0 and log2"):
        MarkovSource.with_entropy(1, "ab", 1.0)
    with pytest.raises(ValueError, match="between 0 and log2"):
        MarkovSource.with_entropy(1, "ab", 0.0)
    with pytest.raises(ValueError, match="distinct"):
        MarkovSource(1, "aa", np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="shape"):
        MarkovSource(2, "ab", np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="probability"):
        MarkovSource(1, "ab", np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="states"):
        MarkovSource(12, "abcdefgh", np.full((1, 8), 0.125))
    src = MarkovSource(1, "ab", np.full((2, 2), 0.5))
    with pytest.raises(ValueError):
        src.probs[0, 0] = 1.0  # read-only: the exact rate belongs to these numbers
    reducible = MarkovSource(1, "ab", np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="stationary"):
        reducible.entropy_rate()

"""Huffman codes: the source coding bound, prefix-freeness, optimality and edge cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcore.info.huffman import canonical_codes, huffman_code, huffman_lengths


def _prefix_free(codes):
    return not any(a != b and b.startswith(a) for a, b in itertools.permutations(codes, 2))


def test_dyadic_distribution_meets_entropy_exactly():
    code = huffman_code("aaaabbc" + "d")  # p = 1/2, 1/4, 1/8, 1/8
    assert code.average_length == code.entropy == 1.75
    assert sorted(code.lengths.tolist()) == [1, 2, 3, 3]


def test_one_symbol_needs_one_bit():
    code = huffman_code("zzzz")
    assert code.codes == ["0"] and code.entropy == 0.0 and code.average_length == 1.0
    assert code.satisfies_bound()  # the edge case: L = H + 1 exactly
    assert code.decode(code.encode("zzzz")) == list("zzzz")


def test_known_example():
    lengths = huffman_lengths([45, 13, 12, 16, 9, 5])  # CLRS figure 16.5
    assert (np.array([45, 13, 12, 16, 9, 5]) * lengths).sum() == 224


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_bound_prefix_and_round_trip(text):
    code = huffman_code(text)
    if len(code.codes) > 1:
        assert code.entropy - 1e-9 <= code.average_length < code.entropy + 1
    else:
        assert code.average_length == code.entropy + 1 == 1
    assert code.satisfies_bound()
    assert _prefix_free(code.codes)
    if len(code.codes) > 1:
        assert code.kraft_sum == pytest.approx(1.0)  # Huffman codes are complete
    assert "".join(code.decode(code.encode(text))) == text
    assert len(code.encode(text)) == pytest.approx(code.average_length * len(text))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=2, max_size=6))
def test_optimal_against_brute_force(weights):
    w = np.array(weights, dtype=float)
    best = (w * huffman_lengths(w)).sum()
    # every length vector satisfying Kraft with lengths <= n-1 is a prefix code
    n = len(w)
    brute = min((w * np.array(ls)).sum()
                for ls in itertools.product(range(1, n), repeat=n)
                if sum(2.0 ** -x for x in ls) <= 1 + 1e-12)
    assert best == pytest.approx(brute)


def test_canonical_codes_and_errors():
    assert canonical_codes([1, 2, 3, 3]) == ["0", "10", "110", "111"]
    with pytest.raises(ValueError, match="Kraft"):
        canonical_codes([1, 1, 1])
    with pytest.raises(ValueError, match="positive"):
        huffman_lengths([1.0, 0.0])
    with pytest.raises(ValueError, match="at least one"):
        huffman_lengths([])
    code = huffman_code("ab")
    with pytest.raises(ValueError, match="no code word"):
        code.encode("c")
    with pytest.raises(ValueError, match="inside a code word"):
        huffman_code("aabbc").decode("1")


def test_rows_table():
    rows = huffman_code("hello").rows()
    assert rows[0]["symbol"] == "l" and rows[0]["count"] == 2
    assert {r["symbol"] for r in rows} == set("helo")
    assert all(r["length"] == len(r["code"]) for r in rows)

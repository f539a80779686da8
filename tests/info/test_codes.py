"""Codes: Hamming (7, 4) corrects every single-bit error, ML decoders agree with brute force,
erasure decoding fills exactly what the parity checks determine, and the rate sweep behaves
as Shannon's theorem says on a real text's bits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lmcore.info.channel import ERASED, Channel, text_to_bits
from lmcore.info.codes import (
    code_from_name,
    default_family,
    hamming74,
    random_linear_code,
    rate_sweep,
    repetition_code,
    simulate,
    solve_erasures,
)


def _all_messages(k: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=k)), dtype=np.int8)


def test_hamming_corrects_every_single_bit_error():
    code = hamming74()
    msgs = _all_messages(4)
    cw = code.encode(msgs)
    assert not code.syndrome(cw).any()
    for pos in range(7):
        y = cw.copy()
        y[:, pos] ^= 1
        assert (code.decode(y) == msgs).all(), pos
        assert (code._decode_syndrome(y) == msgs).all(), pos  # the syndrome table agrees


def test_hamming_distance_is_three():
    cw = hamming74().codewords()
    weights = cw[1:].sum(axis=1)
    assert weights.min() == 3


def test_syndrome_decoding_is_nearest_codeword():
    code = random_linear_code(12, 8, seed=1)  # 16 cosets: compare both exact ML decoders
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (500, 12)).astype(np.int8)
    cw = code.codewords()
    dist = lambda m: (code.encode(m) != y).sum(1)  # noqa: E731
    d_near = dist(code._decode_nearest(y))
    d_syn = dist(code._decode_syndrome(y))
    brute = (cw[None, :, :] != y[:, None, :]).sum(2).min(1)
    assert (d_near == brute).all() and (d_syn == brute).all()


def test_repetition_majority_vote():
    code = repetition_code(5)
    y = np.array([[1, 1, 0, 0, 1], [0, 0, 0, 1, 1], [ERASED, ERASED, ERASED, ERASED, 1]],
                 dtype=np.int8)
    assert code.decode(y).ravel().tolist() == [1, 0, 1]


def test_erasure_solver_fills_what_the_checks_determine():
    code = random_linear_code(24, 16, seed=2)  # 2^16 codewords: the GF(2) solver path
    rng = np.random.default_rng(1)
    msgs = rng.integers(0, 2, (400, 16)).astype(np.int8)
    cw = code.encode(msgs)
    y = cw.copy()
    # H's column 3 touches checks 0, 2, 4 (this seed); columns 17 and 22 of H = [P^T | I]
    # touch checks 1 and 6 alone: independent, so the fill is unique and must be the codeword
    assert code.H[:, 3].tolist() == [1, 0, 1, 0, 1, 0, 0, 0]
    y[:, [3, 17, 22]] = ERASED
    filled = solve_erasures(code.H, y)
    assert not code.syndrome(filled).any()
    known = y != ERASED
    assert (filled[known] == y[known]).all()
    assert (filled == cw).all()
    z = cw.copy()
    z[rng.random(z.shape) < 0.4] = ERASED  # heavy erasures: still codewords, known bits kept
    filled = solve_erasures(code.H, z)
    assert not code.syndrome(filled).any()
    assert (filled[z != ERASED] == z[z != ERASED]).all()


def test_no_noise_no_errors_and_text_bits_round_trip():
    bits = text_to_bits("noiseless channel, 无噪声")
    for code in (repetition_code(3), hamming74(), random_linear_code(16, 8)):
        run = simulate(code, Channel("bsc", 0.0), bits)
        assert run.bit_errors == 0 and (run.decoded == bits).all()


def test_rate_sweep_on_text_follows_shannon():
    bits = text_to_bits("It was the best of times, it was the worst of times. " * 30)
    ch = Channel("bsc", 0.05)  # capacity 0.714
    runs = {r.code: r for r in rate_sweep(bits, ch, default_family(), seed=0)}
    uncoded = runs["uncoded"].ber
    assert 0.035 < uncoded < 0.065
    # below capacity a longer random code at the same rate pushes the error down ...
    assert runs["random linear [24, 6]"].ber < runs["random linear [8, 2]"].ber
    assert runs["random linear [24, 6]"].ber < 0.2 * uncoded
    # ... above capacity no code of this family gets far below the uncoded error
    for n, k in ((16, 14), (24, 21)):
        assert runs[f"random linear [{n}, {k}]"].ber > 0.6 * uncoded
    assert runs["repetition (9, 1)"].ber < runs["repetition (3, 1)"].ber


@pytest.mark.parametrize("name", ["rep0", "rand3x5", "turbo", "rand16"])
def test_bad_code_names(name):
    with pytest.raises(ValueError, match="repetition|random linear|unknown code"):
        code_from_name(name)


def test_codes_too_large_to_decode_exactly_are_refused_up_front():
    with pytest.raises(ValueError, match="too large to decode exactly"):
        random_linear_code(32, 16)  # 2^16 codewords and 2^16 cosets
    code = random_linear_code(32, 20)  # 2^12 cosets: the syndrome table
    assert len(code.coset_leaders()) == 1 << 12

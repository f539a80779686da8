"""A Transformer trained on a source with a known entropy rate: its cross-entropy and real code
length fall toward the rate, the code stays within the coder's bound, the last code decodes."""

from __future__ import annotations

import threading

import pytest

from lmcore.data.builtin import markov_corpus
from lmcore.info.convergence import ConvergenceConfig, transformer_convergence

CFG = ConvergenceConfig(steps=60, measure_every=20, eval_chars=2000, code_chars=300)


# One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def source():
    c = markov_corpus(order=1, alphabet="abc ", n_chars=20_000, seed=2, target_bits=1.5)
    return c, c.split()


def test_curve_approaches_the_rate_and_code_tracks_cross_entropy(source):
    c, sp = source
    seen = []
    res = transformer_convergence(sp.train, sp.test, c.entropy_rate, CFG, on_point=seen.append)
    rate = c.entropy_rate
    assert [p.step for p in res.points] == [0, 20, 40, 60] and seen == res.points
    first, last = res.points[0], res.points[-1]
    assert abs(last.cross_entropy - rate) < abs(first.cross_entropy - rate)
    assert last.cross_entropy < first.cross_entropy - 2  # random init: ~log2(V) bits
    assert last.cross_entropy > rate - 0.1  # no model beats the source (up to sampling noise)
    for p in res.points:  # real payload within 0.1% + 8 bytes of the ideal code length
        payload = p.code_bits_per_char * res.chars_coded
        ideal = p.code_cross_entropy * res.chars_coded
        assert ideal - 64 <= payload <= ideal * 1.001 + 64
        assert p.entropy_rate == rate
    assert abs(last.code_bits_per_char - rate) < abs(first.code_bits_per_char - rate)
    assert res.status == "done" and res.round_trip and res.parameters > 0


def test_stop_keeps_the_points_so_far_and_bad_input_is_refused(source):
    c, sp = source
    ev = threading.Event()
    ev.set()
    res = transformer_convergence(sp.train, sp.test, c.entropy_rate, CFG, stop=ev)
    assert res.status == "stopped" and [p.step for p in res.points] == [0]
    with pytest.raises(ValueError, match="only"):
        transformer_convergence("abc" * 5, sp.test, None, CFG)
    with pytest.raises(ValueError, match="both"):
        transformer_convergence(sp.train, "", None, CFG)
    with pytest.raises(ValueError, match="code_chars"):
        ConvergenceConfig(eval_chars=100, code_chars=200)

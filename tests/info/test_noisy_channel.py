"""Noisy-channel decoding: a context-rich n-gram prior lowers the character error rate of a
seeded corruption, the unigram prior cannot, and exact Viterbi agrees with brute force."""

from __future__ import annotations

import itertools
import math

import pytest

from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.noisy_channel import (
    CharErrorModel,
    character_error_rate,
    decode,
    noisy_channel_table,
)
from lmcore.models.ngram import NGramLM
from lmcore.models.ngram_vocab import tokenizer_vocab

TRAIN = ("the quick brown fox jumps over the lazy dog. " * 40
         + "a lazy dog sleeps in the sun while the fox runs. " * 40)
HELD = "the lazy fox jumps over the quick dog while the dog sleeps in the sun. " * 3


def _models(orders):
    tok = train_tokenizer("char", TRAIN)
    grid = NGramLM.fit_grid([tok.encode(TRAIN)], tokenizer_vocab(tok), orders=orders,
                            smoothings=["kn"], tokenizer=tok)
    return {n: grid[("kn", n)] for n in orders}


def test_corruption_is_seeded_and_substitutes_at_the_rate():
    em = CharErrorModel("abcdefgh ", 0.2)
    text = "abc defgh " * 500
    a, b = em.corrupt(text, seed=4), em.corrupt(text, seed=4)
    assert a == b and len(a) == len(text)
    cer = character_error_rate(text, a)
    assert abs(cer - 0.2) < 4 * math.sqrt(0.2 * 0.8 / len(text))
    assert set(a) <= set("abcdefgh ")


def test_context_prior_lowers_cer_on_a_seeded_corruption():
    res = noisy_channel_table(_models([1, 4]), HELD, error_rate=0.08, seed=1, beam=8)
    by = {r.order: r for r in res.rows}
    assert by[1].cer_before > 0.04  # the corruption really happened
    assert by[4].cer_after < 0.5 * by[4].cer_before
    assert by[4].fixed > by[4].broken
    assert by[1].cer_after >= 0.9 * by[1].cer_before  # no context, (almost) no help


def test_viterbi_equals_brute_force_on_a_short_string():
    models = _models([2])
    model = models[2]
    em = CharErrorModel("abdeoy ", 0.1)
    observed = "ayod"
    got = decode(observed, model, em, beam=64)  # beam >= states: exact Viterbi
    tok = model.tokenizer
    keep, sub = em.log_keep(), em.log_substitute()
    best, best_s = None, -math.inf
    for cand in itertools.product(sorted(set(em.alphabet)), repeat=len(observed)):
        ids = tok.encode("".join(cand))
        s = float(model.token_logprobs(ids).sum())
        s += sum(keep if c == o else sub for c, o in zip(cand, observed, strict=True))
        if s > best_s:
            best, best_s = "".join(cand), s
    assert got == best


def test_bad_inputs():
    with pytest.raises(ValueError, match="error rate"):
        CharErrorModel("ab", 0.0)
    with pytest.raises(ValueError, match="held-out"):
        noisy_channel_table(_models([2]), "", 0.1)

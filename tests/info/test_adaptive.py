"""The adaptive (online PPM-style) model: a proper, stateless LM that learns from its input."""

from __future__ import annotations

import numpy as np
import pytest

from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.adaptive import AdaptiveConfig, AdaptiveLM
from lmcore.info.coding import compress, decompress, encode
from lmcore.models.ngram import NGramConfig, NGramLM

TRAIN = "the cat sat on the mat. the dog sat on the log.\n" * 4
TEXT = "a zebra named Zanzibar zigzags; Zanzibar zigzags again, Zanzibar! 🦓🦓 斑马斑马\n"


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer("char", TRAIN)


@pytest.fixture(scope="module")
def base(tok):
    return NGramLM.from_tokenizer(tok, TRAIN, NGramConfig(order=3))


def test_distributions_normalised_and_stateless(tok, base):
    m = AdaptiveLM(base, AdaptiveConfig(order=5, min_order=0))
    ids = tok.encode(TEXT)
    seq = [m.next_logprobs(ids[:t]) for t in range(len(ids))]
    for lp in seq:
        assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-9)
    # asking out of order (cache reset) gives the same floats as left to right
    fresh = AdaptiveLM(base, AdaptiveConfig(order=5, min_order=0))
    for t in (17, 3, 40, 40, 2):
        np.testing.assert_array_equal(fresh.next_logprobs(ids[:t]), seq[t])
    lp = m.token_logprobs(ids)
    np.testing.assert_allclose(lp, [s[x] for s, x in zip(seq, ids, strict=True)], rtol=1e-12)


def test_learns_from_repetition(tok, base):
    ids = tok.encode(TEXT * 3)
    static = -base.token_logprobs(ids)
    adaptive = -AdaptiveLM(base, AdaptiveConfig(order=8, min_order=0)).token_logprobs(ids)
    n = len(tok.encode(TEXT))
    # the first copy costs about the same; the repeats cost far less than under the base
    assert adaptive[n:].sum() < 0.3 * static[n:].sum()


def test_without_base_is_a_plain_ppm(tok):
    m = AdaptiveLM(None, AdaptiveConfig(order=3), vocab_size=tok.vocab_size)
    assert m.min_order == 0 and m.num_parameters() == 0
    first = m.next_logprobs([])
    np.testing.assert_allclose(first, np.log(1 / tok.vocab_size))
    ids = tok.encode("ab" * 10)
    assert m.token_logprobs(ids)[-1] > np.log(0.5)


def test_round_trip_and_fingerprint(tok, base):
    m = AdaptiveLM(base, AdaptiveConfig(order=6))
    assert m.min_order == base.order
    data = compress(m, TEXT * 2)
    assert decompress(AdaptiveLM(base, AdaptiveConfig(order=6)), data) == TEXT * 2
    enc = encode(m, TEXT * 2)
    assert enc.payload_bits <= enc.ideal_bits * 1.001 + 64
    other = AdaptiveLM(base, AdaptiveConfig(order=6, discounts=(0.7, 0.7, 0.7)))
    assert other.fingerprint() != m.fingerprint()
    with pytest.raises(ValueError, match="another model"):
        decompress(other, data)


@pytest.mark.parametrize("kw", [dict(order=-1), dict(discounts=(1.0, 1.0, 1.0)),
                                dict(discounts=(0.5, 2.0, 2.0)), dict(discounts=(0.5, 1.0)),
                                dict(concentration=-0.9, discounts=(0.5, 1.0, 1.5)),
                                dict(order=3, min_order=4)])
def test_bad_config(kw):
    with pytest.raises(ValueError):
        AdaptiveConfig(**kw)


def test_bad_ids(tok):
    m = AdaptiveLM(None, vocab_size=tok.vocab_size)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m.next_logprobs([tok.vocab_size])
    with pytest.raises(ValueError, match="vocab_size"):
        AdaptiveLM(None)


def test_growing_list_fast_path_matches_fresh_replay(tok, base):
    ids = tok.encode(TEXT * 2)
    m = AdaptiveLM(base, AdaptiveConfig(order=6, min_order=0))
    ctx: list[int] = []
    grown = []
    for x in ids:
        grown.append(m.next_logprobs(ctx))
        ctx.append(x)
    fresh = AdaptiveLM(base, AdaptiveConfig(order=6, min_order=0))
    for t in (0, 5, len(ids) - 1):
        np.testing.assert_array_equal(fresh.next_logprobs(list(ids[:t])), grown[t])
    # a different list with the same length is compared in full, not trusted
    other = list(ids[:30])
    other[3] = (other[3] + 1) % tok.vocab_size
    np.testing.assert_array_equal(m.next_logprobs(other),
                                  AdaptiveLM(base, AdaptiveConfig(order=6, min_order=0))
                                  .next_logprobs(other))

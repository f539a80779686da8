"""Channels: the simulated mutual information matches the capacity formula within its
confidence bounds; text survives the trip to bits and back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmcore.info.channel import (
    ERASED,
    Channel,
    binary_entropy,
    bits_to_text,
    estimate_capacity,
    received_chars,
    text_to_bits,
)


def test_binary_entropy_reference_values():
    assert binary_entropy(0.5) == 1.0
    assert binary_entropy(0.0) == binary_entropy(1.0) == 0.0
    assert binary_entropy(0.11) == pytest.approx(0.4999, abs=1e-3)  # the classic C = 1/2 point
    assert binary_entropy(0.2) == binary_entropy(0.8)


@pytest.mark.parametrize("kind, p", [("bsc", 0.01), ("bsc", 0.11), ("bsc", 0.3),
                                     ("bec", 0.1), ("bec", 0.45)])
def test_simulated_mutual_information_matches_capacity(kind, p):
    est = estimate_capacity(Channel(kind, p), bits=200_000, seed=3)
    # 4 standard errors plus the plug-in estimator's small positive bias (cells / 2N ln 2)
    bias = 6 / (2 * est.bits * math.log(2))
    assert abs(est.mutual_information - est.capacity) < 4 * est.stderr + bias
    assert est.observed_rate == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / est.bits))


def test_useless_channel_carries_nothing():
    est = estimate_capacity(Channel("bsc", 0.5), bits=50_000)
    assert est.capacity == 0.0
    assert est.mutual_information < 1e-3


def test_bec_marks_erasures_and_bsc_flips():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, 10_000).astype(np.int8)
    y = Channel("bec", 0.2).transmit(bits, rng)
    kept = y != ERASED
    assert (y[kept] == bits[kept]).all()  # an erasure channel never lies
    assert abs((~kept).mean() - 0.2) < 0.02
    z = Channel("bsc", 0.0).transmit(bits, rng)
    assert (z == bits).all()


def test_received_chars_stay_aligned_with_the_sent_text():
    text = "香农 said: 信息"
    bits = text_to_bits(text)
    bits[8 * 1 + 3] ^= 1  # a bit of the second byte of "香" (bytes 0-2)
    got = received_chars(bits, text)
    assert len(got) == len(text)
    assert got[0] != "香" and got[1:] == list(text[1:])  # only the hit character differs


def test_text_round_trip_through_bits():
    text = "Shannon 香农 ✓"
    bits = text_to_bits(text)
    assert bits.size == 8 * len(text.encode("utf-8"))
    assert bits_to_text(bits) == text


@pytest.mark.parametrize("kind, p", [("awgn", 0.1), ("bsc", 0.6), ("bec", -0.1)])
def test_bad_channels_are_refused(kind, p):
    with pytest.raises(ValueError, match="channel|error rate"):
        Channel(kind, p)

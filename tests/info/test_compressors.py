"""Classical compressors, alone and primed with the training text (equal terms)."""

from __future__ import annotations

import shutil

import pytest

import lmcore.info.compressors as compressors
from lmcore.info.compressors import measure, missing

TRAIN = "".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(400))
TEXT = "".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(400, 440))


def test_primed_size_is_the_extra_bytes_and_round_trips():
    by = {m.label: m for m in measure(TEXT, ("xz -9", "bz2 -9"), prime=TRAIN)}
    assert set(by) == {"xz -9", "bz2 -9", "xz -9 primed", "bz2 -9 primed"}
    alone, primed = by["xz -9"], by["xz -9 primed"]
    import lzma

    whole = len(lzma.compress((TRAIN + TEXT).encode(), preset=9))
    assert primed.size == whole - len(lzma.compress(TRAIN.encode(), preset=9))
    assert primed.primed and not alone.primed
    assert primed.round_trip and primed.sha_in == alone.sha_in
    assert primed.size < alone.size  # the training text is a dictionary for the test text


def test_a_primed_round_trip_checks_the_held_out_part(monkeypatch):
    real = compressors.codecs()
    comp, decomp = real["gzip -9"]
    broken = {"gzip -9": (comp, lambda b: decomp(b)[:-1] + b"?")}
    monkeypatch.setattr(compressors, "codecs", lambda: broken)
    m = measure(TEXT, prime=TRAIN)[1]
    assert m.primed and not m.round_trip


@pytest.mark.parametrize("name", ["zpaq -m5", "PPMd o10 (7z)"])
def test_external_compressors_round_trip_alone_and_primed(name):
    if name in missing():
        pytest.skip(missing()[name])
    alone, primed = measure(TEXT, (name,), prime=TRAIN)
    assert alone.round_trip and primed.round_trip
    assert 0 < primed.size < alone.size


def test_a_missing_program_is_named_not_fatal(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda exe: None if exe == "zpaq" else "/usr/bin/x")
    assert "zpaq" in missing()["zpaq -m5"] and "not installed" in missing()["zpaq -m5"]
    assert "zpaq -m5" not in compressors.codecs() and "xz -9" in compressors.codecs()
    with pytest.raises(ValueError, match="unknown compressor 'zpaq -m5'"):
        measure(TEXT, ("zpaq -m5",))

"""Fuzzing `decompress` with mutated .lmz files: every mutant gives the original text back or a
CodingError with a message, never another exception, never other text, and never runs long
(issue 13: a 1.7 KB file with a forged token count once ran for hours)."""

from __future__ import annotations

import random
import time

import pytest

from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.coding import CodingError, compress, decompress
from lmcore.models.ngram import NGramConfig, NGramLM

TRAIN = ("the cat sat on the mat. the dog sat on the log. 猫坐在垫子上 🐈\n" * 20)
TEXT = "the dog sat on the mat 🐈, the cat on the log. 猫坐在垫子上\n" * 3


def _mutants(data: bytes, rng: random.Random, n: int):
    for _ in range(n):
        b = bytearray(data)
        kind = rng.randrange(5)
        if kind == 0:  # flip bits anywhere
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind == 1:  # random bytes in the header (counts, pins, checksum)
            i = rng.randrange(4, min(len(b), 40))
            b[i] = rng.randrange(256)
        elif kind == 2:  # truncate
            b = b[:rng.randrange(len(b))]
        elif kind == 3:  # insert or delete a run of bytes
            i = rng.randrange(len(b))
            b = b[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + b[i:] \
                if rng.random() < 0.5 else b[:i] + b[i + rng.randint(1, 8):]
        else:  # a huge varint where the counts are
            i = rng.randrange(15, 24)
            b = b[:i] + bytes([0xFF] * rng.randint(1, 9) + [0x7F]) + b[i + 1:]
        yield bytes(b)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("adaptive", [False, True])
def test_mutated_lmz_files_never_crash_lie_or_hang(adaptive):
    from lmcore.info.adaptive import AdaptiveLM

    tok = train_tokenizer("char", TRAIN)
    model = NGramLM.from_tokenizer(tok, TRAIN, NGramConfig(order=3))
    if adaptive:
        model = AdaptiveLM(model)
    data = compress(model, TEXT)
    rng = random.Random(1234 + adaptive)
    worst, outcomes = 0.0, {"same": 0, "refused": 0}
    start = time.perf_counter()
    for bad in _mutants(data, rng, 150):
        t0 = time.perf_counter()
        try:
            out = decompress(model, bad)
        except CodingError as exc:
            assert str(exc) and "\n" not in str(exc)
            outcomes["refused"] += 1
        else:
            assert out == TEXT  # a mutation that changes nothing that matters
            outcomes["same"] += 1
        worst = max(worst, time.perf_counter() - t0)
    assert worst < 5, f"one mutant took {worst:.1f} s"
    assert time.perf_counter() - start < 90
    assert outcomes["refused"] > 100

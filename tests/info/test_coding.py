"""Arithmetic coding: exact round trips with every model kind, size near the cross-entropy,
clean failures on the wrong model or a damaged file."""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.coding import (
    FLOOR,
    CodingError,
    Header,
    Pins,
    compress,
    decompress,
    encode,
    read_header,
)
from lmcore.models.lm import LanguageModel

TRAIN = ("The quick brown fox jumps over the lazy dog. 敏捷的棕色狐狸 🦊 跳过了懒狗。\n"
         "def f(x):\n    return x * 2  # émoji ok\n") * 3


class BigramToy(LanguageModel):
    """A tiny test model: random log-probabilities chosen by the previous token (seeded)."""

    def __init__(self, tokenizer, seed: int = 0, sharp: float = 3.0):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.vocab_size
        rng = np.random.default_rng(seed)
        logits = sharp * rng.standard_normal((self.vocab_size + 1, self.vocab_size))
        logits[:, 0] = -np.inf  # [PAD] never: the coder's floor must still cope
        self.table = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)

    def next_logprobs(self, context):
        row = context[-1] if len(context) else self.vocab_size
        return self.table[row].copy()

    def fingerprint(self) -> str:
        return hashlib.sha256(self.table.tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def char_tok():
    return train_tokenizer("char", TRAIN)


@pytest.fixture(scope="module")
def toy(char_tok):
    return BigramToy(char_tok)


@pytest.fixture(scope="module")
def ngram(char_tok):
    from lmcore.models.ngram import NGramConfig, NGramLM

    return NGramLM.from_tokenizer(char_tok, TRAIN, NGramConfig(order=3, smoothing="kn"))


@pytest.fixture(scope="module")
def transformer(char_tok):
    import torch

    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=char_tok.vocab_size, context=16, n_layer=1, n_head=2,
                            n_embd=16)
    return TransformerLM(Transformer(cfg), char_tok)


@pytest.mark.parametrize("kind", ["toy", "ngram", "transformer"])
def test_round_trip_unicode(kind, request):
    model = request.getfixturevalue(kind)
    text = "Zoë says 你好, world! 🦊🚀 naïve café\n\ttabs\r\n" + "新字符 ∮ 𝔘𝔫𝔦"
    data = compress(model, text)
    assert decompress(model, data) == text
    assert compress(model, text) == data  # deterministic


def test_round_trip_empty_and_single(toy):
    for text in ["", "a", "🦊"]:
        assert decompress(toy, compress(toy, text)) == text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60))
def test_round_trip_random_text(toy, text):
    assert decompress(toy, compress(toy, text)) == text


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list("abc 你好🦊\n")), min_size=1, max_size=40))
def test_round_trip_ngram_random(ngram, text):
    assert decompress(ngram, compress(ngram, text)) == text


@pytest.mark.parametrize("kind", ["toy", "ngram", "transformer"])
def test_size_within_bound_of_cross_entropy(kind, request):
    model = request.getfixturevalue(kind)
    text = TRAIN * 2 + "unseen: ∑ 🚀"
    enc = encode(model, text)
    ids = model.tokenizer.encode(text)
    lp = model.token_logprobs(ids)  # a Transformer's batched windows: float32, agree to 1e-5
    rel = 1e-6 if kind == "transformer" else 1e-9
    clipped = -np.log2(np.maximum(np.exp(lp), FLOOR)).sum()
    assert enc.ideal_bits == pytest.approx(clipped, rel=rel)
    if kind != "toy":  # no zero probabilities: clipping changes nothing
        assert enc.model_bits == pytest.approx(-lp.sum() / math.log(2), rel=rel)
    # the payload stays within 0.1% + 8 bytes of the ideal code length
    assert enc.payload_bits <= enc.ideal_bits * 1.001 + 64
    assert enc.payload_bits >= enc.ideal_bits - 64  # no model beats its own cross-entropy
    assert enc.size == len(enc.data) == enc.header_bytes + enc.payload_bits // 8
    assert enc.header_bytes <= 32


def test_zero_probability_token_is_still_coded(char_tok):
    model = BigramToy(char_tok, seed=1)
    pad = char_tok.decode([0])
    assert pad == "[PAD]"  # a special: encoding text never produces it, so try a model gap
    model.table[:, char_tok.encode("q")[0]] = -np.inf
    model.table -= np.logaddexp.reduce(np.where(np.isinf(model.table), -np.inf, model.table),
                                       axis=1, keepdims=True)
    enc = encode(model, "quiz")
    assert math.isinf(enc.model_bits) and math.isfinite(enc.ideal_bits)
    assert decompress(model, enc.data) == "quiz"
    assert enc.payload_bits <= enc.ideal_bits * 1.001 + 64


def test_wrong_model_fails_cleanly(char_tok, toy, ngram):
    data = compress(toy, "hello world")
    with pytest.raises(CodingError, match="another model"):
        decompress(BigramToy(char_tok, seed=7), data)
    with pytest.raises(CodingError, match="another model"):
        decompress(ngram, data)


def test_damaged_files_fail_cleanly(toy):
    data = compress(toy, "The quick brown fox jumps over the lazy dog." * 4)
    with pytest.raises(CodingError, match="not an lmcore"):
        decompress(toy, b"PK\x03\x04" + data[4:])
    with pytest.raises(CodingError, match="truncated"):
        decompress(toy, data[:10])
    with pytest.raises(CodingError, match="payload"):
        decompress(toy, data[:-1])
    flipped = bytearray(data)
    flipped[-5] ^= 0x40
    with pytest.raises(CodingError, match="checksum"):
        decompress(toy, bytes(flipped))
    newer = bytearray(data)
    newer[3] = 9
    with pytest.raises(CodingError, match="version 9"):
        decompress(toy, bytes(newer))


def test_header_round_trip():
    h = Header(digest=b"12345678", tokens=300_000, chars=1, crc=0xDEADBEEF, version=1)
    data = h.to_bytes()
    assert read_header(data + b"\0\0\0\0") == h
    assert len(data) == 3 + 1 + 8 + 3 + 1 + 4
    h3 = Header(digest=b"12345678", tokens=300_000, chars=200_000,
                pins=Pins("tiled", "float32", 1, 0xBEEF), streams=64, sha=b"abcdefgh")
    data = h3.to_bytes()
    assert read_header(data + b"\0\0\0\0") == h3
    assert len(data) == 3 + 1 + 8 + 3 + 2 + 1 + 3 + 3 + 8
    h2 = Header(digest=b"12345678", tokens=3, chars=2, pins=Pins("", "", 1), version=2,
                sha=b"abcdefgh")  # version 2: no probe
    assert read_header(h2.to_bytes()) == h2 and len(h2.to_bytes()) == 3 + 1 + 8 + 3 + 3 + 8


def test_tokenizer_that_loses_text_is_refused():
    from lmcore.models.ngram import NGramConfig, NGramLM

    tok = train_tokenizer("word", "hello world hello there")
    model = NGramLM.from_tokenizer(tok, "hello world hello there", NGramConfig(order=2))
    with pytest.raises(CodingError, match="cannot reproduce"):
        compress(model, "goodbye world")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=25))
def test_round_trip_transformer_random(transformer, text):
    assert decompress(transformer, compress(transformer, text)) == text


_SUBPROCESS = """
import hashlib, torch
torch.set_num_threads({threads})
from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.coding import compress
from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM
tok = train_tokenizer("char", {train!r})
torch.manual_seed(0)
cfg = TransformerConfig(vocab_size=tok.vocab_size, context=64, n_layer=2, n_head=2, n_embd=64)
print(hashlib.sha256(compress(TransformerLM(Transformer(cfg), tok), {text!r})).hexdigest())
"""


def test_deterministic_across_processes_and_thread_counts():
    """The same file from processes on 1 and 2 torch threads (without coding on one thread
    this model's file differs between the two on the 2-core machine it was measured on)."""
    import subprocess
    import sys

    text = TRAIN[:200]
    out = {subprocess.run([sys.executable, "-c",
                           _SUBPROCESS.format(train=TRAIN, text=text, threads=n)],
                          capture_output=True, text=True, timeout=120, check=True).stdout.strip()
           for n in (1, 2)}
    assert len(out) == 1 and len(next(iter(out))) == 64


@pytest.mark.parametrize("smoothing", ["mle", "addk", "stupid", "kn"])
def test_every_ngram_smoothing_round_trips(char_tok, smoothing):
    from lmcore.models.ngram import NGramConfig, NGramLM

    model = NGramLM.from_tokenizer(char_tok, TRAIN, NGramConfig(order=4, smoothing=smoothing))
    text = "The lazy fox, unseen: zq 🦊 狐狸"  # MLE gives some of these probability 0
    enc = encode(model, text)
    assert decompress(model, enc.data) == text
    assert enc.payload_bits <= enc.ideal_bits * 1.001 + 64
    if smoothing == "mle":
        assert math.isinf(enc.model_bits)  # the floor, not the model, pays for the unseen


# ----------------------------------------------------------------------------- hostile headers


def _with_counts(data: bytes, tokens: int, chars: int) -> bytes:
    """`data` with its header's token and character counts replaced."""
    from lmcore.info.coding import Header as H

    h, pos = H.parse(data)
    forged = H(digest=h.digest, tokens=tokens, chars=chars, pins=h.pins, streams=h.streams,
               sha=h.sha)
    return forged.to_bytes() + data[pos:]


def test_a_token_count_of_2_to_the_40_is_refused_at_once(ngram):
    import time

    data = compress(ngram, "the lazy dog " * 10)
    t0 = time.perf_counter()
    with pytest.raises(CodingError, match="tokens for 130 characters"):
        decompress(ngram, _with_counts(data, 2 ** 40, 130))
    with pytest.raises(CodingError, match="over the limit LMCORE_MAX_CHARS"):
        decompress(ngram, _with_counts(data, 2 ** 40, 2 ** 40))
    assert time.perf_counter() - t0 < 1


def test_counts_within_the_limits_stop_where_the_payload_ends(ngram, monkeypatch):
    """A count raised by hand but plausible (4 tokens a char, under LMCORE_MAX_CHARS) stops
    once the decoded tokens carry more information than the payload can hold."""
    import time

    monkeypatch.setenv("LMCORE_MAX_CHARS", str(10 ** 7))
    data = compress(ngram, "the lazy dog " * 10)
    t0 = time.perf_counter()
    with pytest.raises(CodingError, match="more information than its"):
        decompress(ngram, _with_counts(data, 4 * 10 ** 6, 10 ** 6))
    assert time.perf_counter() - t0 < 20


def test_flipped_payload_bytes_are_a_coding_error(toy, ngram, transformer):
    for model in (toy, ngram, transformer):
        enc = encode(model, TRAIN[:150])
        data, refused = enc.data, 0
        spots = range(enc.header_bytes, len(data), max(1, (len(data) - enc.header_bytes) // 8))
        for i in spots:
            bad = bytearray(data)
            bad[i] ^= 0xFF
            try:  # the last word's low bytes may not matter: then the text comes back
                assert decompress(model, bytes(bad)) == TRAIN[:150]
            except CodingError as exc:
                assert re.search("damaged|checksum", str(exc))
                refused += 1
        assert refused >= len(spots) - 1


def test_header_names_another_attention_implementation(transformer):
    data = compress(transformer, "the lazy dog")
    h = read_header(data)
    assert (h.pins.attention, h.pins.dtype, h.pins.threads) == ("sdpa", "float32", 1)
    bad = bytearray(data)
    bad[12] = 2  # 'naive'
    with pytest.raises(CodingError, match="coded under attention 'naive'.*this model runs "
                                          "attention 'sdpa'"):
        decompress(transformer, bytes(bad))
    bad[12] = 99
    with pytest.raises(CodingError, match="does not know"):
        decompress(transformer, bytes(bad))
    bad = bytearray(data)
    bad[14] = 4  # coded with 4 threads: this lmcore pins 1 or 2 and says so
    with pytest.raises(CodingError, match="4 torch threads; this lmcore codes .and decodes. "
                                          "with 1 or 2 only"):
        decompress(transformer, bytes(bad))


@pytest.mark.parametrize("kind", ["ngram", "transformer"])
def test_a_machine_whose_floats_round_differently_is_refused(kind, request):
    """The header's float probe: where exp/log/matmul round differently, decoding refuses
    instead of failing its checksum after all the work (or worse)."""
    model = request.getfixturevalue(kind)
    data = compress(model, "the lazy dog")
    probe = read_header(data).pins.probe
    bad = bytearray(data)
    bad[15] ^= 0x01
    with pytest.raises(CodingError, match=f"round differently \\(probe {probe ^ 1:04x}, here "
                                          f"{probe:04x}\\)"):
        decompress(model, bytes(bad))


def test_encode_with_one_thread_decode_with_two(transformer):
    import torch

    before = torch.get_num_threads()
    text = TRAIN[:120]
    try:
        torch.set_num_threads(1)
        data = compress(transformer, text)
        torch.set_num_threads(2)
        assert decompress(transformer, data) == text
        assert torch.get_num_threads() == 2  # the coder's pin is undone afterwards
    finally:
        torch.set_num_threads(before)


def test_version_1_files_still_decode(toy):
    import zlib

    from lmcore.info.coding import Header as H

    text = "old file, still readable"
    data = compress(toy, text)
    h, pos = H.parse(data)
    v1 = H(digest=h.digest, tokens=h.tokens, chars=h.chars,
           crc=zlib.crc32(text.encode()), version=1).to_bytes() + data[pos:]
    assert decompress(toy, v1) == text


def test_version_3_transformer_files_still_decode(transformer, ngram):
    """Format 3 stepped a Transformer through forward, format 4 through decode_step; their
    floats differ, so a format 3 file must be decoded with forward's steps, as its version
    byte asks (a stream file and a mixing file, whose Transformer is one stream)."""
    import dataclasses

    from lmcore.info.coding import Header as H
    from lmcore.info.coding import float_probe
    from lmcore.info.mixing import mixing_coder
    from lmcore.info.streams import Lockstep, forward_steps

    text = (TRAIN * 6)[:700]
    run_new, run_old = Lockstep(transformer, 3), Lockstep(transformer, 3)
    differ = False
    for t in range(40):  # past a window refill (context 16)
        new = run_new.probs()
        with forward_steps():
            old = run_old.probs()
        np.testing.assert_allclose(new, old, rtol=1e-4, atol=1e-7)
        differ |= not np.array_equal(new, old)
        for run in (run_new, run_old):
            run.push(np.asarray([5 + t % 7] * 3))
    assert differ  # else format 4 would need no version of its own
    for make, streams in ((lambda: transformer, 3),
                          (lambda: mixing_coder([ngram], transformer=transformer), None)):
        with forward_steps():
            old = encode(make(), text, streams=streams).data
        h, pos = H.parse(old)  # as format 3 wrote it: its probe had no decode_step in it
        assert h.pins.probe == float_probe(True) != float_probe(True, steps=False)
        v3 = dataclasses.replace(h, version=3, pins=dataclasses.replace(
            h.pins, probe=float_probe(True, steps=False))).to_bytes() + old[pos:]
        assert decompress(make(), v3) == text
        with pytest.raises(CodingError, match="round differently"):  # format 4's probe: refused
            decompress(make(), old[:3] + bytes([3]) + old[4:])


# ----------------------------------------------------------------------------- fast paths


def test_transformer_streams_round_trip_and_match_the_plain_coder(transformer):
    """Lockstep streams with a KV cache: exact round trips with several streams, decoded on
    2 threads; with one stream the code length is the plain per-token coder's."""
    import torch

    text = (TRAIN * 12)[:1500]
    enc = encode(transformer, text)
    assert read_header(enc.data).streams == 2
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert decompress(transformer, enc.data) == text
    finally:
        torch.set_num_threads(before)
    short = TRAIN[:300]  # one stream: windows slide past the context of 16 like next_logprobs
    fast, plain = encode(transformer, short), encode(transformer, short, plain=True)
    assert read_header(fast.data).streams == 1 and read_header(plain.data).streams == 0
    assert fast.ideal_bits == pytest.approx(plain.ideal_bits, rel=1e-6)
    assert decompress(transformer, plain.data) == short == decompress(transformer, fast.data)
    # several streams change only the context at each chunk start
    one = encode(transformer, text, plain=True)
    assert enc.ideal_bits == pytest.approx(one.ideal_bits, rel=0.05)


def test_ngram_table_path_writes_the_plain_coders_bytes(ngram):
    text = TRAIN * 3
    fast = encode(ngram, text)
    plain = encode(ngram, text, plain=True)
    assert fast.data == plain.data
    assert fast.ideal_bits == pytest.approx(plain.ideal_bits, rel=1e-12)
    assert decompress(ngram, fast.data) == text == decompress(ngram, fast.data, plain=True)


def test_more_streams_are_recorded_and_decode(transformer):
    text = (TRAIN * 4)[:600]
    enc = encode(transformer, text, streams=7)
    assert read_header(enc.data).streams == 7
    assert decompress(transformer, enc.data) == text


def test_many_streams_code_on_two_threads_and_decode_from_one(transformer):
    """A lockstep run of 16+ streams is batched enough for two torch threads (1.6x faster on
    2 cores): the header says 2, and a process set to 1 thread re-pins 2 and decodes it; a
    run of few streams stays on one."""
    import torch

    from lmcore.info.streams import BATCHED_STREAMS, LOCKSTEP_THREADS, lockstep_threads

    assert lockstep_threads(BATCHED_STREAMS, cores=2) == LOCKSTEP_THREADS == 2
    assert lockstep_threads(BATCHED_STREAMS - 1, cores=2) == 1
    assert lockstep_threads(64, cores=1) == 1
    text = (TRAIN * 8)[:1200]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        enc = encode(transformer, text, streams=BATCHED_STREAMS)
        assert torch.get_num_threads() == 1  # the pin is undone afterwards
        want = lockstep_threads(BATCHED_STREAMS)
        assert read_header(enc.data).pins.threads == want
        assert read_header(encode(transformer, text, streams=4).data).pins.threads == 1
        torch.set_num_threads(2 if want == 1 else 1)
        assert decompress(transformer, enc.data) == text
    finally:
        torch.set_num_threads(before)

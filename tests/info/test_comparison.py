"""Side-by-side experiments: every coder verified by hashes; learning curves approach the rate."""

from __future__ import annotations

import threading

import pytest

import lmcore.info.compressors as compressors
from lmcore.data.builtin import markov_corpus
from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.comparison import Stopped, compression_table, learning_curve, sha256
from lmcore.info.compressors import measure
from lmcore.models.ngram import NGramConfig, NGramLM

TRAIN = "the cat sat on the mat. the dog sat on the log. " * 40
TEXT = "the dog sat on the mat. the cat sat on the log. 🐕\n" * 3


def test_compression_table_rows_and_hashes():
    tok = train_tokenizer("char", TRAIN)
    models = {f"{n}-gram": NGramLM.from_tokenizer(tok, TRAIN, NGramConfig(order=n))
              for n in (1, 3)}
    seen = []
    rows = compression_table(TEXT, models, progress=lambda f, m: seen.append(f))
    names = [r.coder for r in rows]
    assert names[:3] == ["gzip -9", "bz2 -9", "xz -9"] and names[-2:] == ["1-gram", "3-gram"]
    for r in rows:
        assert r.round_trip and r.sha_in == sha256(TEXT)
        assert r.bits_per_char == pytest.approx(8 * r.size / len(TEXT))
    by = {r.coder: r for r in rows}
    assert by["3-gram"].size < by["1-gram"].size  # context helps
    m = by["3-gram"]
    assert m.cross_entropy * len(TEXT) <= 8 * m.size  # header + coder never beat the model
    assert m.model_bytes > 0
    assert m.adjusted_bits_per_char == pytest.approx(8 * (m.size + m.model_bytes) / len(TEXT))
    assert seen and seen[-1] == 1.0
    assert m.as_dict()["round_trip"] is True


def test_a_corrupted_decompressor_is_caught_by_the_hashes(monkeypatch):
    real = compressors.codecs()
    comp, decomp = real["gzip -9"]
    broken = {**real, "gzip -9": (comp, lambda b: decomp(b)[:-1] + b"?")}  # last byte wrong
    monkeypatch.setattr(compressors, "codecs", lambda: broken)
    by = {m.name: m for m in measure(TEXT)}
    assert by["gzip -9"].sha_out != by["gzip -9"].sha_in and not by["gzip -9"].round_trip
    assert by["xz -9"].round_trip and by["xz -9"].sha_out == sha256(TEXT)
    rows = {r.coder: r for r in compression_table(TEXT, {})}
    assert not rows["gzip -9"].round_trip and rows["gzip -9"].sha_out != sha256(TEXT)
    assert rows["bz2 -9"].round_trip


def test_a_model_that_cannot_code_gets_an_error_row_and_the_others_stay():
    from lmcore.models.lm import LanguageModel

    class Broken(LanguageModel):
        vocab_size = 10
        tokenizer = None  # no tokenizer: encode refuses

        def next_logprobs(self, context):
            raise AssertionError("never asked")

        def fingerprint(self):
            return "broken"

    char = train_tokenizer("char", TRAIN)
    word = train_tokenizer("word", TRAIN)
    models = {"word 2-gram": NGramLM.from_tokenizer(word, TRAIN, NGramConfig(order=2)),
              "no tokenizer": Broken(),
              "char 3-gram": NGramLM.from_tokenizer(char, TRAIN, NGramConfig(order=3))}
    rows = {r.coder: r for r in compression_table(TEXT, models)}
    assert "cannot reproduce" in rows["word 2-gram"].error  # 🐕 is no word it has seen
    assert "no tokenizer" in rows["no tokenizer"].error
    for name in ("word 2-gram", "no tokenizer"):
        assert not rows[name].round_trip and rows[name].size == 0
        assert rows[name].as_dict()["round_trip"] is False
    assert rows["char 3-gram"].round_trip and rows["char 3-gram"].error is None
    assert rows["xz -9"].round_trip


def test_compression_table_stops_and_refuses_empty():
    tok = train_tokenizer("char", TRAIN)
    ev = threading.Event()
    ev.set()
    with pytest.raises(Stopped):
        compression_table(TEXT, {"m": NGramLM.from_tokenizer(tok, TRAIN)}, stop=ev)
    with pytest.raises(ValueError, match="no text"):
        compression_table("", {})


def test_learning_curve_approaches_entropy_rate():
    c = markov_corpus(order=1, alphabet="abc", n_chars=40_000, seed=2)
    sp = c.split()
    pts = learning_curve(sp.train, sp.test[:3000], sizes=[300, 30_000], orders=[1, 2],
                         entropy_rate=c.entropy_rate, code_chars=1500)
    got = {(p.order, p.train_chars): p for p in pts}
    big = got[(2, 30_000)]  # a bigram sees the one previous char an order-1 source uses
    assert big.cross_entropy == pytest.approx(c.entropy_rate, abs=0.05)
    assert big.cross_entropy >= c.entropy_rate - 0.03  # no model beats the source (on average)
    assert got[(2, 300)].cross_entropy > big.cross_entropy
    assert got[(1, 30_000)].cross_entropy > big.cross_entropy + 0.05  # unigram misses context
    assert big.code_bits_per_char == pytest.approx(big.cross_entropy, abs=0.1)
    for p in pts:  # on the very slice it codes, the coder lands on the model's cross-entropy
        assert p.code_bits_per_char == pytest.approx(p.code_cross_entropy, abs=0.02)
        assert p.code_bits_per_char >= p.code_cross_entropy - 0.005  # nor beats it (bar a bit)
    with pytest.raises(ValueError, match="at least one"):
        learning_curve(sp.train, sp.test, sizes=[], orders=[1])

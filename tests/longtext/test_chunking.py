"""Chunk offsets map back to the source exactly; sizes and overlaps are as asked."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmcore.data.tokenizers import train_tokenizer
from lmcore.longtext.chunking import locate_chunks, overlap_spans, split_text

ALPHABET = "abcde xyz。！？；，.!?;,\n语言模型文本符号"
TOK = train_tokenizer("char", ALPHABET * 3)
BPE = train_tokenizer("bpe", ("the cat sat on the mat. 猫坐在垫子上。" * 50), vocab_size=300)

texts = st.text(alphabet=ALPHABET, min_size=0, max_size=400)


def _check_layout(text, chunks):
    for c in chunks:
        assert text[c.start:c.end] == c.text, (c, text)
        assert c.end - c.start == len(c.text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start > a.start and b.end > a.end, (a, b)
        assert b.overlap_with_prev == max(0, a.end - b.start)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and i not in covered]
    assert not missing, f"characters in no chunk: {[text[i] for i in missing]}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.integers(2, 40), st.data())
def test_char_chunks_map_back_exactly(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    chunks = split_text(text, size, overlap, unit="chars")
    _check_layout(text, chunks)
    assert all(c.chars <= size for c in chunks)
    assert all(c.overlap_with_prev <= overlap for c in chunks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.integers(2, 40), st.data())
def test_token_chunks_map_back_exactly_with_chinese(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    chunks = split_text(text, size, overlap, tokenizer=TOK, unit="tokens")
    _check_layout(text, chunks)
    for c in chunks:  # the char tokenizer's lengths add up, so the limit holds exactly
        assert c.tokens == len(TOK.encode(c.text)) <= size


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab", min_size=1, max_size=300), st.integers(3, 30), st.data())
def test_overlap_is_exactly_as_asked_without_separators(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    chunks = split_text(text, size, overlap, unit="chars")
    _check_layout(text, chunks)
    assert all(c.chars == size for c in chunks[:-1])
    assert all(c.overlap_with_prev == overlap for c in chunks[1:])
    assert chunks[-1].end == len(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="the cat sat.猫坐在垫子上。 \n", max_size=300), st.integers(2, 30),
       st.data())
def test_bpe_chunks_map_back_exactly(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    _check_layout(text, split_text(text, size, overlap, tokenizer=BPE))


def test_bpe_token_lengths_and_repeated_text():
    text = "the cat sat on the mat. " * 40 + "猫坐在垫子上。" * 30
    chunks = split_text(text, 24, 6, tokenizer=BPE)
    _check_layout(text, chunks)
    assert len(chunks) > 5
    assert all(c.tokens == len(BPE.encode(c.text)) for c in chunks)
    assert max(c.tokens for c in chunks) <= 24 + 2  # merging may add a token at a join


def test_sentence_punctuation_stays_with_its_sentence():
    text = "语言模型把文本看作一串符号。它预测下一个字！真的吗？是的；" * 4 + \
        "A cat sat. It is fun! Really? Yes."
    chunks = split_text(text, 20, 0, unit="chars")
    _check_layout(text, chunks)
    assert chunks[0].text == "语言模型把文本看作一串符号。"
    assert all(c.text[-1] in "。！？；.!?" for c in chunks), [c.text for c in chunks]
    assert not any(c.text[0] in "。！？；" for c in chunks)


def test_short_sentences_merge_up_to_the_size():
    text = "猫坐着。狗跑了。鸟飞走。" * 3
    chunks = split_text(text, 8, 0, unit="chars")
    assert [c.text for c in chunks][:2] == ["猫坐着。狗跑了。", "鸟飞走。猫坐着。"]


def test_overlap_spans_and_locate_with_duplicates():
    text = "abc abc abc abc"
    chunks = locate_chunks(text, ["abc abc", "abc abc", "abc"])
    assert [(c.start, c.end) for c in chunks] == [(0, 7), (4, 11), (8, 11)][:2] + \
        [(c.start, c.end) for c in chunks][2:]
    assert chunks[1].overlap_with_prev == 3
    assert overlap_spans(chunks)[0] == (4, 7)


def test_bad_arguments_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="overlap"):
        split_text("some text", 10, 10, unit="chars")
    with pytest.raises(ValueError, match="tokenizer"):
        split_text("some text", 10, 2)
    with pytest.raises(ValueError, match="at least 1"):
        split_text("some text", 0, 0, unit="chars")
    with pytest.raises(ValueError, match="unit"):
        split_text("some text", 10, 0, unit="words")
    assert split_text("", 10, 2, unit="chars") == []

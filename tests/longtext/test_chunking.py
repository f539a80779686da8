"""Chunk offsets map back to the source exactly; sizes and overlaps are as asked."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_text_splitters import RecursiveCharacterTextSplitter

from lmcore.data.builtin import pydoc_corpus
from lmcore.data.tokenizers import train_tokenizer
from lmcore.longtext.chunking import (
    SEPARATORS,
    length_function,
    locate_chunks,
    overlap_spans,
    place_pieces,
    split_text,
)

ALPHABET = "abcde xyz。！？；，.!?;,\n语言模型文本符号"
TOK = train_tokenizer("char", ALPHABET * 3)
BPE = train_tokenizer("bpe", ("the cat sat on the mat. 猫坐在垫子上。" * 50), vocab_size=300)

texts = st.text(alphabet=ALPHABET, min_size=0, max_size=400)
# Runs of whitespace before a piece: the splitter's piece then starts with spaces that
# stripping removes, and the next piece begins where the stripped one does.
WHITESPACE_RUNS = [
    ('              | "(" [target_list]', 32, 8),
    ("              | x", 8, 2),
    ("a\n              | \"(\" [t] \")\"\n              | \"[\" [t] \"]\"", 12, 4),
    ("   \n\n\t  abc   def  \n\n\n      ghi", 6, 3),
    ("x" + " " * 40 + "yz" + " " * 40 + "w", 5, 4),
    (" " * 30, 4, 1),
    (',\n\n。\n\n。\n      xyz "("      xyz ', 15, 11),
    ("xyz\n\nab\n\n,\n            .   , 语言 ,\n", 4, 3),
    ("ab\nab\n       xyz xyz c\n               。\n   ", 15, 8),
    ('语言      。\n             |\n             ab "("\n\nc\n\nxyz xyz\n       ', 18, 15),
    ("abc。" + "\n" * 5 + "  " * 9 + "语言模型。", 7, 3),
]


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


def _with_whitespace_runs(test):
    for text, size, overlap in WHITESPACE_RUNS:
        test = example(text, size, overlap)(test)
    return test


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.integers(2, 40), st.integers(0, 39))
@_with_whitespace_runs
def test_char_chunks_map_back_exactly(text, size, overlap):
    overlap = min(overlap, size - 1)
    chunks = split_text(text, size, overlap, unit="chars")
    _check_layout(text, chunks)
    assert all(c.chars <= size for c in chunks)
    assert all(c.overlap_with_prev <= overlap for c in chunks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.integers(2, 40), st.integers(0, 39))
@_with_whitespace_runs
def test_token_chunks_map_back_exactly_with_chinese(text, size, overlap):
    overlap = min(overlap, size - 1)
    chunks = split_text(text, size, overlap, tokenizer=TOK, unit="tokens")
    _check_layout(text, chunks)
    for c in chunks:  # the char tokenizer's lengths add up, so the limit holds exactly
        assert c.tokens == len(TOK.encode(c.text)) <= size
    _check_token_overlaps(text, chunks, TOK, overlap)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab", min_size=1, max_size=300), st.integers(3, 30), st.data())
def test_overlap_is_exactly_as_asked_without_separators(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    chunks = split_text(text, size, overlap, unit="chars")
    _check_layout(text, chunks)
    assert all(c.chars == size for c in chunks[:-1])
    assert all(c.overlap_with_prev == overlap for c in chunks[1:])
    assert chunks[-1].end == len(text)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="语言ab", min_size=1, max_size=300), st.integers(3, 30), st.data())
def test_token_overlap_is_exactly_as_asked_without_separators(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    chunks = split_text(text, size, overlap, tokenizer=TOK, unit="tokens")
    _check_layout(text, chunks)
    assert all(c.tokens == size for c in chunks[:-1])
    shared = [len(TOK.encode(text[b.start:a.end])) for a, b in zip(chunks, chunks[1:],
                                                                     strict=False)]
    assert shared == [overlap] * (len(chunks) - 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="the cat sat.猫坐在垫子上。 \n", max_size=300), st.integers(2, 30),
       st.integers(0, 29))
@_with_whitespace_runs
def test_bpe_chunks_map_back_exactly(text, size, overlap):
    overlap = min(overlap, size - 1)
    chunks = split_text(text, size, overlap, tokenizer=BPE)
    _check_layout(text, chunks)
    _check_token_overlaps(text, chunks, BPE, overlap)


def _check_token_overlaps(text, chunks, tok, overlap):
    """The text two neighbours share is at most `overlap` tokens of `tok`."""
    for a, b in zip(chunks, chunks[1:], strict=False):
        if b.overlap_with_prev:
            assert len(tok.encode(text[b.start:a.end])) <= overlap, (a, b)


def test_whitespace_run_before_a_piece_is_placed_not_refused():
    # The splitter's pieces here, stripped, are '| "("' and '| "(" [target_list]': both start
    # at 14. The first adds nothing the second lacks, so one chunk is left.
    text = '              | "(" [target_list]'
    chunks = split_text(text, 32, 8, unit="chars")
    assert [(c.start, c.text) for c in chunks] == [(14, '| "(" [target_list]')]
    text = "a = 1\n" + text + "\n              | b"
    for size, overlap in [(16, 4), (32, 8), (12, 6)]:
        _check_layout(text, split_text(text, size, overlap, unit="chars"))


@functools.cache
def _corpus_and_tokenizers():
    corpus = pydoc_corpus().text
    return (corpus[:20_000], train_tokenizer("char", corpus[:20_000]),
            train_tokenizer("bpe", corpus[:60_000], vocab_size=500))


SWEEP = [(32, 8), (16, 4), (48, 8), (64, 32), (100, 50), (256, 32), (8, 0), (5, 4)]


@pytest.mark.parametrize("unit", ["chars", "char tokens", "bpe tokens"])
def test_builtin_corpus_sweep_maps_back_exactly(unit):
    text, char, bpe = _corpus_and_tokenizers()
    tok = {"chars": None, "char tokens": char, "bpe tokens": bpe}[unit]
    for size, overlap in SWEEP:
        chunks = split_text(text, size, overlap, tokenizer=tok,
                            unit="chars" if tok is None else "tokens")
        for c in chunks:
            assert text[c.start:c.start + len(c.text)] == c.text, (size, overlap, c)
        _check_layout(text, chunks)
        if tok is not None:
            _check_token_overlaps(text, chunks, tok, overlap)
        else:
            assert all(c.overlap_with_prev <= overlap for c in chunks)


@pytest.mark.parametrize("unit", ["chars", "char tokens", "bpe tokens"])
@pytest.mark.parametrize(("size", "overlap"), [(32, 8), (64, 32), (100, 50)])
def test_chunks_overlap_where_the_splitter_made_them(unit, size, overlap):
    """Where two of the splitter's pieces share text, the two chunks made of them share it.

    Only a token overlap longer than asked (tokens of a join can outnumber the pieces' sum)
    may be cut, and then only down to what fits.
    """
    text, char, bpe = _corpus_and_tokenizers()
    tok = {"chars": None, "char tokens": char, "bpe tokens": bpe}[unit]
    measure = length_function(tok, "chars" if tok is None else "tokens")
    splitter = RecursiveCharacterTextSplitter(
        separators=list(SEPARATORS), keep_separator="end", is_separator_regex=True,
        chunk_size=size, chunk_overlap=overlap, length_function=measure, strip_whitespace=False)
    raw = splitter.split_text(text)
    starts = place_pieces(text, raw, overlap=overlap, measure=measure)
    chunks = split_text(text, size, overlap, tokenizer=tok,
                        unit="chars" if tok is None else "tokens")
    by_end = {c.end: c for c in chunks}
    checked = 0
    for i in range(1, len(raw)):
        shared = text[starts[i]:starts[i - 1] + len(raw[i - 1])]
        a = by_end.get(starts[i - 1] + len(raw[i - 1].rstrip()))
        b = by_end.get(starts[i] + len(raw[i].rstrip()))
        if not shared.strip() or a is None or b is None or b.index != a.index + 1:
            continue  # nothing shared, or a piece that added nothing was dropped
        first = starts[i] + len(shared) - len(shared.lstrip())
        last = starts[i] + len(shared.rstrip())
        if measure(text[first:last]) <= overlap:
            assert b.start == first and a.end >= last, (a, b, shared)
        else:  # cut to fit, never beyond
            assert first < b.start <= a.end and measure(text[b.start:a.end]) <= overlap
        checked += 1
    assert checked >= 10
    assert sum(c.overlap_with_prev > 0 for c in chunks) >= checked // 2


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
    chunks = locate_chunks(text, ["abc abc ", "abc abc ", "abc abc"], overlap=4)
    assert [(c.start, c.end) for c in chunks] == [(0, 7), (4, 11), (8, 15)]
    assert [c.overlap_with_prev for c in chunks] == [0, 3, 3]
    assert overlap_spans(chunks) == [(4, 7), (8, 11)]
    # without an overlap to prefer, the search still finds the only tiling of the text
    assert [c.start for c in locate_chunks(text, ["abc abc ", "abc abc ", "abc abc"])] == \
        [0, 4, 8]


def test_repetitive_text_backtracks_to_a_tiling():
    text = "a" * 23
    pieces = ["a" * 10, "a" * 10, "a" * 5]  # the preferred overlap of 5 leaves a gap at 15
    assert place_pieces(text, pieces, overlap=5) == [0, 8, 18]  # the most overlap that ends
    chunks = locate_chunks(text, pieces)
    assert [(c.start, c.end) for c in chunks] == [(0, 10), (8, 18), (18, 23)]


def test_an_overlap_measuring_more_than_asked_is_cut_to_fit():
    # tokens of a join can outnumber the sum the splitter added up: this measure counts one
    # extra unit for any text longer than a character, so "cde" (3 chars) measures 4 > 3
    measure = lambda s: len(s) + (len(s) > 1)  # noqa: E731
    chunks = locate_chunks("abcdefgh", ["abcde", "cdefgh"], overlap=3, measure=measure)
    assert [(c.start, c.text, c.overlap_with_prev) for c in chunks] == \
        [(0, "abcde", 0), (3, "defgh", 2)]
    assert measure("abcdefgh"[3:5]) <= 3
    # the cut start skips whitespace, and never passes the previous chunk's end
    chunks = locate_chunks("ab cd ef", ["ab cd", "cd ef"], overlap=1, measure=measure)
    assert [(c.start, c.text) for c in chunks] == [(0, "ab cd"), (4, "d ef")]
    assert locate_chunks("ab cd ef", ["ab cd", "cd ef"], overlap=0, measure=measure)[1].start \
        == 6


def test_pieces_that_do_not_tile_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="do not tile"):
        locate_chunks("abc def", ["abc", "xyz"])
    with pytest.raises(ValueError, match="do not tile"):
        locate_chunks("abc def", ["def"])
    with pytest.raises(ValueError, match="do not tile"):
        locate_chunks("abc def ghi", ["abc ", "def "])  # stops short of the end


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

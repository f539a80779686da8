"""ARPA files: KenLM's own file scores like KenLM, ours equals it, and round trips are exact."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmcore.models.arpa import listed_unigrams, read_arpa, write_arpa
from lmcore.models.ngram import NGramLM
from lmcore.models.ngram_vocab import Vocab, escape_word, tokenizer_vocab, unescape_word

TOY = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog sat",
       "the cat saw the dog"]


def _load(kenlm_dir):
    expected = json.loads((kenlm_dir / "expected.json").read_text())
    train = (kenlm_dir / "train.txt").read_text().splitlines()
    test = (kenlm_dir / "test.txt").read_text().splitlines()
    return expected, train, test


def _entries(text: str) -> dict[tuple[int, str], tuple[float, float]]:
    out, order = {}, 0
    for line in text.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:line.index("-")])
        elif order and line and not line.startswith("\\"):
            f = line.split("\t")
            out[(order, f[1])] = (float(f[0]), float(f[2]) if len(f) > 2 else 0.0)
    return out


def test_kenlm_arpa_scores_test_set_like_kenlm(kenlm_dir):
    expected, _, test = _load(kenlm_dir)
    want = expected["orders"]["3"]
    model = read_arpa(kenlm_dir / "order3.arpa")
    ev = model.score_lines(test)
    assert model.order == 3 and model.ngram_counts() == [3472, 23608, 44185]
    assert ev.tokens == want["scored_tokens_including_eos"] and ev.oov == want["oov_tokens"]
    assert ev.perplexity == pytest.approx(want["ppl_including_oov"], rel=1e-4)
    assert ev.perplexity_no_oov == pytest.approx(want["ppl_excluding_oov"], rel=1e-4)
    np.testing.assert_allclose(ev.sentence_log10[:100], want["first_100_sentence_log10_scores"],
                               atol=5e-5)


def test_our_order3_arpa_equals_kenlms_entry_by_entry(kenlm_dir):
    _, train, _ = _load(kenlm_dir)
    buf = io.StringIO()
    write_arpa(NGramLM.from_sentences(train, order=3, smoothing="kn"), buf)
    ours, theirs = _entries(buf.getvalue()), _entries((kenlm_dir / "order3.arpa").read_text())
    assert ours.keys() == theirs.keys()
    diff = np.array([np.subtract(ours[k], theirs[k]) for k in theirs])
    assert np.abs(diff).max() < 1e-5  # KenLM computes in float32
    # unigrams come out in KenLM's order: <unk>, <s>, </s>, then first appearance
    def names(text):
        return [r.split("\t")[1] for r in text.split("\\1-grams:\n")[1].split("\n\n")[0]
                .splitlines()]

    assert names(buf.getvalue()) == names((kenlm_dir / "order3.arpa").read_text())


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_export_import_rescoring_gives_the_same_numbers(kenlm_dir, order):
    _, train, test = _load(kenlm_dir)
    model = NGramLM.from_sentences(train, order=order, smoothing="kn")
    before = model.score_lines(test)
    buf = io.StringIO()
    write_arpa(model, buf)
    again = read_arpa(io.StringIO(buf.getvalue()))
    after = again.score_lines(test)
    assert again.ngram_counts() == model.ngram_counts()
    assert (after.tokens, after.oov) == (before.tokens, before.oov)
    assert after.perplexity == pytest.approx(before.perplexity, rel=1e-7)
    assert after.perplexity_no_oov == pytest.approx(before.perplexity_no_oov, rel=1e-7)
    np.testing.assert_allclose(after.sentence_log10, before.sentence_log10, atol=2e-6)
    # with full precision the round trip is exact
    exact = io.StringIO()
    write_arpa(model, exact, digits=17)
    back = read_arpa(io.StringIO(exact.getvalue())).score_lines(test)
    np.testing.assert_allclose(back.sentence_log10, before.sentence_log10, rtol=0, atol=1e-12)


@pytest.mark.parametrize("smoothing", ["mle", "addk", "stupid"])
def test_round_trip_every_smoothing(smoothing):
    model = NGramLM.from_sentences(TOY, order=3, smoothing=smoothing)
    buf = io.StringIO()
    write_arpa(model, buf, digits=17)
    back = read_arpa(io.StringIO(buf.getvalue()))
    lines = ["the cat sat on the log", "a dog saw the cat", "the zebra sat"]
    a, b = model.score_lines(lines), back.score_lines(lines)
    np.testing.assert_allclose(b.sentence_log10, a.sentence_log10, atol=1e-12)
    assert (a.zero_prob, a.oov) == (b.zero_prob, b.oov)
    if smoothing == "mle":
        assert "-99" in buf.getvalue() and a.zero_prob > 0


def test_tokenizer_model_round_trips_through_escaped_words():
    from lmcore.data.tokenizers import train_tokenizer

    text = "a\tb c\nthe cat\\dog  <s> sat\r\n" * 10
    tok = train_tokenizer("char", text)
    model = NGramLM.from_tokenizer(tok, text, order=3)
    buf = io.StringIO()
    write_arpa(model, buf, digits=17)
    for line in buf.getvalue().splitlines():
        assert "\r" not in line and len(line.split("\t")) <= 3
    back = read_arpa(io.StringIO(buf.getvalue()), tokenizer=tok)
    ids = tok.encode("the cat sat\n b")
    np.testing.assert_allclose(back.token_logprobs(ids), model.token_logprobs(ids), atol=1e-12)


@given(st.text(max_size=12))
def test_escape_is_reversible_and_whitespace_free(token):
    word = escape_word(token)
    assert word and not any(ch.isspace() for ch in word)
    assert word not in ("<s>", "</s>", "<unk>")
    assert unescape_word(word) == token


@pytest.mark.parametrize("text, match", [
    ("hello\n", "no \\\\data\\\\ header"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\t<s>\n", "no \\\\end\\\\"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n\\end\\\n", "declares 2"),
    ("\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\n0\t<s>\t0\n-1\t</s>\n\n\\2-grams:\n"
     "-1\tx </s>\n\\end\\\n", "'x' is not in the vocabulary"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-x\t</s>\n\\end\\\n", "bad number"),
])
def test_bad_arpa_files_raise_clear_errors(text, match):
    with pytest.raises(ValueError, match=match):
        read_arpa(io.StringIO(text))


def test_missing_prefixes_are_added_as_backed_off_entries():
    model = NGramLM.from_sentences(TOY, order=3, smoothing="kn")
    buf = io.StringIO()
    write_arpa(model, buf, digits=17)
    text = buf.getvalue()
    # drop the bigram 'the cat' (prefix of trigrams 'the cat sat', 'the cat saw')
    lines = text.split("\n")
    drop = [i for i, line in enumerate(lines) if line.split("\t")[1:2] == ["the cat"]]
    assert len(drop) == 1
    del lines[drop[0]]
    pruned = "\n".join(lines).replace("ngram 2=", "ngram 2=X", 1)
    n2 = len(model.keys[1]) - 1
    pruned = pruned.replace("ngram 2=X" + str(n2 + 1), f"ngram 2={n2}")
    back = read_arpa(io.StringIO(pruned))
    assert back.hidden_prefixes == 1 and back.ngram_counts() == model.ngram_counts()
    v = model.vocab.index
    # the re-inserted 'the cat' scores by backing off: b(the) * p(cat)
    key = v["the"] * back.vocab_size + v["cat"]
    row = int(np.searchsorted(back.keys[1], key))
    assert back.keys[1][row] == key
    assert back.lp[1][row] == pytest.approx(back.bo[0][v["the"]] + back.lp[0][v["cat"]],
                                            abs=1e-12)
    assert back.bo[1][row] == 0.0  # its backoff went with the dropped line: weight 1
    # trigrams through it are still found, and untouched queries score as before
    ids = [v["the"], v["cat"], v["sat"]]
    np.testing.assert_allclose(back.token_logprobs(ids)[2], model.token_logprobs(ids)[2],
                               atol=1e-12)
    other = [v["a"], v["dog"], v["sat"]]
    np.testing.assert_allclose(back.token_logprobs(other), model.token_logprobs(other),
                               atol=1e-12)


def _round_trip(model, tokenizer=None):
    buf = io.StringIO()
    write_arpa(model, buf, digits=17)
    return buf.getvalue(), read_arpa(io.StringIO(buf.getvalue()), tokenizer=tokenizer)


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_tokenizer_model_keeps_its_oov_set_through_arpa(kind):
    from lmcore.data.tokenizers import train_tokenizer

    seen = "the cat sat on the mat. the dog sat on the log.\n" * 12
    unseen = "a zebra quickly jumped over xylophones!\n" * 3
    tok = train_tokenizer(kind, seen + unseen, vocab_size=300 if kind == "bpe" else None)
    train, test = tok.encode(seen), tok.encode(unseen + "the cat sat. 42")
    model = NGramLM.from_tokenizer(tok, seen, order=3, smoothing="kn")
    text, back = _round_trip(model, tok)
    train_ids = set(train)
    want_oov = sum(1 for i in test if i not in train_ids or i == tok.unk_id)
    before = model.score_sequences([test], add_eos=False)
    after = back.score_sequences([test], add_eos=False)
    assert before.oov == want_oov > 0 and after.oov == before.oov
    assert after.perplexity_no_oov == pytest.approx(before.perplexity_no_oov, rel=1e-12)
    assert after.perplexity == pytest.approx(before.perplexity, rel=1e-12)
    np.testing.assert_array_equal(back.known, model.known)
    # the file lists the seen ids plus <s>, </s>, <unk>, as KenLM does
    listed = len(train_ids | {tok.bos_id, tok.eos_id, tok.unk_id})
    assert f"ngram 1={listed}\n" in text and listed < tok.vocab_size
    for ctx in ([], tok.encode("the c"), tok.encode("zebra")):  # whole distributions agree
        np.testing.assert_allclose(back.next_logprobs(ctx), model.next_logprobs(ctx),
                                   rtol=0, atol=1e-12)
    assert back.lp[0][tok.pad_id] == -np.inf  # unused specials stay unpredictable


def test_unk_seen_in_training_lists_the_unseen_ids_and_keeps_scores():
    from lmcore.data.tokenizers import train_tokenizer

    tok = train_tokenizer("word", "the cat sat on the mat the dog ran")
    train = tok.encode("the cat sat on the mat") + [tok.unk_id] + tok.encode(" the cat")
    model = NGramLM.fit([train], tokenizer_vocab(tok), order=2, tokenizer=tok)
    # <unk> has its own discounted mass: unseen ids ('dog', 'ran') cannot be read from it
    assert listed_unigrams(model)[tok.token_to_id("dog")]
    _, back = _round_trip(model, tok)
    probe = tok.encode("the dog ran on the mat") + [tok.unk_id]
    np.testing.assert_allclose(back.token_logprobs(probe), model.token_logprobs(probe),
                               rtol=0, atol=1e-12)
    # documented: the listed unseen ids ('dog', 'ran') count as known after the round trip
    assert model.score_sequences([probe]).oov == 3 and back.score_sequences([probe]).oov == 1
    assert not back.known[tok.unk_id]


def test_words_with_vertical_tab_or_nbsp_read_back_as_one_word():
    lines = ["a\x0bb c\x0cd", "x\u00a0y a\x0bb", "z\x1cw c\x0cd"]
    model = NGramLM.from_sentences(lines, order=3, smoothing="kn")
    text, back = _round_trip(model)
    assert back.vocab.words == model.vocab.words
    np.testing.assert_allclose(back.score_lines(lines).sentence_log10,
                               model.score_lines(lines).sentence_log10, rtol=0, atol=1e-12)
    # CRLF line endings (an ARPA file written on Windows) still read
    crlf = read_arpa(io.StringIO(text.replace("\n", "\r\n")))
    assert crlf.vocab.words == model.vocab.words


def test_whitespace_model_over_a_larger_vocab_writes_only_seen_words():
    words = ["<unk>", "<s>", "</s>", "a", "b", "never"]
    vocab = Vocab(words=words, bos=1, eos=2, unk=0)
    model = NGramLM.fit([[3, 4], [4, 3, 3]], vocab, order=2, smoothing="kn")
    text, back = _round_trip(model)
    assert "never" not in text and "never" not in back.vocab.index
    lines = ["a b never", "never a"]
    a = NGramLM.score_sequences(model, [[3, 4, 5], [5, 3]])
    b = back.score_lines(lines)
    assert (a.oov, b.oov) == (2, 2)
    np.testing.assert_allclose(b.sentence_log10, a.sentence_log10, rtol=0, atol=1e-12)


_GOOD = ("\\data\\\nngram 1=3\nngram 2=2\n\n\\1-grams:\n-99\t<s>\t-0.3\n-0.5\t</s>\n"
         "-0.4\ta\t-0.2\n\n\\2-grams:\n-0.1\t<s> a\n\n-0.2\ta </s>\n\\end\\\n")


@pytest.mark.parametrize("old, new, line, match", [
    ("-0.5\t</s>", "0.5\t</s>", 7, "log10 probability 0.5 must be a number <= 0"),
    ("-0.5\t</s>", "nan\t</s>", 7, "log10 probability nan"),
    ("-0.5\t</s>", "inf\t</s>", 7, "log10 probability inf"),
    ("-0.4\ta\t-0.2", "-0.4\ta\tnan", 8, "backoff weight nan must be a finite number"),
    ("-0.4\ta\t-0.2", "-0.4\ta\tinf", 8, "backoff weight inf"),
    ("-0.2\ta </s>", "0.01\ta </s>", 13, "log10 probability 0.01"),  # after a blank line
    ("-0.2\ta </s>", "-0.2\ta", 13, "needs a log10 probability, 2 words"),
    ("-0.1\t<s> a", "-0.1\t<s> b", 11, "'b' is not in the vocabulary"),
])
def test_malformed_numbers_are_refused_with_the_line(old, new, line, match):
    """Positive log10 probabilities gave perplexity 0.53 and -0.92 bits/char; NaN and inf
    were accepted too (issue 13)."""
    assert read_arpa(io.StringIO(_GOOD)).order == 2  # the file is good before the change
    bad = _GOOD.replace(old, new)
    with pytest.raises(ValueError, match=f"^ARPA line {line}: .*{re.escape(match)}"):
        read_arpa(io.StringIO(bad))


def test_zero_probabilities_stay_allowed():
    """-inf and -99 (KenLM's <s>) are probability 0, and 0 is probability 1: not refused."""
    text = _GOOD.replace("-0.5\t</s>", "-inf\t</s>").replace("-0.1\t<s> a", "0\t<s> a")
    assert read_arpa(io.StringIO(text)).order == 2

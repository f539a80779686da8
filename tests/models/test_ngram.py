"""N-gram LMs: KenLM's numbers on the fixture, the LM contract, smoothing formulas, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcore.models.lm import score_ids
from lmcore.models.ngram import FALLBACK_DISCOUNTS, SMOOTHINGS, NGramConfig, NGramLM, kn_discounts
from lmcore.models.ngram_vocab import Vocab

TOY = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog sat",
    "the cat saw the dog",
    "on the mat the cat sat",
    "the dog and the cat",
]


def _kenlm(kenlm_dir):
    expected = json.loads((kenlm_dir / "expected.json").read_text())
    train = (kenlm_dir / "train.txt").read_text().splitlines()
    test = (kenlm_dir / "test.txt").read_text().splitlines()
    return expected, train, test


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_kn_matches_kenlm_perplexity_and_sentence_scores(kenlm_dir, order):
    expected, train, test = _kenlm(kenlm_dir)
    want = expected["orders"][str(order)]
    model = NGramLM.from_sentences(train, order=order, smoothing="kn")
    ev = model.score_lines(test)
    assert ev.tokens == want["scored_tokens_including_eos"]
    assert ev.oov == want["oov_tokens"]
    assert ev.perplexity == pytest.approx(want["ppl_including_oov"], rel=1e-4)
    assert ev.perplexity_no_oov == pytest.approx(want["ppl_excluding_oov"], rel=1e-4)
    assert model.lp[0][model.vocab.unk] / math.log(10) == pytest.approx(want["log10_p_unk"],
                                                                       abs=1e-5)
    np.testing.assert_allclose(ev.sentence_log10[:100], want["first_100_sentence_log10_scores"],
                               atol=5e-5)
    assert ev.zero_prob == 0


def test_kn_discounts_match_kenlm(kenlm_dir):
    expected, train, _ = _kenlm(kenlm_dir)
    model = NGramLM.from_sentences(train, order=3, smoothing="kn")
    for n, want in expected["discounts_order3_model"].items():
        np.testing.assert_allclose(model.discounts[int(n)], want, atol=1e-5)
    assert model.fallback_orders == []


def test_kn_ngram_counts_match_kenlm_arpa_header(kenlm_dir):
    _, train, _ = _kenlm(kenlm_dir)
    header = (kenlm_dir / "order3.arpa").read_text().split("\n\n")[0].splitlines()[1:]
    want = [int(line.split("=")[1]) for line in header]
    assert NGramLM.from_sentences(train, order=3).ngram_counts() == want


def test_counting_is_exact_on_a_toy_corpus():
    model = NGramLM.from_sentences(TOY, order=2, smoothing="mle")
    v = model.vocab.index
    # raw bigram count of "the cat" is 4, and 'the' is followed 10 times (MLE = 4/10)
    lp = model.next_logprobs([v["the"]])
    assert math.exp(lp[v["cat"]]) == pytest.approx(4 / 10)
    # first word: p(the | <s>) = 4/6 sentences
    assert math.exp(model.next_logprobs([])[v["the"]]) == pytest.approx(4 / 6)
    assert model.ngram_counts()[0] == model.vocab.size


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3])
def test_contract_normalised_and_batched_equals_sequential(smoothing, order):
    model = NGramLM.from_sentences(TOY, order=order, smoothing=smoothing)
    v = model.vocab.index
    ids = [v[w] for w in "the cat and the dog sat on a mat".split()] + [model.vocab.unk, v["the"]]
    seq = np.array([model.next_logprobs(ids[:t])[ids[t]] for t in range(len(ids))])
    np.testing.assert_allclose(model.token_logprobs(ids), seq, rtol=0, atol=1e-9)
    for t in range(len(ids)):
        lp = model.next_logprobs(ids[:t])
        finite = lp[np.isfinite(lp)]
        assert np.log(np.exp(finite).sum()) == pytest.approx(0.0, abs=1e-9)
        assert lp[model.vocab.bos] == -np.inf  # <s> is never predicted
        assert not np.isnan(lp).any()


def test_score_sequences_adds_eos_and_matches_token_logprobs():
    model = NGramLM.from_sentences(TOY, order=3, smoothing="kn")
    lines = ["the cat sat", "a dog saw the mat"]
    ev = model.score_lines(lines)
    total = 0.0
    for line in lines:
        ids = model.encode(line) + [model.vocab.eos]
        total += model.token_logprobs(ids).sum() / math.log(10)
    assert ev.log10_prob == pytest.approx(total, abs=1e-9)
    assert ev.tokens == 3 + 1 + 5 + 1
    assert ev.chars == len("the cat sat\na dog saw the mat\n")


def test_addk_is_laplace_formula():
    model = NGramLM.from_sentences(TOY, order=2, smoothing="addk", k=1.0)
    v = model.vocab.index
    F = model.vocab.size - 1  # every type but <s> can follow
    p = np.exp(model.next_logprobs([v["the"]]))
    assert p[v["cat"]] == pytest.approx((4 + 1) / (10 + F))
    assert p[v["sat"]] == pytest.approx(1 / (10 + F))  # unseen after 'the'
    half = NGramLM.from_sentences(TOY, order=2, smoothing="addk", k=0.5)
    assert math.exp(half.next_logprobs([v["the"]])[v["cat"]]) == pytest.approx(4.5 / (10 + F / 2))


def test_stupid_backoff_keeps_brants_ratios():
    alpha = 0.4
    model = NGramLM.from_sentences(TOY, order=2, smoothing="stupid", alpha=alpha)
    v = model.vocab.index
    lp = model.next_logprobs([v["the"]])
    # seen 'the cat' (4/10) vs unseen 'the sat' (alpha * unigram relative frequency)
    uni = np.exp(model.next_logprobs([model.vocab.eos]))  # '</s>' as context: unigram level
    ratio = math.exp(lp[v["cat"]] - lp[v["sat"]])
    assert ratio == pytest.approx((4 / 10) / (alpha * uni[v["sat"]]))


def test_mle_unseen_gives_inf_perplexity_with_zero_count():
    model = NGramLM.from_sentences(TOY, order=2, smoothing="mle")
    ev = model.score_lines(["the mat sat", "the cat sat"])
    assert ev.zero_prob == 1  # 'mat sat' was never seen; every bigram of line 2 was
    assert ev.perplexity == math.inf and ev.bits_per_char == math.inf
    assert ev.sentence_log10[0] == -np.inf and np.isfinite(ev.sentence_log10[1])
    assert not math.isnan(ev.perplexity_no_oov)
    s = score_ids(model, model.encode("the cat sat on the dog"), "the cat sat on the dog")
    assert s.zero_prob_tokens == 0 and math.isfinite(s.perplexity)
    oov = model.score_lines(["the zebra"])
    assert oov.oov == 1 and oov.zero_prob >= 1 and oov.perplexity == math.inf


def test_unknown_context_falls_back_to_shorter_context():
    model = NGramLM.from_sentences(TOY, order=3, smoothing="kn")
    unk = model.vocab.unk
    v = model.vocab.index
    np.testing.assert_allclose(model.next_logprobs([unk, unk]), model.lp[0])
    np.testing.assert_allclose(model.next_logprobs([unk, v["the"]]),
                               model.next_logprobs([model.vocab.eos, v["the"]]))
    mle = NGramLM.from_sentences(TOY, order=3, smoothing="mle")
    p = np.exp(mle.next_logprobs([unk, v["the"]]))  # backs off to p(. | the)
    assert p[v["cat"]] == pytest.approx(4 / 10)


def test_unseen_fraction_grows_with_order(kenlm_dir):
    _, train, test = _kenlm(kenlm_dir)
    model = NGramLM.from_sentences(train[:3000], order=4, smoothing="kn")
    frac = model.unseen_fraction(model.vocab.encode_sentences(test))
    values = [frac[n] for n in (1, 2, 3, 4)]
    assert all(0 <= x <= 1 for x in values)
    assert values == sorted(values) and values[3] > values[0]
    ev = model.score_lines(test)
    assert frac[1] == pytest.approx(ev.oov / ev.tokens)


def test_sampling_and_top_next():
    model = NGramLM.from_sentences(TOY, order=2, smoothing="kn")
    v = model.vocab.index
    top = model.top_next([v["the"]], k=3)
    assert top[0][0] == v["cat"] and [p for _, p in top] == sorted([p for _, p in top],
                                                                     reverse=True)
    assert sum(p for _, p in model.top_next([v["the"]], k=model.vocab.size)) == pytest.approx(1)
    a = model.generate([], 30, seed=3, temperature=1.0)
    assert a == model.generate([], 30, seed=3, temperature=1.0)
    assert model.vocab.eos not in a and model.vocab.bos not in a
    greedy = model.generate([v["the"]], 1, temperature=0.0)
    assert greedy == [v["cat"]]
    hot = {tuple(model.generate([], 5, seed=s, temperature=5.0)) for s in range(20)}
    cold = {tuple(model.generate([], 5, seed=s, temperature=0.2)) for s in range(20)}
    assert len(hot) > len(cold)


def test_discounts_fall_back_on_tiny_data():
    assert kn_discounts(np.array([1, 1, 1])) is None  # no n-grams with count 2
    model = NGramLM.from_sentences(["a b c d"], order=2, smoothing="kn")
    assert model.fallback_orders and model.discounts[2] == FALLBACK_DISCOUNTS
    lp = model.next_logprobs([model.vocab.index["a"]])
    assert np.exp(lp[np.isfinite(lp)]).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(order=0), "order must be from 1 to 6"),
    (dict(order=7), "order must be from 1 to 6"),
    (dict(order=2.5), "integer"),
    (dict(smoothing="addk", k=0), "k > 0"),
    (dict(smoothing="addk", k=-1), "k > 0"),
    (dict(smoothing="witten-bell"), "unknown smoothing"),
    (dict(smoothing="stupid", alpha=1.5), "alpha"),
])
def test_bad_settings_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NGramConfig(**kwargs)


def test_corpus_too_small_and_bad_ids():
    with pytest.raises(ValueError, match="too small for order 6"):
        NGramLM.from_sentences(["a b", "c"], order=6)
    with pytest.raises(ValueError, match="empty"):
        NGramLM.from_sentences([], order=2)
    with pytest.raises(ValueError, match="reserved"):
        NGramLM.from_sentences(["a <s> b"], order=2)
    model = NGramLM.from_sentences(TOY, order=2)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.next_logprobs([10_000])
    with pytest.raises(ValueError, match="beginning-of-sentence"):
        model.token_logprobs([model.vocab.bos])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        NGramLM.fit([[0, 99]], Vocab.empty(), order=2)


def test_fingerprint_tracks_the_parameters():
    a = NGramLM.from_sentences(TOY, order=2)
    assert a.fingerprint() == NGramLM.from_sentences(TOY, order=2).fingerprint()
    assert a.fingerprint() != NGramLM.from_sentences(TOY, order=3).fingerprint()
    assert a.fingerprint() != NGramLM.from_sentences(TOY[:-1], order=2).fingerprint()
    assert a.num_parameters() == sum(a.ngram_counts()) + a.ngram_counts()[0]


def test_tokenizer_backed_model_uses_tokenizer_ids():
    from lmcore.data.tokenizers import train_tokenizer

    text = "the cat sat on the mat.\nthe dog sat on the log.\n" * 20
    tok = train_tokenizer("char", text)
    model = NGramLM.from_tokenizer(tok, text, order=3, smoothing="kn")
    assert model.vocab_size == tok.vocab_size
    assert model.vocab.bos == tok.bos_id and model.vocab.eos == tok.eos_id
    lp = model.next_logprobs(tok.encode("the c"))
    for special in (tok.bos_id, tok.pad_id, tok.mask_id):
        assert lp[special] == -np.inf
    assert np.isfinite(lp[tok.unk_id])  # <unk> keeps the uniform floor
    assert np.exp(lp[np.isfinite(lp)]).sum() == pytest.approx(1.0)
    assert tok.id_to_token(int(np.argmax(lp))) == "a"
    ids = tok.encode("the cat sat on the log.")
    seq = np.array([model.next_logprobs(ids[:t])[ids[t]] for t in range(len(ids))])
    np.testing.assert_allclose(model.token_logprobs(ids), seq, atol=1e-9)
    ev = model.score_text("the cat sat on the log.")
    assert ev.chars == len("the cat sat on the log.") and ev.bits_per_char < 2.0
    s = score_ids(model, ids, "the cat sat on the log.")
    assert s.bits == pytest.approx(ev.bits)
    out = model.decode(model.generate(tok.encode("the "), 20, seed=0))
    assert isinstance(out, str) and len(out) > 0


def test_fit_grid_equals_separate_fits():
    vocab_models = NGramLM.from_sentences(TOY, order=1)
    seqs = vocab_models.vocab.encode_sentences(TOY)
    grid = NGramLM.fit_grid(seqs, vocab_models.vocab, [1, 2, 3], ["kn", "addk", "stupid"],
                            k=0.5)
    assert sorted(grid) == sorted((s, n) for s in ("kn", "addk", "stupid") for n in (1, 2, 3))
    for (s, n), model in grid.items():
        alone = NGramLM.fit(seqs, vocab_models.vocab, order=n, smoothing=s, k=0.5)
        assert model.fingerprint() == alone.fingerprint()
    with pytest.raises(ValueError, match="at least one"):
        NGramLM.fit_grid(seqs, vocab_models.vocab, [], ["kn"])


def test_laplace_agrees_with_nltk(kenlm_dir):
    nltk_lm = pytest.importorskip("nltk.lm")
    from nltk.lm.preprocessing import padded_everygram_pipeline

    _, train, test = _kenlm(kenlm_dir)
    train, test = train[:800], test[:20]
    for order in (2, 3):
        ours = NGramLM.from_sentences(train, order=order, smoothing="addk", k=1.0)
        data, vocab = padded_everygram_pipeline(order, [s.split() for s in train])
        lm = nltk_lm.Laplace(order)
        lm.fit(data, vocab)
        total, count = 0.0, 0
        for line in test:
            padded = ["<s>"] * (order - 1) + line.split() + ["</s>"]
            for i in range(order - 1, len(padded)):
                total += lm.logscore(padded[i], padded[i - order + 1:i])
                count += 1
        # NLTK's vocabulary also counts <s> as a type (one more in every denominator)
        assert ours.score_lines(test).perplexity == pytest.approx(2 ** (-total / count),
                                                                  rel=2e-3)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(3, 9), min_size=0, max_size=12), min_size=1, max_size=8),
       st.lists(st.integers(0, 9), min_size=1, max_size=15),
       st.sampled_from(SMOOTHINGS), st.integers(1, 4))
def test_property_batched_scores_equal_the_normalised_sequential_path(train, probe, smoothing,
                                                                      order):
    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(3, 10)]
    vocab = Vocab(words=words, bos=1, eos=2, unk=0)
    if sum(len(s) for s in train) + 2 < order:
        return
    try:
        model = NGramLM.fit(train, vocab, order=order, smoothing=smoothing)
    except ValueError as exc:
        assert "too small" in str(exc)
        return
    probe = [i for i in probe if i != vocab.bos]
    batched = model.token_logprobs(probe)
    for t in range(len(probe)):
        lp = model.next_logprobs(probe[:t])
        assert not np.isnan(lp).any() and lp[vocab.bos] == -np.inf
        assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-9)
        assert batched[t] == pytest.approx(lp[probe[t]], abs=1e-9) or \
            batched[t] == lp[probe[t]] == -np.inf


def test_words_split_exactly_where_lmplz_splits():
    from lmcore.models.ngram_vocab import split_words

    # lmplz's delimiters are "\0\t\n\r " (corpus_count.cc); \v and \f belong to the word
    assert split_words(" a\tb\x0bc\x0cd\re  f\x00g ") == ["a", "b\x0bc\x0cd", "e", "f", "g"]
    assert split_words("caf\u00e9\u00a0au\u3000lait\x1c") == ["caf\u00e9\u00a0au\u3000lait\x1c"]
    model = NGramLM.from_sentences(["x\u00a0y z\x0bw"], order=2)
    assert "x\u00a0y" in model.vocab.index and "z\x0bw" in model.vocab.index
    assert model.vocab.encode_sentences(["z\x0bw\rz"])[0].tolist() == [
        model.vocab.index["z\x0bw"], model.vocab.unk]


@pytest.mark.parametrize("word", ["<s>", "</s>", "<unk>"])
def test_reserved_words_in_training_text_are_refused(word):
    with pytest.raises(ValueError, match=f"contains the word {word}: .* reserved"):
        NGramLM.from_sentences(["a b", f"c {word} d"], order=2)


def test_last_line_without_newline_gets_no_eos_like_kenlm():
    closed = NGramLM.from_sentences(["a b", "b c"], order=2, smoothing="mle")
    open_end = NGramLM.from_sentences(["a b", "b c"], order=2, smoothing="mle", final_eos=False)
    v = open_end.vocab.index
    assert open_end.counts[0][v["</s>"]] == 1 and closed.counts[0][v["</s>"]] == 2
    assert math.exp(open_end.next_logprobs([v["b"]])[v["c"]]) == pytest.approx(1 / 2)
    assert math.exp(closed.next_logprobs([v["b"]])[v["c"]]) == pytest.approx(1 / 2)
    assert closed.ngram_counts()[1] == 6 and open_end.ngram_counts()[1] == 5  # no 'c </s>'
    a = closed.score_lines(["a b", "b c"])
    b = closed.score_lines(["a b", "b c"], final_eos=False)
    assert (a.tokens, b.tokens) == (6, 5) and (a.chars, b.chars) == (8, 7)
    assert closed.score_text("a b\nb c").tokens == 5 and closed.score_text("a b\nb c\n").tokens == 6


def test_unk_seen_in_training_still_counts_as_oov():
    vocab = Vocab(words=["<unk>", "<s>", "</s>", "a", "b"], bos=1, eos=2, unk=0)
    model = NGramLM.fit([[3, 0, 4], [3, 4]], vocab, order=2)
    assert not model.known[vocab.unk] and model.known[3] and model.known[4]
    assert model.score_sequences([[3, 0, 4]]).oov == 1


def test_tradeoff_rows_equal_separate_fits_and_best_is_lowest_held_out_bpc():
    from lmcore.models.ngram import tradeoff

    vocab_model = NGramLM.from_sentences(TOY, order=1)
    vocab = vocab_model.vocab
    train = [i for s in vocab.encode_sentences(TOY[:4]) for i in s]
    held = [i for s in vocab.encode_sentences(TOY[4:]) for i in s]
    fit = tradeoff(train, held, vocab, [1, 2, 3], ["kn", "mle"], train_chars=100,
                   held_chars=40)
    assert fit.complete and fit.planned == 6 and len(fit.rows) == 12
    for (s, n), model in fit.models.items():
        alone = NGramLM.fit([train], vocab, order=n, smoothing=s)
        assert model.fingerprint() == alone.fingerprint()
        ev = alone.score_sequences([held], add_eos=False, chars=40)
        assert fit.row(s, n)["perplexity"] == ev.perplexity
        assert fit.row(s, n)["bits_per_char"] == ev.bits_per_char
        assert fit.row(s, n, "train")["tokens"] == len(train)
    kn = [fit.row("kn", n)["bits_per_char"] for n in (1, 2, 3)]
    assert fit.best("kn") == ("kn", 1 + kn.index(min(kn))) and fit.best("addk") is None
    assert fit.unseen == fit.models[("kn", 3)].unseen_fraction([held])
    assert fit.fallbacks() == {n: m.fallback_orders for (s, n), m in fit.models.items()
                               if s == "kn" and m.fallback_orders}
    assert fit.fallbacks()  # six toy sentences cannot estimate every discount

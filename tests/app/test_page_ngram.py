"""AppTest of the N-gram models page: the fit runs as a background job to completion, its
table equals direct library calls, MLE's inf, discount fallback, stop, and bad input."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from apptest import assert_no_exception, error_texts, join_jobs, open_page

from lmcore.app.ngram_job import FitRequest, run_fit
from lmcore.app.state import Lab
from lmcore.data.corpus import from_text
from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.ngram import NGramLM

PAGE = "pages/2_N-gram_models.py"
TEXT = ("the cat sat on the mat. the dog sat on the log. a cat saw a dog.\n"
        "on the mat the cat sat and the dog ran to the log.\n") * 40 + \
       "the bird flew over the mat and the zebra sang.\n" * 6


def _wait_for_jobs(timeout: float = 90) -> None:
    join_jobs(timeout)


def _open(text: str = TEXT):
    at = open_page(PAGE)
    at.session_state["lmcore.lab"] = Lab(corpus=from_text(text, "toy"))
    at.run()
    assert_no_exception(at)
    return at


def _fit(at):
    at.button(key="ngram.fit").click().run()
    assert_no_exception(at)
    _wait_for_jobs()
    at.run()
    assert_no_exception(at)
    return at


def _frame(at, column):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_page_renders_with_builtin_corpus():
    at = open_page(PAGE)
    assert "N-gram" in at.title[0].value
    assert any("Fit all orders" in i.value for i in at.info)


def test_fit_job_draws_tradeoff_counts_next_token_and_samples():
    at = _open()
    at.slider(key="ngram.orders").set_value((1, 4)).run()
    at.multiselect(key="ngram.smoothings").set_value(["kn", "mle"]).run()
    at = _fit(at)
    assert not error_texts(at), error_texts(at)
    assert any("n-gram fit: done" in s.value for s in at.success)
    lab = at.session_state["lmcore.lab"]
    fit = lab.results["ngram"]["tradeoff"]
    assert sorted(fit.models) == [(s, n) for s in ("kn", "mle") for n in (1, 2, 3, 4)]
    # the page's table equals direct library calls on the same split and tokenizer
    split = lab.corpus.split()
    held = split.test or split.valid
    tok = train_tokenizer("char", split.train)
    table = _frame(at, "bits/char")
    assert len(table) == 16
    for s, label in (("kn", "Kneser-Ney"), ("mle", "MLE")):
        for n in (1, 2, 3, 4):
            model = NGramLM.from_tokenizer(tok, split.train, order=n, smoothing=s)
            for name, text in (("train", split.train), ("held-out", held)):
                ev = model.score_sequences([tok.encode(text)], add_eos=False, chars=len(text))
                row = table[(table["smoothing"] == label) & (table["n"] == n)
                            & (table["split"] == name)].iloc[0]
                assert row["tokens"] == ev.tokens and row["tokens with p = 0"] == ev.zero_prob
                assert row["oov"] == ev.oov
                for col, want in (("perplexity", ev.perplexity),
                                  ("bits/char", ev.bits_per_char)):
                    assert row[col] == pytest.approx(want, rel=1e-12) or \
                        (math.isinf(row[col]) and math.isinf(want))
    held_rows = table[table["split"] == "held-out"]
    kn = held_rows[held_rows["smoothing"] == "Kneser-Ney"]
    assert np.isfinite(kn["perplexity"]).all()
    mle4 = held_rows[(held_rows["smoothing"] == "MLE") & (held_rows["n"] == 4)].iloc[0]
    assert mle4["perplexity"] == float("inf") and mle4["tokens with p = 0"] > 0
    assert any("Why MLE breaks" in m.value for m in at.markdown)
    summary = next(m.value for m in at.markdown
                   if m.value.startswith("**Held-out perplexity in this fit:**"))
    assert "**MLE**: " in summary and "infinite" in summary and "**Kneser-Ney**: " in summary
    counts = _frame(at, "distinct n-grams")
    assert list(counts["n"]) == [1, 2, 3, 4]
    # distinct n-grams are those seen: never fewer at n + 1 than at n here (the unigram
    # table also holds a row per unseen vocabulary entry, which the count must leave out)
    distinct = [int(x) for x in counts["distinct n-grams"]]
    assert distinct == sorted(distinct), distinct
    assert distinct[0] == 1 + len(set(lab.results["ngram"]["tokenizer"].encode(
        lab.corpus.split().train)))  # the tokens seen, and </s> (one per line)
    # the session gets the KN model with the lowest held-out bits per character
    best = int(kn.loc[kn["bits/char"].idxmin(), "n"])
    assert f"n-gram KN n={best} (char)" in lab.models
    assert len([t.value for t in at.text]) == 4  # one generated sample per order
    assert len(at.get("plotly_chart")) == 4  # perplexity, bits/char, unseen, next token
    # a context of unknown words backs off instead of failing
    at.text_input(key="ngram.context").set_value("xyzzy qwerty").run()
    assert_no_exception(at)
    assert not error_texts(at) and len(at.get("plotly_chart")) == 4
    # a second fit with the same tokenizer choice reuses the trained tokenizer
    cached = lab.results["ngram.tokenizers"]
    assert list(cached.values())[0] is lab.results["ngram"]["tokenizer"]


def test_discount_fallback_is_shown():
    at = _open("the cat sat on the mat. " * 3 + "\n" + "a dog.\n" * 2)
    at.selectbox(key="ngram.tokenizer").set_value("word").run()
    at.slider(key="ngram.orders").set_value((2, 3)).run()
    at.multiselect(key="ngram.smoothings").set_value(["kn"]).run()
    at = _fit(at)
    fit = at.session_state["lmcore.lab"].results["ngram"]["tradeoff"]
    assert fit.fallbacks()  # this tiny text cannot estimate the discounts
    warnings = [w.value for w in at.warning if "discount_fallback" in w.value]
    groups: dict[tuple, list[int]] = {}  # one note per set of orders that fell back
    for n, orders in fit.fallbacks().items():
        groups.setdefault(tuple(orders), []).append(n)
    assert len(warnings) == len(groups)
    (orders, ns), = list(groups.items())[:1]
    assert f"Kneser-Ney, n = {', '.join(map(str, ns))}: too few n-grams of order " \
           f"{', '.join(map(str, orders))}" in warnings[0]


def test_too_small_corpus_for_the_order_shows_the_job_error():
    at = _open("abc")  # two training characters: <s> a b </s> holds no 6-gram
    at.selectbox(key="ngram.tokenizer").set_value("char").run()
    at.slider(key="ngram.orders").set_value((6, 6)).run()
    at = _fit(at)
    errs = error_texts(at)
    assert errs and "too small for order 6" in errs[0] and "n-gram fit failed" in errs[0]


def test_bad_k_shows_an_error_without_starting_a_job():
    at = _open()
    at.number_input(key="ngram.k").set_value(0.0).run()
    at.multiselect(key="ngram.smoothings").set_value(["addk"]).run()
    at.button(key="ngram.fit").click().run()
    assert_no_exception(at)
    assert any("k > 0" in e for e in error_texts(at))
    assert "ngram.job" not in at.session_state["lmcore.lab"].results


def test_stop_keeps_the_models_finished_so_far():
    text = TEXT * 2
    req = FitRequest(corpus="x", train_text=text, held_text=TEXT[:500], kind="char",
                     orders=(1, 4), smoothings=("kn", "addk"))
    stop = threading.Event()
    seen = []

    def progress(frac, message):
        seen.append((frac, message))
        if message.startswith("fitting and scoring addk"):
            stop.set()  # as the Stop button or the job time limit would

    result = run_fit(req, progress, stop)
    fit = result.tradeoff
    assert not fit.complete and fit.planned == 8
    # the model being fitted when stop was set is finished; no further one is started
    assert list(fit.models) == [("kn", n) for n in (1, 2, 3, 4)] + [("addk", 1)]
    assert len(fit.rows) == 2 * len(fit.models)
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)  # progress only goes forward
    stop.set()
    assert run_fit(req, lambda f, m: None, stop) is None  # stopped before anything
    with pytest.raises(ValueError, match="at least one smoothing"):
        FitRequest(corpus="x", train_text=text, held_text="", kind="char", orders=(1, 2),
                   smoothings=())

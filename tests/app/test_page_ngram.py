"""AppTest of the N-gram models page: fit a range of orders, charts, MLE's inf, bad input."""

from __future__ import annotations

from apptest import assert_no_exception, error_texts, open_page

from lmcore.app.state import Lab
from lmcore.data.corpus import from_text

PAGE = "pages/2_N-gram_models.py"
TEXT = ("the cat sat on the mat. the dog sat on the log. a cat saw a dog.\n"
        "on the mat the cat sat and the dog ran to the log.\n") * 40 + \
       "the bird flew over the mat and the zebra sang.\n" * 6


def _open(text: str = TEXT):
    at = open_page(PAGE)
    at.session_state["lmcore.lab"] = Lab(corpus=from_text(text, "toy"))
    at.run()
    assert_no_exception(at)
    return at


def test_page_renders_with_builtin_corpus():
    at = open_page(PAGE)
    assert "N-gram" in at.title[0].value
    assert any("Fit all orders" in i.value for i in at.info)


def test_fit_all_orders_draws_tradeoff_counts_next_token_and_samples():
    at = _open()
    at.slider(key="ngram.orders").set_value((1, 4)).run()
    at.multiselect(key="ngram.smoothings").set_value(["kn", "mle"]).run()
    at.button(key="ngram.fit").click().run()
    assert_no_exception(at)
    assert not error_texts(at)
    lab = at.session_state["lmcore.lab"]
    res = lab.results["ngram"]
    assert sorted(res["models"]) == [(s, n) for s in ("kn", "mle") for n in (1, 2, 3, 4)]
    held = {(r["smoothing"], r["order"]): r for r in res["rows"] if r["split"] == "held-out"}
    # smoothing keeps held-out perplexity finite; MLE breaks to inf once n-grams are unseen
    assert all(held[("kn", n)]["perplexity"] < float("inf") for n in (1, 2, 3, 4))
    assert held[("mle", 4)]["perplexity"] == float("inf") and held[("mle", 4)]["zero_prob"] > 0
    assert any("Why MLE breaks" in m.value for m in at.markdown)
    counts = at.dataframe[-1].value if len(at.dataframe) == 1 else at.dataframe[1].value
    assert list(counts["n"]) == [1, 2, 3, 4]
    assert any(k.startswith("n-gram KN") for k in lab.models)
    generated = [t.value for t in at.text]
    assert len(generated) == 4  # one column per order
    assert len(at.get("plotly_chart")) == 4  # perplexity, bits/char, unseen, next token
    # a context of unknown words backs off instead of failing
    at.text_input(key="ngram.context").set_value("xyzzy qwerty").run()
    assert_no_exception(at)
    assert not error_texts(at) and len(at.get("plotly_chart")) == 4


def test_too_small_corpus_for_the_order_shows_an_error():
    at = _open("abc")  # two training characters: <s> a b </s> holds no 6-gram
    at.selectbox(key="ngram.tokenizer").set_value("char").run()
    at.slider(key="ngram.orders").set_value((6, 6)).run()
    at.button(key="ngram.fit").click().run()
    assert_no_exception(at)
    errs = error_texts(at)
    assert errs and "too small for order 6" in errs[0]


def test_bad_k_shows_an_error():
    at = _open()
    at.number_input(key="ngram.k").set_value(0.0).run()
    at.multiselect(key="ngram.smoothings").set_value(["addk"]).run()
    at.button(key="ngram.fit").click().run()
    assert_no_exception(at)
    assert any("k > 0" in e for e in error_texts(at))

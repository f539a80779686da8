"""AppTest of the Information page: renders every panel, shows errors for bad input, and
runs the compression and entropy-rate jobs to their tables and plots."""

from __future__ import annotations

import re
import time

import pytest
import torch
from apptest import assert_no_exception, error_texts, open_page

from lmcore.app.state import Lab
from lmcore.data.builtin import markov_order
from lmcore.data.corpus import from_text

PAGE = "pages/7_Information.py"
TOY = "the cat sat on the mat. the dog sat on the log.\n" * 60 + "a zebra sang loudly.\n" * 8


# One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _open(text: str, models: dict | None = None):
    """The page on a corpus of `text` with these session models."""
    at = open_page(PAGE)
    lab = Lab(corpus=from_text(text, "toy"))
    lab.models.update(models or {})
    at.session_state["lmcore.lab"] = lab
    at.run()
    assert_no_exception(at)
    return at


def _small(at):
    at.number_input(key="info.chars").set_value(20_000).run()
    assert_no_exception(at)
    return at


def _wait_for(at, predicate, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert_no_exception(at)
        if predicate(at):
            return at
    raise AssertionError(f"timed out; errors: {error_texts(at)}")


def _frame(at, column):
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    return None


def test_page_renders_every_panel():
    at = _small(open_page(PAGE))
    assert not error_texts(at)
    ent = _frame(at, "H (bits/symbol)")
    assert list(ent["unit"]) == ["char", "byte"]
    assert 3.5 < ent["H (bits/symbol)"][0] < 6  # English-like text, order 0
    assert any("biased low" in i.value for i in at.info)
    assert any("bits/char" in c.value and "glows" in c.value for c in at.caption)
    assert any("background:rgba(239,68,68" in m.value for m in at.markdown)
    huff = _frame(at, "code")
    assert huff["length"].min() >= 1
    assert any(m.label == "H ≤ L < H + 1" and m.value == "holds" for m in at.metric)


def test_bad_inputs_show_errors_not_tracebacks():
    at = _small(open_page(PAGE))
    at.text_area(key="info.passage").set_value("").run()
    assert_no_exception(at)
    assert any("passage is empty" in e for e in error_texts(at))
    at.text_area(key="info.passage").set_value("fine").run()
    at.radio(key="info.klmode").set_value("Two texts I type").run()
    at.text_area(key="info.klp").set_value("").run()
    assert_no_exception(at)
    assert any("empty text" in e for e in error_texts(at))
    at.multiselect(key="info.corders").set_value([]).run()
    at.checkbox(key="info.adaptive").uncheck().run()
    at.checkbox(key="info.mixing").uncheck().run()
    at.button(key="info.compress").click().run()
    assert_no_exception(at)
    assert any("at least one model" in e for e in error_texts(at))


def test_compression_job_verifies_round_trip():
    at = _small(open_page(PAGE))
    at.number_input(key="info.cchars").set_value(400).run()
    at.multiselect(key="info.corders").set_value([1, 3]).run()
    at.button(key="info.compress").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: _frame(a, "round trip") is not None, 300)
    table = _frame(at, "round trip")
    assert list(table["coder"])[-4:] == ["KN char 1-gram", "KN char 3-gram",
                                         "adaptive over KN 3-gram", "mixing coder"]
    assert set(table["round trip"]) == {"✅ identical"}
    assert (table["sha256 in"] == table["sha256 out"]).all()
    assert table.set_index("coder")["bits/char"]["KN char 3-gram"] < \
        table.set_index("coder")["bits/char"]["KN char 1-gram"]
    saw = table.set_index("coder")["saw training text"]
    assert saw["xz -9"] == "no" and saw["xz -9 primed"] == "yes"
    assert saw["KN char 3-gram"] == "yes" and saw["mixing coder"] == "yes"
    bpc = table.set_index("coder")["bits/char"]
    assert bpc["mixing coder"] < bpc["adaptive over KN 3-gram"]
    assert any("Rows that saw the training text: " in c.value and "xz -9 primed" in c.value
               for c in at.caption)
    if "zpaq -m5" in set(table["coder"]):  # its ~1.3 KB header dwarfs 400 characters
        assert any("Fixed costs weigh on a short text: zpaq -m5 writes" in c.value
                   for c in at.caption)
    assert "None" not in table.astype(str).to_numpy()  # missing cells read '–'


def test_entropy_rate_curve_job():
    at = _small(open_page(PAGE))
    at.multiselect(key="info.sorders").set_value([1, 2]).run()
    at.button(key="info.curve").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: any("entropy rate" in c.value and "dashed" in c.value
                                     for c in a.caption))
    cap = next(c.value for c in at.caption if "dashed" in c.value)
    # the coded slice and the held-out text differ in size, and the caption says so with the
    # coder's distance to the model's cross-entropy on the same slice
    assert "first 1,500 of them" in cap and "measured on different amounts of text" in cap
    assert re.search(r"within 0\.0\d\d\d bits/char", cap), cap


def _compress(at, orders, adaptive=False, session=None, mixing=False):
    at.multiselect(key="info.corders").set_value(orders).run()
    if not adaptive:
        at.checkbox(key="info.adaptive").uncheck().run()
    if not mixing:
        at.checkbox(key="info.mixing").uncheck().run()
    if session is not None:
        at.multiselect(key="info.cmodels").set_value(session).run()
    at.button(key="info.compress").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: _frame(a, "round trip") is not None)
    return _frame(at, "round trip").set_index("coder")


@pytest.mark.parametrize("n", [50, 600])
def test_tiny_corpus_renders_and_compresses(n):
    text = TOY[:n]
    at = _open(text)
    assert not error_texts(at)
    assert any(f"only {n:,} characters" in w.value for w in at.warning)
    assert at.number_input(key="info.chars").value == n
    held = from_text(text, "toy").split().test
    assert at.number_input(key="info.cchars").value == len(held)
    assert any(f"only {len(held):,} characters" in c.value for c in at.caption)
    table = _compress(at, [1, 2])
    assert set(table["round trip"]) == {"✅ identical"}
    assert (table["sha256 in"] == table["sha256 out"]).all()


def _word_ngram():
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.ngram import NGramConfig, NGramLM

    train = from_text(TOY, "toy").split().train
    tok = train_tokenizer("word", train)
    return NGramLM.from_tokenizer(tok, train, NGramConfig(order=2))


def test_a_model_that_cannot_code_gets_a_row_with_the_reason():
    at = _open(TOY, {"n-gram KN n=2 (word)": _word_ngram()})
    table = _compress(at, [2], session=["n-gram KN n=2 (word)"])
    word = table.loc["n-gram KN n=2 (word)"]
    assert word["round trip"] == "⚠️ not coded" and "cannot reproduce" in word["note"]
    rest = table.drop(index="n-gram KN n=2 (word)")
    assert {"gzip -9", "xz -9", "KN char 2-gram"} <= set(rest.index)
    assert set(rest["round trip"]) == {"✅ identical"}
    assert any("could not code" in w.value and "[UNK]" in w.value for w in at.warning)


def _tiny_transformer(text: str):
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM
    from lmcore.train.data import TokenData
    from lmcore.train.objectives import CausalLM
    from lmcore.train.trainer import TrainConfig, train

    corpus = from_text(text, "toy")
    tok = train_tokenizer("char", corpus.split().train)
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=16, n_layer=1,
                                        n_head=2, n_embd=16))
    result = train(net, CausalLM(), TokenData.from_corpus(corpus, tok),
                   TrainConfig(steps=40, batch_size=8, eval_every=0, memory_every=0))
    assert result.status == "done", result.error
    return TransformerLM(net, tok)


def test_trained_transformer_row_codes_at_its_cross_entropy():
    from lmcore.models.lm import score_ids

    at = _open(TOY)
    assert any("No Transformer" in i.value and "Transformer** page" in i.value
               for i in at.info)
    lm = _tiny_transformer(TOY)
    at = _open(TOY, {"transformer": lm})
    assert not any("No Transformer" in i.value for i in at.info)
    at.number_input(key="info.cchars").set_value(300).run()
    table = _compress(at, [2], session=["transformer"])
    row = table.loc["transformer"]
    assert row["round trip"] == "✅ identical" and row["sha256 in"] == row["sha256 out"]
    part = from_text(TOY, "toy").split().test[:300]
    ce = float(row["cross-entropy (bits/char)"])  # shown as text: compressors have none
    assert ce == pytest.approx(score_ids(lm, lm.tokenizer.encode(part), part).bits_per_char,
                               rel=1e-5)
    coded, ideal = 8 * row["size (bytes)"], ce * len(part)
    assert ideal <= coded <= ideal * 1.001 + 8 * 40  # payload within the bound, plus the header
    assert row["bits/char"] == pytest.approx(coded / len(part))
    assert row["model size (KB)"] > 4 * lm.num_parameters() / 1024 - 1e-9


def test_transformer_entropy_rate_curve_job():
    at = _small(open_page(PAGE))
    at.number_input(key="info.tsteps").set_value(20).run()
    at.number_input(key="info.tevery").set_value(10).run()
    at.button(key="info.tcurve").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: any("round trip verified" in c.value for c in a.caption))
    charts = [str(getattr(e, "proto", "")) for e in at.get("plotly_chart")]
    assert any("approaching the entropy rate as it trains" in c for c in charts)
    cap = next(c.value for c in at.caption if "round trip verified" in c.value)
    assert "After 20 steps" in cap and "from the rate" in cap
    source = at.selectbox(key="info.source").value  # the caption names its real order
    assert f"order {markov_order(source)}:" in cap


def test_mixing_coder_mixes_in_a_session_transformer_on_its_tokenizer():
    lm = _tiny_transformer(TOY)
    at = _open(TOY, {"transformer": lm})
    assert any("also mixes in `transformer`" in c.value for c in at.caption)
    at.number_input(key="info.cchars").set_value(300).run()
    table = _compress(at, [2], session=[], mixing=True)
    row = table.loc["mixing coder + transformer"]
    assert row["round trip"] == "✅ identical" and row["sha256 in"] == row["sha256 out"]
    kb = table["model size (KB)"]  # the Transformer's weights are part of this coder
    assert kb["mixing coder + transformer"] > kb["mixing coder"] + lm.num_parameters() * 4 / 1024 - 1
    # a Transformer on another tokenizer cannot join, and the page says why
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

    tok = train_tokenizer("byte", TOY)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=16, n_layer=1,
                                        n_head=2, n_embd=16))
    at = _open(TOY, {"bytes model": TransformerLM(net, tok)})
    assert any("another tokenizer" in c.value and "char" in c.value for c in at.caption)

"""AppTest of the Embeddings page: word2vec as a job with its neighbours, analogy and map; a
small Transformer trained here whose token table is compared and whose hidden states move with
the context; Chinese text uses character units; bad words are error boxes."""

from __future__ import annotations

import json
import time

import pytest
from apptest import assert_no_exception, error_texts, open_page

from lmcore.app.state import Lab
from lmcore.data.corpus import from_text

PAGE = "pages/10_Embeddings.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = ("the cat sat on the mat. the dog sat on the log. a cat and a dog ran home. "
        "the bird sang in the tree. the dog chased the cat up the tree. ") * 60
ZH = "我喜欢猫。我喜欢狗。猫和狗都是动物。鸟在树上唱歌。狗追猫上树。" * 60


def _open(text: str):
    at = open_page(PAGE)
    at.session_state["lmcore.lab"] = Lab(corpus=from_text(text, "toy"))
    at.run()
    assert_no_exception(at)
    return at


def _wait_for(at, predicate, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert_no_exception(at)
        if predicate(at):
            return at
    raise AssertionError(f"timed out; errors: {error_texts(at)}")


def _figure(at, key: str) -> dict | None:
    for e in at.get("plotly_chart"):
        if e.proto.id.endswith("-" + key):
            return json.loads(e.proto.spec)
    return None


def _frames(at, column):
    return [d.value for d in at.dataframe if column in d.value.columns]


def test_word2vec_then_transformer_then_contextual():
    at = _open(TEXT)
    assert at.selectbox(key="emb.unit.word").value == "word"
    assert any("No Transformer" in i.value for i in at.info)
    at.slider(key="emb.epochs").set_value(2).run()
    at.button(key="emb.train").click().run()
    at = _wait_for(at, lambda a: bool(_frames(a, "neighbour")))
    assert not error_texts(at)
    lab = at.session_state["lmcore.lab"]
    w2v = lab.results["emb.w2v"].result
    word = at.text_input(key="emb.word").value
    table = _frames(at, "neighbour")[0]
    assert list(table["neighbour"]) == [w for w, _ in w2v.neighbours(word, 10)]
    pca = _figure(at, "emb.pca")
    assert f"{min(200, len(w2v.words))} most frequent units" in pca["layout"]["title"]["text"]
    # the analogy row is the library's answer
    a, b, c = (at.text_input(key=k).value for k in ("emb.a", "emb.b", "emb.c"))
    first = _frames(at, "cosine")[-1]
    assert first.iloc[0, 0] == w2v.analogy(a, b, c, 1)[0][0]

    at.number_input(key="emb.tsteps").set_value(20).run()
    at.button(key="emb.ttrain").click().run()
    at = _wait_for(at, lambda a: any("Mean cosine" in m.label for m in a.metric))
    assert not error_texts(at)
    assert any(n.startswith("embeddings transformer") for n in lab.models)
    assert len(_frames(at, "neighbour")) == 2  # word2vec and the token table side by side
    assert any("share" in c.value and "units both tables know" in c.value for c in at.caption)
    static = next(m for m in at.metric if "token-table" in m.label)
    assert float(static.value) == pytest.approx(1.0, abs=1e-3)
    hidden = next(m for m in at.metric if "hidden states" in m.label)
    assert float(hidden.value) < 0.9995

    at.text_input(key="emb.cword").set_value("zebra").run()
    assert any("does not occur" in e for e in error_texts(at))
    at.text_input(key="emb.a").set_value("unicorn").run()
    assert any("not in the" in e for e in error_texts(at))


def test_chinese_defaults_to_character_units():
    at = _open(ZH)
    assert at.selectbox(key="emb.unit.char").value == "char"
    assert at.selectbox(key="emb.tkind.char").value == "char"
    assert any("units are single characters" in c.value for c in at.caption)
    at.slider(key="emb.epochs").set_value(1).run()
    at.button(key="emb.train").click().run()
    at = _wait_for(at, lambda a: bool(_frames(a, "neighbour")))
    w2v = at.session_state["lmcore.lab"].results["emb.w2v"].result
    assert all(len(w) == 1 for w in w2v.words)
    assert "猫" in w2v.index

"""AppTest of the Long-texts page: renders, refuses bad settings, runs strategies and a tree."""

from __future__ import annotations

import time

import pytest
from apptest import assert_no_exception, error_texts, open_page

PAGE = "pages/6_Long_texts.py"


def _small(at, chars: int = 1500):
    first_n = next(n for n in at.number_input if n.label.startswith("Use the first"))
    first_n.set_value(chars).run()
    assert_no_exception(at)
    return at


def _wait_for(at, predicate, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
        assert_no_exception(at)
        if predicate(at):
            return at
    raise AssertionError(f"timed out; errors: {error_texts(at)}")


def _frame(at, column):
    """The first table on the page with `column` (AppTest dataframes carry no keys)."""
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    return None


def test_page_renders_with_builtin_corpus_and_an_ngram():
    at = _small(open_page(PAGE))
    assert not error_texts(at)
    assert at.selectbox(key="lt.model").value.startswith("Fit a 3-gram")
    assert any("3-gram" in i.value for i in at.info)
    table = _frame(at, "overlap")
    assert len(table) >= 2 and table["overlap"].max() > 0
    assert table["start"].is_monotonic_increasing


def test_bad_settings_show_errors_not_tracebacks():
    at = _small(open_page(PAGE))
    at.number_input(key="lt.size").set_value(16).run()
    at.number_input(key="lt.overlap").set_value(20).run()
    assert_no_exception(at)
    assert any("overlap" in e for e in error_texts(at))
    at.number_input(key="lt.overlap").set_value(4).run()
    at.number_input(key="lt.window").set_value(32).run()
    at.number_input(key="lt.stride").set_value(64).run()
    assert_no_exception(at)
    assert any("stride" in e for e in error_texts(at))
    at.radio(key="lt.sumkind").set_value("OpenAI-compatible chat endpoint").run()
    at.text_input(key="lt.url").set_value("localhost:11434").run()
    at.button(key="lt.sum.run").click().run()
    assert_no_exception(at)
    assert any("http://" in e for e in error_texts(at))


def test_strategies_run_as_a_job_and_compare():
    at = _small(open_page(PAGE))
    at.number_input(key="lt.window").set_value(64).run()
    at.number_input(key="lt.stride").set_value(16).run()
    at.button(key="lt.run").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: _frame(a, "coverage") is not None)
    rows = _frame(at, "coverage")
    assert list(rows["strategy"]) == ["truncation", "disjoint", "sliding"]
    assert rows.loc[1, "coverage"] == 1.0 and rows.loc[2, "coverage"] == 1.0
    assert rows.loc[0, "tokens_scored"] == 64
    assert (rows["bits_per_char"] > 0).all()


def test_summary_tree_and_continuation():
    at = _small(open_page(PAGE), 3000)
    at.number_input(key="lt.budget").set_value(200).run()
    at.number_input(key="lt.sumchunk").set_value(600).run()
    at.button(key="lt.sum.run").click().run()
    at = _wait_for(at, lambda a: any(e.label.startswith("summary") for e in a.expander))
    assert any("surprisal" in c.value for c in at.caption)
    levels = [e.label for e in at.expander if "source chunk" in e.label]
    assert len(levels) >= 4
    at.number_input(key="lt.n").set_value(20).run()
    at.button(key="lt.cont.run").click().run()
    assert_no_exception(at)
    assert any("⟶" in c.value for c in at.code)
    assert any("out of its view" in c.value for c in at.caption)


@pytest.mark.slow  # importing torch.optim (dynamo) alone takes seconds on a loaded machine
def test_tiny_transformer_trains_as_a_job_and_runs_tiled():
    at = _small(open_page(PAGE), 1200)
    at.selectbox(key="lt.model").set_value("Train a tiny Transformer now").run()
    at.number_input(key="lt.qsteps").set_value(3).run()
    at.button(key="lt.train").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: a.selectbox(key="lt.model").value.startswith("tiny"), 90)
    assert any("bits/char on the validation split" in s.value for s in at.success)
    assert any("tiny Transformer" in m.value for m in at.sidebar.markdown)
    at.multiselect(key="lt.strategies").set_value(["truncation", "sliding"]).run()
    at.number_input(key="lt.window").set_value(64).run()
    at.number_input(key="lt.stride").set_value(32).run()
    at.button(key="lt.run").click().run()
    at = _wait_for(at, lambda a: _frame(a, "coverage") is not None)
    rows = _frame(at, "coverage")
    assert list(rows["attention"]) == ["tiled", "tiled"]
    assert rows.loc[1, "coverage"] == 1.0


def test_pasted_chinese_text_chunks_and_summarizes():
    at = open_page(PAGE)
    at.radio(key="longtext.source").set_value("Paste text").run()
    zh = ("语言模型预测下一个字。上下文越长，模型看到的文本越多！长文本放不进上下文；"
          "滑动窗口给每个字一些上下文。") * 60
    at.text_area(key="longtext.paste").set_value(zh).run()
    at.button(key="longtext.use").click().run()
    at.radio(key="lt.part").set_value("Whole corpus").run()
    at.number_input(key="lt.size").set_value(40).run()
    at.number_input(key="lt.overlap").set_value(8).run()
    assert_no_exception(at)
    assert not error_texts(at)
    table = _frame(at, "overlap")
    assert len(table) > 20 and (table["tokens"] <= 40).all()
    at.number_input(key="lt.budget").set_value(60).run()
    at.number_input(key="lt.sumchunk").set_value(300).run()
    at.button(key="lt.sum.run").click().run()
    at = _wait_for(at, lambda a: any(e.label.startswith("summary") for e in a.expander))
    summary = at.info[-1].value
    assert 0 < len(summary) <= 60 and summary.endswith(("。", "！", "；"))

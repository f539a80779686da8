"""AppTest of the Objectives page: train the three on a tiny budget to completion, use them."""

from __future__ import annotations

import threading

from apptest import assert_no_exception, error_texts, open_page

PAGE = "pages/4_Objectives.py"


def _wait_for_jobs(timeout: float = 90) -> None:
    """AppTest cannot run the polling timer: join the job threads, then rerun the script."""
    for t in threading.enumerate():
        if t.name.startswith("lmcore-job-"):
            t.join(timeout)
            assert not t.is_alive(), f"{t.name} still running after {timeout} s"


def test_page_renders_masks():
    at = open_page(PAGE)
    assert not error_texts(at)
    charts = [str(getattr(e, "proto", "")) for e in at.get("plotly_chart")]
    assert any("bidirectional" in c for c in charts)


def test_bad_config_shows_error_not_traceback():
    at = open_page(PAGE)
    at.number_input(key="obj.n_head").set_value(3).run()  # width 64 is not a multiple of 3
    assert_no_exception(at)
    assert any("multiple of n_head" in e for e in error_texts(at))
    assert at.button(key="obj.train").disabled


def test_tiny_budget_runs_to_completion_with_fair_table_and_demos():
    at = open_page(PAGE)
    at.number_input(key="obj.steps").set_value(3)
    at.number_input(key="obj.batch").set_value(4)
    at.number_input(key="obj.context").set_value(16)
    at.number_input(key="obj.n_layer").set_value(1)
    at.number_input(key="obj.n_embd").set_value(16)
    at.number_input(key="obj.eval_tokens").set_value(64)
    at.run()
    at.button(key="obj.train").click().run()
    assert_no_exception(at)
    _wait_for_jobs()
    at.run()
    assert_no_exception(at)
    assert not error_texts(at), error_texts(at)
    table = at.dataframe[0].value
    assert set(table["model"]) == {"causal", "prefix", "masked"}
    scored = list(table["scored"])
    assert "suffix (same positions)" in scored and "full sequence" in scored
    assert any("[pseudo]" in s for s in scored)
    suffix = table[table["scored"] == "suffix (same positions)"]
    assert len(set(suffix["tokens"])) == 1  # causal and prefix scored on the same tokens
    assert (table["bits/char"] > 0).all()

    at.text_input(key="obj.blank_text").set_value("no blanks").run()
    at.button(key="obj.fill").click().run()
    assert_no_exception(at)
    assert any("blank" in e for e in error_texts(at))
    at.text_input(key="obj.blank_text").set_value("th_ va_ue").run()
    at.button(key="obj.fill").click().run()
    assert_no_exception(at)
    fills = at.dataframe[-1].value
    assert {"causal", "prefix", "masked", "causal (continues)"} <= set(fills["model"])
    assert all("_" not in f for f in fills["filled"][:3])
    # the sidebar (drawn before the page body) lists the trained models on the next run
    assert any("causal LM (objectives)" in m.value for m in at.sidebar.markdown)

    at.number_input(key="obj.n").set_value(20).run()
    at.button(key="obj.generate").click().run()
    assert_no_exception(at)
    assert any("identical tokens: yes" in c.value for c in at.caption)

"""AppTest of the Information page's noisy-channel panels: the capacity plot, the code sweep on
the corpus's bits and the n-gram decoding of a corrupted held-out text, run as jobs."""

from __future__ import annotations

import time

import pytest
from apptest import assert_no_exception, error_texts, open_page

PAGE = "pages/7_Information.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _wait_for(at, predicate, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert_no_exception(at)
        if predicate(at):
            return at
    raise AssertionError(f"timed out; errors: {error_texts(at)}")


def _frame(at, column):
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def _page():
    at = open_page(PAGE)
    at.number_input(key="info.chars").set_value(20_000).run()
    assert_no_exception(at)
    return at


def test_capacity_plot_and_code_sweep_on_the_text():
    at = _page()
    assert at.radio(key="info.chkind").value == "bsc"
    at.number_input(key="info.chchars").set_value(500).run()
    at.button(key="info.chrun").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: _frame(a, "BER") is not None)
    table = _frame(at, "BER").set_index("code")
    assert table["message bits"].iloc[0] == 8 * len(
        at.session_state["lmcore.lab"].corpus.text[:500].encode("utf-8"))
    assert 0.03 < table.loc["uncoded", "BER"] < 0.07  # BSC p = 0.05 on the raw bits
    assert table.loc["repetition (9, 1)", "BER"] < table.loc["uncoded", "BER"]
    assert any("Measured, not drawn" in c.value for c in at.caption)
    assert any("background:#fecaca" in m.value or "monospace" in m.value for m in at.markdown)


def test_noisy_channel_decoding_lowers_cer():
    at = _page()
    at.number_input(key="info.ncchars").set_value(300).run()
    at.button(key="info.ncrun").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: _frame(a, "CER after") is not None)
    table = _frame(at, "CER after").set_index("n")
    assert list(table.index) == [1, 2, 3, 4, 5]
    assert table["CER before"].nunique() == 1
    assert table.loc[5, "CER after"] < table.loc[5, "CER before"]
    assert any("best prior" in c.value for c in at.caption)

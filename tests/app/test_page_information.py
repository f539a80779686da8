"""AppTest of the Information page: renders every panel, shows errors for bad input, and
runs the compression and entropy-rate jobs to their tables and plots."""

from __future__ import annotations

import time

from apptest import assert_no_exception, error_texts, open_page

PAGE = "pages/7_Information.py"


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
    at.button(key="info.compress").click().run()
    assert_no_exception(at)
    assert any("at least one model" in e for e in error_texts(at))


def test_compression_job_verifies_round_trip():
    at = _small(open_page(PAGE))
    at.number_input(key="info.cchars").set_value(400).run()
    at.multiselect(key="info.corders").set_value([1, 3]).run()
    at.button(key="info.compress").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: _frame(a, "round trip") is not None)
    table = _frame(at, "round trip")
    assert list(table["coder"])[-3:] == ["KN char 1-gram", "KN char 3-gram",
                                         "adaptive over KN 3-gram"]
    assert set(table["round trip"]) == {"✅ identical"}
    assert (table["sha256 in"] == table["sha256 out"]).all()
    assert table.set_index("coder")["bits/char"]["KN char 3-gram"] < \
        table.set_index("coder")["bits/char"]["KN char 1-gram"]


def test_entropy_rate_curve_job():
    at = _small(open_page(PAGE))
    at.multiselect(key="info.sorders").set_value([1, 2]).run()
    at.button(key="info.curve").click().run()
    assert_no_exception(at)
    _wait_for(at, lambda a: any("entropy rate" in c.value and "dashed" in c.value
                                for c in a.caption))

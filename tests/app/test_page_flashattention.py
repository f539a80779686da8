"""AppTest of the FlashAttention page: renders, refuses bad input, runs a tiny sweep."""

from __future__ import annotations

import time

from apptest import assert_no_exception, error_texts, open_page

PAGE = "pages/5_FlashAttention.py"


def test_page_renders_online_softmax_and_saved_bytes():
    at = open_page(PAGE)
    assert any("equals the plain softmax" in s.value for s in at.success)
    assert any("naive softmax overflowed" in w.value for w in at.warning)
    saved = next(d.value for d in at.dataframe if "holds a T×T tensor" in d.value.columns)
    by_impl = saved.set_index("implementation")
    assert bool(by_impl.loc["naive", "holds a T×T tensor"])
    assert not bool(by_impl.loc["tiled", "holds a T×T tensor"])
    # T=1024, d=64: the T×T weights (16 MiB) vs four T×d tensors (4 MiB)
    assert by_impl.loc["naive", "saved (MiB)"] > 4 * by_impl.loc["tiled", "saved (MiB)"]
    assert not error_texts(at)


def test_bad_logits_show_an_error_not_a_traceback():
    at = open_page(PAGE)
    at.text_input(key="fa.logits").set_value("12, abc").run()
    assert_no_exception(at)
    assert any("'abc' is not a number" in e for e in error_texts(at))


def test_logits_beyond_float16_are_refused_not_called_no_overflow():
    at = open_page(PAGE)
    at.text_input(key="fa.logits").set_value("70000, 1").run()
    assert_no_exception(at)
    assert any("70000 becomes inf in float16" in e and "65504" in e for e in error_texts(at))
    assert not any("No overflow" in i.value for i in at.info)
    at.text_input(key="fa.logits").set_value("65504, 1").run()  # the largest float16 is fine
    assert not error_texts(at)
    assert any("naive softmax overflowed" in w.value for w in at.warning)
    at.text_input(key="fa.logits").set_value("3, 1").run()
    assert any("No overflow" in i.value for i in at.info)


def test_stepping_through_tiles_in_float16():
    at = open_page(PAGE)
    at.radio(key="fa.dtype").set_value("float16").run()
    at.slider(key="fa.offset").set_value(15.0).run()
    at.slider(key="fa.step").set_value(3).run()
    assert_no_exception(at)
    assert any("equals the plain softmax" in s.value for s in at.success)


def test_sweep_stops_naive_before_the_memory_limit():
    at = open_page(PAGE)
    at.select_slider(key="fa.trange").set_value((64, 128)).run()
    at.number_input(key="fa.limit").set_value(1.0).run()
    at.radio(key="fa.fresh").set_value("the job's own process (faster)").run()
    at.number_input(key="fa.repeats").set_value(1).run()
    at.button(key="fa.run").click().run()
    assert_no_exception(at)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert_no_exception(at)
        if any("attention-sweep: done" in s.value for s in at.success):
            break
    assert any("attention-sweep: done" in s.value for s in at.success), [
        s.value for s in at.success
    ]
    # naive's T² term predicts 1.25 MiB at T=128 (> 1 MiB): it never runs there
    assert any(w.value.startswith("naive stopped") for w in at.warning)
    table = next(d.value for d in at.dataframe if "fwd+bwd peak (MiB)" in d.value.columns)
    cells = set(zip(table["implementation"], table["T"], strict=True))
    assert {("sdpa", 64), ("tiled", 64), ("naive", 64)} <= cells
    assert ("naive", 128) not in cells
    assert (table["fwd+bwd peak (MiB)"] > 0).all()


def test_sweep_without_implementations_is_refused():
    at = open_page(PAGE)
    at.multiselect(key="fa.impls").set_value([]).run()
    at.button(key="fa.run").click().run()
    assert_no_exception(at)
    assert any("at least one implementation" in e for e in error_texts(at))

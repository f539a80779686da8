"""AppTest of the FlashAttention page's walk-through and byte-count tabs: the visitor's
sentences give the note's shapes, the toggles change what they claim, the numbers agree with
the library."""

from __future__ import annotations

from apptest import assert_no_exception, error_texts, open_page

from lmcore.app.state import Lab
from lmcore.data.corpus import from_text
from lmcore.models.attention_io import attention_io

PAGE = "pages/5_FlashAttention.py"


def _frame(at, column):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _metric(at, label):
    return next(m.value for m in at.metric if m.label.startswith(label))


def _page():
    at = open_page(PAGE)
    at.session_state["lmcore.lab"] = Lab(corpus=from_text("the cat sat on the mat. " * 50
                                                          + "A dog barked. Hello!", "toy"))
    at.run()
    assert_no_exception(at)
    return at


def test_walkthrough_shapes_and_toggles():
    at = _page()
    steps = _frame(at, "computes").set_index("step")
    T = len("The cat sat on the mat.")
    assert steps.loc["X", "shape"] == f"(3, {T}, 64)"
    assert steps.loc["Q heads", "shape"] == f"(3, 4, {T}, 16)"
    assert steps.loc["scores", "shape"] == f"(3, 4, {T}, {T})"
    assert steps.loc["output", "shape"] == f"(3, {T}, 64)"
    # bidirectional + padding mask: padded positions change nothing
    assert float(_metric(at, "Max change vs each sentence alone")) < 1e-9
    assert "0 causal" in _metric(at, "Entries removed")
    assert any("padded positions change nothing" in c.value for c in at.caption)
    at.checkbox(key="fa.wpad").uncheck().run()
    assert float(_metric(at, "Max change vs each sentence alone")) > 1e-6
    assert any("attend to [PAD]" in c.value for c in at.caption)
    at.radio(key="fa.wkind").set_value("causal (decoder)").run()
    assert float(_metric(at, "Max change vs each sentence alone")) < 1e-9
    assert any("already hides the pads" in c.value for c in at.caption)
    scaled = float(_metric(at, "Largest weight per row"))
    at.checkbox(key="fa.wscale").uncheck().run()
    assert_no_exception(at)
    assert float(_metric(at, "Largest weight per row")) > scaled  # sharper without 1/√d
    assert any("√d times larger" in c.value for c in at.caption)
    at.text_area(key="fa.wtext").set_value("\n \n").run()
    assert any("at least one sentence" in e for e in error_texts(at))


def test_byte_count_matches_the_model():
    at = _page()
    at.number_input(key="fa.ioT").set_value(8192).run()
    io = attention_io(8192, 64, 128, 128, True, 2)
    assert _metric(at, "Naive / tiled") == f"{io.ratio:,.1f}×"
    assert _metric(at, "Naive HBM traffic") == f"{32 * io.naive_bytes / 2**20:,.1f} MiB"
    assert any("Run the sweep" in i.value for i in at.info)
    assert any("climbs towards 8 (= 4·Bq/d)" in c.value for c in at.caption)  # 4·128/64
    at.selectbox(key="fa.iobq").set_value(256).run()
    at.selectbox(key="fa.iobk").set_value(256).run()
    at.selectbox(key="fa.iod").set_value(128).run()
    at.radio(key="fa.iodt").set_value("fp32").run()
    assert_no_exception(at)
    m = next(m for m in at.metric if m.label.startswith("SRAM"))
    assert m.delta == "does not fit"  # 256×256 fp32 tiles with d = 128 exceed 228 KiB


def test_byte_count_beside_the_cpu_sweep():
    import time

    at = _page()
    at.select_slider(key="fa.trange").set_value((64, 128)).run()
    at.radio(key="fa.fresh").set_value("the job's own process (faster)").run()
    at.number_input(key="fa.repeats").set_value(1).run()
    at.button(key="fa.run").click().run()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("attention-sweep: done" in s.value
                                                  for s in at.success):
        time.sleep(0.5)
        at.run()
        assert_no_exception(at)
    table = _frame(at, "CPU forward ms naive / tiled (measured)")
    assert list(table["T"]) == [64, 128]
    model = "HBM bytes naive / tiled (model, 64, 256×256 tiles, fp32)"
    assert list(table[model]) == [attention_io(t, 64, 256, 256, True, 4).ratio
                                  for t in (64, 128)]
    assert (table["CPU forward ms naive / tiled (measured)"] > 0).all()

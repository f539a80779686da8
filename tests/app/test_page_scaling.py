"""AppTest of the Scaling & emergence page: every experiment at a tiny budget, to the end."""

from __future__ import annotations

import json

import pytest
from apptest import assert_no_exception, error_texts, join_jobs, open_page

from lmcore.runs.store import RunStore
from lmcore.scaling.induction import InductionConfig

PAGE = "pages/8_Scaling_and_emergence.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _figure(at, key: str) -> dict:
    for e in at.get("plotly_chart"):
        if e.proto.id.endswith("-" + key):
            return json.loads(e.proto.spec)
    raise AssertionError(f"no chart with key {key}")


def _done(at) -> None:
    join_jobs(240)
    at.run()
    assert_no_exception(at)
    assert not error_texts(at), error_texts(at)


def test_page_renders_with_the_published_forms():
    at = open_page(PAGE)
    assert not error_texts(at)
    text = "\n".join(m.value for m in at.markdown)
    assert "Kaplan et al. (2020)" in text and "Hoffmann et al. (2022" in text
    assert "Schaeffer et al. (2023)" in text and "Olsson et al. (2022)" in text
    assert at.text_input(key="sc.shapes_size_False").value == "1x16,1x24,1x32,2x32,2x48,3x64"


def test_bad_shape_is_an_error_box():
    at = open_page(PAGE)
    at.text_input(key="sc.shapes_size_False").set_value("2x").run()
    at.button(key="sc.sz_run").click().run()
    assert_no_exception(at)
    assert any("LAYERSxWIDTH" in e for e in error_texts(at))


def test_size_sweep_runs_fits_and_records():
    at = open_page(PAGE)
    at.text_input(key="sc.shapes_size_False").set_value("1x8,1x16,2x16")
    at.text_input(key="sc.ssteps_False").set_value("3")
    at.run()
    at.button(key="sc.sz_run").click().run()
    assert_no_exception(at)
    _done(at)
    fig = _figure(at, "sc.sz_fig")
    assert fig["layout"]["xaxis"]["type"] == "log" and fig["layout"]["yaxis"]["type"] == "log"
    runs = fig["data"][0]
    assert runs["text"] == ["1x8", "1x16", "2x16"] and len(runs["y"]) == 3
    assert len(fig["data"]) == 3  # points + the two fitted forms
    assert _figure(at, "sc.sz_flops")["layout"]["xaxis"]["type"] == "log"
    text = "\n".join(m.value for m in at.markdown)
    assert "Kaplan et al. 2020's 0.076" in text and "Hoffmann et al. 2022's 0.34" in text
    table = at.dataframe[-1].value
    assert list(table["label"]) == ["1x8", "1x16", "2x16"] and (table["bits/char"] > 0).all()
    assert len(RunStore().list()) == 3


def test_emergence_induction_fewshot_and_cot_run_to_the_end():
    at = open_page(PAGE)
    at.text_input(key="sc.em_shapes_False").set_value("1x8,1x16")
    at.number_input(key="sc.em_steps_False").set_value(10)
    at.number_input(key="sc.em_every").set_value(5)
    at.number_input(key="sc.in_steps_False").set_value(10)
    at.number_input(key="sc.fs_steps_False").set_value(10)
    at.number_input(key="sc.cot_steps_False").set_value(10)
    at.run()
    for key in ("sc.em_run", "sc.in_run", "sc.fs_run", "sc.cot_run"):
        at.button(key=key).click().run()
        assert_no_exception(at)
        _done(at)
    sizes = _figure(at, "sc.em_sizes")
    names = [t["name"] for t in sizes["data"]]
    assert "per-digit accuracy" in names and "exact match (all 4 digits)" in names
    assert sizes["layout"]["xaxis"]["type"] == "log"
    at.select_slider[0].set_value(10).run()  # the across-sizes view at another step
    assert "at step 10" in _figure(at, "sc.em_sizes")["layout"]["title"]["text"]
    assert any(c.value.startswith("At step 10, per-digit accuracy spans") for c in at.caption)
    scores = _figure(at, "sc.in_scores")["data"][0]
    cfg = InductionConfig()
    assert len(scores["x"]) == cfg.n_layer * cfg.n_head and all(0 <= v <= 1 for v in scores["y"])
    heat = _figure(at, "sc.in_map")["data"][0]
    assert len(heat["z"]) == cfg.T - 1 and abs(sum(heat["z"][5]) - 1) < 1e-4  # rows: softmaxes
    import re

    title = _figure(at, "sc.in_map")["layout"]["title"]["text"]
    b, end = map(int, re.search(r"repeat at (\d+)\.\.(\d+)", title).groups())
    assert b < end <= cfg.T - 2  # the map shows a whole second copy (inputs are T - 1 long)
    assert "best-scoring sequence" in title
    assert any("scores highest" in c.value for c in at.caption)
    shots = _figure(at, "sc.fs_fig")
    assert [t["name"] for t in shots["data"]][:2] == ["before training", "after 10 steps"]
    assert shots["data"][0]["x"] == list(range(9))
    assert any(c.value.startswith("Mean accuracy over k = 0..8") and "With the query's key "
               "shown" in c.value for c in at.caption)  # lmcore.scaling.fewshot.read_shots
    cot = _figure(at, "sc.cot_fig")
    assert [t["name"] for t in cot["data"]][:2] == ["answer only", "scratchpad"]
    assert any(c.value.startswith(("The scratchpad is ahead", "Answer only is ahead",
                                   "The two variants score alike")) for c in at.caption)
    names = {r.name.split(" ")[0] for r in RunStore().list()}
    assert {"emergence", "induction", "few-shot", "chain"} <= names


def test_hosted_limits_keep_the_defaults_and_a_lower_limit_cuts_them(monkeypatch):
    """The hosted profile allows 5,000 steps: the few-shot (4,500) and induction (4,000)
    defaults stand, as locally. A host that lowers LMCORE_MAX_STEPS gets inputs that start at
    the limit (a default above it would be refused on Train) and say what the cut costs."""
    from lmcore.scaling.fewshot import FewShotConfig
    from lmcore.scaling.induction import InductionConfig

    for profile in ("local", "hosted"):
        monkeypatch.setenv("LMCORE_PROFILE", profile)
        at = open_page(PAGE)
        assert at.number_input(key="sc.fs_steps_False").value == FewShotConfig().steps
        assert at.number_input(key="sc.in_steps_False").value == InductionConfig().steps
        assert not [c for c in at.caption if "this server allows" in c.value]
    monkeypatch.setenv("LMCORE_MAX_STEPS", "2000")
    at = open_page(PAGE)
    assert_no_exception(at)
    for key in ("sc.fs_steps_False", "sc.in_steps_False"):
        assert at.number_input(key=key).value == 2000 and at.number_input(key=key).max == 2000
    assert at.number_input(key="sc.cot_steps_False").value == 1500  # under the limit: as is
    cut = [c.value for c in at.caption if "this server allows 2,000" in c.value]
    assert len(cut) == 2 and any(c.startswith(f"{FewShotConfig().steps:,} by default")
                                 for c in cut)

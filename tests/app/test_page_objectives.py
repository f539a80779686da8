"""AppTest of the Objectives page: train the three and the encoder-decoder on a tiny budget to
completion, use them."""

from __future__ import annotations

import functools
import json

import sample_jobs
from apptest import assert_no_exception, error_texts, join_jobs, numbers, open_page

from lmcore.app.jobs import JobRegistry
from lmcore.runs.store import RunStore

PAGE = "pages/4_Objectives.py"


def _figure(at, key: str) -> dict:
    """The plotly figure (as JSON) of the chart drawn with widget key `key`."""
    for e in at.get("plotly_chart"):
        if e.proto.id.endswith("-" + key):
            return json.loads(e.proto.spec)
    raise AssertionError(f"no chart with key {key}: "
                         f"{[e.proto.id for e in at.get('plotly_chart')]}")


def _wait_for_jobs(timeout: float = 90) -> None:
    join_jobs(timeout)


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
    table = numbers(at.dataframe[0].value)  # '–' (does not apply) read back as NaN
    assert set(table["model"]) == {"causal", "prefix", "masked", "encdec"}
    scored = list(table["scored"])
    assert "suffix (same positions)" in scored and "full sequence" in scored
    assert any("[pseudo]" in s for s in scored)
    suffix = table[table["scored"] == "suffix (same positions)"]
    assert list(suffix["model"]) == ["causal", "prefix", "encdec"]
    assert len(set(suffix["tokens"])) == 1  # causal, prefix, encdec scored on the same tokens
    assert len(set(suffix["characters"])) == 1
    full = table[table["scored"] == "full sequence"]
    assert list(full["model"]) == ["causal", "encdec"] and len(set(full["tokens"])) == 1
    likelihood = table[table["model"].isin(["causal", "prefix", "encdec"])
                       & table["bits/char"].notna()]
    assert len(likelihood) == 5
    assert (likelihood["bits/char"] > 0).all() and (likelihood["characters"] > 0).all()
    masked = table[table["model"] == "masked"]
    assert masked["bits/char"].isna().all() and masked["per-token perplexity"].isna().all()
    mlm = masked[masked["scored"].str.startswith("masked tokens")]
    assert (mlm["masked-token perplexity"] > 1).all() and mlm["pseudo bits/char"].isna().all()
    pll = masked[masked["scored"].str.contains("pseudo")]
    assert (pll["pseudo bits/char"] > 0).all() and (pll["pseudo-perplexity"] > 1).all()

    # the page says which way pseudo bits/char and bits/char went in this run, with both numbers
    c_bpc = float(full[full["model"] == "causal"]["bits/char"].iloc[0])
    said = [w.value for w in at.warning if "differs from the usual" in w.value] + \
        [c.value for c in at.caption if c.value.startswith("As usual")]
    assert len(said) == 1 and f"{c_bpc:.3f}" in said[0]
    assert ("after 3 steps" in said[0]) == said[0].startswith("**This run")
    loss = _figure(at, "obj.loss")
    names = {t["name"].split()[0] for t in loss["data"]}
    assert names == {"causal", "prefix", "masked", "encdec"}
    assert all(len(t["x"]) >= 1 for t in loss["data"])
    infill = table[table["scored"].str.startswith("infilled spans")]
    assert list(infill["model"]) == ["encdec"] and (infill["masked-token perplexity"] > 1).all()
    rank = _figure(at, "obj.rank")
    assert {t["name"].split()[0] for t in rank["data"]} == {"causal", "prefix", "masked",
                                                            "encdec"}
    for t in rank["data"]:  # one layer, two heads, each rank between 1 and T = 16
        heads = [float(v) for v in t["customdata"][0].split(", ")]
        assert t["x"] == ["layer 0"] and len(heads) == 2 and all(1 <= v <= 16 for v in heads)

    at.text_input(key="obj.blank_text").set_value("no blanks").run()
    at.button(key="obj.fill").click().run()
    assert_no_exception(at)
    assert any("blank" in e for e in error_texts(at))
    at.text_input(key="obj.blank_text").set_value("th_ va_ue").run()
    at.button(key="obj.fill").click().run()
    assert_no_exception(at)
    fills = at.dataframe[-1].value
    assert {"causal", "prefix", "masked", "encdec", "causal (continues)"} <= set(fills["model"])
    assert all("_" not in f for f in fills["filled"][:4])
    # the sidebar (drawn before the page body) lists the trained models on the next run
    assert any("causal LM (objectives)" in m.value for m in at.sidebar.markdown)
    runs = RunStore().list()  # the fair rows are kept with each recorded run
    assert len(runs) == 4 and all(r.final["fair_metrics"] for r in runs)

    # the default length fills the trained context (16 tokens after BOS: all cached steps)
    assert at.number_input(key="obj.n").value == 16
    at.number_input(key="obj.n").set_value(20).run()
    at.text_input(key="obj.prompt").set_value("the ").run()
    at.button(key="obj.generate").click().run()
    assert_no_exception(at)
    _wait_for_jobs()  # generation runs as a background job
    at.run()
    assert_no_exception(at)
    said = " ".join(m.value for m in at.markdown)
    assert "Identical tokens: yes" in said
    # 'the ' is 4 char tokens after BOS: 5 read, so 16 - 5 + 1 = 12 steps fit the context
    assert "the last 8 ran past the context of 16 tokens" in said
    kv = _figure(at, "obj.kvfig")
    per_token = [t for t in kv["data"] if t["name"].startswith("with")]
    assert len(per_token) == 2 and all(len(t["y"]) == 20 for t in per_token)
    assert per_token[0]["x"][0] == 5  # the first step reads BOS + the prompt
    assert any(c.value.startswith("the ") for c in at.code)
    # the encoder-decoder generates after the timing (not beside it on the same cores)
    _wait_for_jobs()
    at.run()
    # the prompt shown is the one stored with the result, not the widget's new value
    at.text_input(key="obj.prompt").set_value("zzz").run()
    assert any("Prompt 'the '" in c.value for c in at.caption)
    assert any(c.value.startswith("the ") for c in at.code)
    # the encoder-decoder continued the same prompt and the comparison quotes this run
    assert sum(c.value.startswith("the ") for c in at.code) == 2
    assert any(h.value.startswith("7 · Why decoder-only won") for h in at.subheader)
    said = " ".join(m.value for m in at.markdown)
    fair = table.set_index(["model", "scored"])["bits/char"]
    assert f"encoder-decoder {fair[('encdec', 'suffix (same positions)')]:.3f} bits/char" \
        in said
    assert "ms per token" in said


def test_stop_before_the_first_step_skips_scoring(monkeypatch):
    at = open_page(PAGE)
    at.number_input(key="obj.steps").set_value(3)
    at.number_input(key="obj.context").set_value(16)
    at.number_input(key="obj.n_layer").set_value(1)
    at.number_input(key="obj.n_embd").set_value(16)
    at.run()
    stopped = []
    real_submit = JobRegistry.submit

    def submit_stopped(self, name, fn):
        # module-level (a worker process must unpickle it): Stop pressed before step 1
        stopped.append(name)
        return real_submit(self, name, functools.partial(sample_jobs.stopped_first, fn))

    with monkeypatch.context() as patch:  # only the submit; LMCORE_HOME stays private
        patch.setattr(JobRegistry, "submit", submit_stopped)
        at.button(key="obj.train").click().run()
    _wait_for_jobs()
    at.run()
    assert_no_exception(at)
    assert len(stopped) == 4
    assert not at.dataframe  # nothing scored, no table
    assert sum("stopped by request" in w.value for w in at.warning) == 4
    runs = RunStore().list()  # each objective recorded as stopped, and never scored
    assert len(runs) == 4 and all(r.status == "stopped" for r in runs)
    assert all("fair_metrics" not in (r.final or {}) for r in runs)

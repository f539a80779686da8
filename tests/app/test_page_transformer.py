"""AppTest of the Transformer page: size, train a 2-step job through the registry, use it."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from apptest import (
    assert_no_exception,
    error_texts,
    goto,
    join_jobs,
    open_app,
    open_page,
    sidebar_text,
)

from lmcore.app import jobs
from lmcore.data.builtin import pydoc_corpus
from lmcore.data.corpus import from_text
from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.runs.store import RunStore
from lmcore.train.estimate import count_parameters, shape_only, vocab_estimate
from lmcore.train.memory import RSSSampler, rss_bytes

PAGE = "pages/3_Transformer.py"


# One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _wait_for_jobs(timeout: float = 60) -> None:
    join_jobs(timeout)


def _tiny(at, steps: int = 2, **knobs):
    """The smallest model the page allows a quick job with; extra knobs by key suffix."""
    for key, value in dict(n_layer=1, n_embd=16, context=16, steps=steps, eval_every=0,
                           **knobs).items():
        at.number_input(key=f"tf.{key}").set_value(value)
    at.run()
    assert_no_exception(at)
    return at


def _train(at):
    at.button(key="tf.train").click().run()
    assert_no_exception(at)
    _wait_for_jobs()
    at.run()
    assert_no_exception(at)
    return [s.value for s in at.success if "bits/char" in s.value]


def test_page_renders_with_parameter_count_and_estimate():
    at = open_page(PAGE)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["≈ time per step"].endswith("ms")
    assert not error_texts(at)
    # the count is the real model's, with the real char vocabulary of the built-in corpus
    vocab = train_tokenizer("char", pydoc_corpus().split().train).vocab_size
    real = Transformer(TransformerConfig(vocab_size=vocab, context=64, n_layer=2, n_head=2,
                                         n_embd=64)).num_parameters()
    assert int(metrics["Parameters"].replace(",", "")) == real
    assert any(f"Vocabulary {vocab:,} tokens (estimated from the corpus)" in c.value
               for c in at.caption)


def test_over_limit_config_is_refused_before_anything_is_allocated():
    at = open_page(PAGE)
    for key, value in dict(n_layer=24, n_embd=1024, context=2048).items():
        at.number_input(key=f"tf.{key}").set_value(value)
    before = rss_bytes()
    with RSSSampler(interval=0.005) as mem:
        at.run()
    assert_no_exception(at)
    err = " ".join(error_texts(at))
    assert "exceeds the limit max_params=20,000,000" in err and "LMCORE_MAX_PARAMS" in err
    n = int(re.search(r"([\d,]+) exceeds", err).group(1).replace(",", ""))
    assert n > 300_000_000  # 1.2 GB of float32 weights that were never allocated:
    assert mem.peak - before < 300 * 2**20
    assert at.button(key="tf.train").disabled


@pytest.mark.parametrize("kw", [
    dict(),
    dict(activation="swiglu", tie_weights=False, bias=False),
    dict(norm="rmsnorm", norm_position="post", mlp_ratio=2.5, residual=False),
    dict(n_layer=3, n_head=4, n_embd=48, context=7),
])
def test_parameter_count_without_allocating_equals_the_real_models(kw):
    cfg = TransformerConfig(**{**dict(vocab_size=366, context=32, n_layer=2, n_head=2,
                                      n_embd=32), **kw})
    assert count_parameters(cfg) == Transformer(cfg).num_parameters()
    assert {p.device.type for p in shape_only(cfg).parameters()} == {"meta"}


@pytest.mark.parametrize("text", ["the cat sat on the mat", "汉字没有空格。\n中文也可以！" * 3,
                                  "a"])
def test_vocab_estimate_equals_the_trained_tokenizers(text):
    for kind in ("char", "byte"):
        assert vocab_estimate(kind, text) == train_tokenizer(kind, text).vocab_size
    assert vocab_estimate("bpe", text, 500) == 500


def test_bad_config_shows_error_not_traceback():
    at = open_page(PAGE)
    at.number_input(key="tf.n_head").set_value(3).run()  # width 64 is not a multiple of 3
    assert_no_exception(at)
    assert any("multiple of n_head" in e for e in error_texts(at))
    assert at.button(key="tf.train").disabled


def test_preset_fills_the_knobs():
    at = open_page(PAGE)
    at.selectbox(key="tf.preset").set_value("small").run()
    assert at.number_input(key="tf.n_layer").value == 4
    assert at.number_input(key="tf.n_embd").value == 128


def test_train_two_steps_then_generate_and_look_at_attention():
    at = _tiny(open_page(PAGE))
    done = _train(at)
    assert done and "2 steps" in done[0], [s.value for s in at.success]
    assert "transformer" in " ".join(m.value for m in at.sidebar.markdown)
    # the run is recorded for this session and listed
    assert len(at.dataframe) >= 1
    at.number_input(key="tf.n").set_value(10)
    at.button(key="tf.generate").click().run()
    assert_no_exception(at)
    assert any("surprisal" in c.value for c in at.caption)
    shown = [m.value for m in at.markdown if 'title="p = ' in m.value]
    assert len(shown) == 1 and shown[0].startswith('<div')
    probs = [float(p) for p in re.findall(r'title="p = ([0-9.]+) \(', shown[0])]
    assert len(probs) == 10 and all(0 < p <= 1 for p in probs)  # one per generated token
    assert any("layer 0, head 0" in str(getattr(e, "proto", "")) for e in at.get("plotly_chart"))


def test_dynamics_comparison_runs_as_a_job_and_shows_gradients_per_layer():
    at = open_page(PAGE)
    at.selectbox(key="tf.dyn_kind").set_value("residual & norm").run()
    at.number_input(key="tf.dyn_steps").set_value(5).run()
    at.button(key="tf.dyn_run").click().run()
    assert_no_exception(at)
    _wait_for_jobs()
    at.run()
    assert_no_exception(at)
    table = at.dataframe[-1].value
    assert list(table["variant"]) == ["residual + norm", "no residual", "no norm", "neither"]
    assert (table["status"] == "done").all()
    charts = [str(getattr(e, "proto", "")) for e in at.get("plotly_chart")]
    assert any("Gradient norm per layer" in c for c in charts)


def test_optimizer_knobs_reach_the_trainer_and_the_explanation():
    at = open_page(PAGE)
    at.selectbox(key="tf.optimizer").set_value("momentum").run()
    assert at.number_input(key="tf.momentum").value == 0.9
    assert not [w for w in at.number_input if w.key in ("tf.beta1", "tf.weight_decay")]
    at.selectbox(key="tf.optimizer").set_value("adamw").run()
    at = _tiny(at, weight_decay=0.05, beta1=0.8, beta2=0.95, min_lr=0.2, lr=0.01)
    explained = " ".join(m.value for m in at.markdown if "With these settings" in m.value)
    assert "\\lambda = 0.05" in explained and "\\beta_2 = 0.95" in explained
    assert "down to 0.002 (0.2 × lr)" in explained
    assert _train(at)
    train = RunStore().list()[0].config["train"]
    assert (train["optimizer"], train["weight_decay"], train["beta1"], train["beta2"]) == \
        ("adamw", 0.05, 0.8, 0.95)
    assert train["min_lr"] == pytest.approx(0.002)


def test_switching_corpus_drops_the_model_trained_on_the_old_one():
    at = _tiny(open_page(PAGE))
    assert _train(at)
    lab = at.session_state["lmcore.lab"]
    assert "transformer" in lab.models
    lab.set_corpus(from_text("an entirely different text, line after line.\n" * 60, "other"))
    at.run()
    at.run()  # a second rerun once brought the old model back
    assert_no_exception(at)
    lab = at.session_state["lmcore.lab"]
    assert "transformer" not in lab.models and "`transformer`" not in sidebar_text(at)
    assert not [s.value for s in at.success if "bits/char" in s.value]
    assert any("No training yet on this corpus" in c.value for c in at.caption)
    assert len(RunStore().list()) == 1  # the run itself stays recorded


def test_train_waits_for_a_free_slot_and_says_so(monkeypatch):
    monkeypatch.setenv("LMCORE_MAX_JOBS", "1")
    at = _tiny(open_page(PAGE))
    assert jobs._process_slots.acquire(threading.Event())  # another visitor holds the slot
    try:
        at.button(key="tf.train").click().run()
        assert_no_exception(at)
        waiting = [i.value for i in at.info if "Waiting for a free job slot" in i.value]
        assert waiting and "1 of 1 jobs are running" in waiting[0]
        assert at.button(key="tf.live.panel.cancel")
    finally:
        jobs._process_slots.release()
    _wait_for_jobs()
    at.run()
    assert [s.value for s in at.success if "bits/char" in s.value]


def test_running_job_is_shown_again_after_navigating_away_and_back():
    at = open_app()
    goto(at, PAGE)
    at = _tiny(at, steps=20_000)
    at.button(key="tf.train").click().run()
    goto(at, "pages/1_Corpus_and_tokenizers.py")
    assert not [b for b in at.button if b.key == "tf.live.panel.stop"]
    goto(at, PAGE)
    stop = [b for b in at.button if b.key in ("tf.live.panel.stop", "tf.live.panel.cancel")]
    assert stop, "the running job's panel is gone after navigating back"
    stop[0].click().run()
    _wait_for_jobs()
    at.run()
    done = [s.value for s in at.success if "bits/char" in s.value]
    assert done and "(stopped," in done[0]


def _cli_run(text_file: Path) -> str:
    """A run recorded by `lmcore train` (no session), with its model under LMCORE_HOME."""
    from lmcore.cli import main

    assert main(["train", "--corpus", str(text_file), "--layers", "1", "--heads", "2",
                 "--width", "16", "--context", "16", "--batch-size", "4", "--steps", "2",
                 "--eval-every", "0", "--quiet"]) == 0
    return RunStore().list()[0].id


@pytest.fixture
def other_runs(tmp_path):
    """One run from the CLI and one from another app session, both finished."""
    f = tmp_path / "t.txt"
    f.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 60, encoding="utf-8")
    cli = _cli_run(f)
    store = RunStore()
    other = store.create("transformer (someone else)", {"train": {}}, session="another-tab")
    store.finish(other, "done", {"valid_loss": 2.5})
    return cli, other


def test_runs_panel_shows_only_this_sessions_runs_by_default(other_runs):
    at = open_page(PAGE)
    assert any("this session sees only its own" in c.value for c in at.caption)
    shown = " ".join(str(d.value) for d in at.dataframe)
    assert not any(rid in shown for rid in other_runs)


def test_shared_runs_lists_reloads_compares_and_deletes_every_run(other_runs, monkeypatch):
    monkeypatch.setenv("LMCORE_SHARED_RUNS", "1")
    cli, other = other_runs
    at = open_page(PAGE)
    assert any("LMCORE_SHARED_RUNS is on" in c.value for c in at.caption)
    # (AppTest gives every test one session id, so another test's dynamics table may show)
    table, compared = [d.value for d in at.dataframe if "id" in d.value.columns]
    assert set(table["id"]) == {cli, other}
    # the two newest, side by side
    assert set(compared["id"]) == {cli, other} and "config.train" not in compared
    assert at.get("download_button")
    at.selectbox(key="tf.run").set_value(cli).run()
    at.button(key="tf.reload").click().run()
    assert_no_exception(at)
    lm = at.session_state["lmcore.lab"].models["transformer"]
    saved = RunStore().get(cli).checkpoint
    assert lm.model.config.n_embd == 16 and "`transformer`" in sidebar_text(at)
    assert any(f"Loaded run {cli}" in s.value for s in at.success)
    assert at.button(key="tf.generate")  # the generation section now has a model
    at.selectbox(key="tf.run").set_value(cli).run()
    at.button(key="tf.delete").click().run()
    assert_no_exception(at)
    assert [r.id for r in RunStore().list()] == [other]
    assert not Path(saved).exists()  # its weights and tokenizer.json are gone too


def test_a_running_run_is_not_deleted(monkeypatch):
    monkeypatch.setenv("LMCORE_SHARED_RUNS", "1")
    rid = RunStore().create("still training (this process)", {"train": {}})
    at = open_page(PAGE)
    at.selectbox(key="tf.run").set_value(rid).run()
    at.button(key="tf.delete").click().run()
    assert_no_exception(at)
    assert any("still running" in e for e in error_texts(at))
    assert RunStore().get(rid).status == "running"

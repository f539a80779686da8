"""AppTest of the Transformer page: size, train a 2-step job through the registry, use it."""

from __future__ import annotations

import threading

import pytest
import torch
from apptest import assert_no_exception, error_texts, open_page

PAGE = "pages/3_Transformer.py"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _wait_for_jobs(timeout: float = 60) -> None:
    """AppTest cannot run the polling timer: join the job threads, then rerun the script."""
    for t in threading.enumerate():
        if t.name.startswith("lmcore-job-"):
            t.join(timeout)
            assert not t.is_alive(), f"{t.name} still running after {timeout} s"


def test_page_renders_with_parameter_count_and_estimate():
    at = open_page(PAGE)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Parameters"].replace(",", "")) > 0
    assert metrics["≈ time per step"].endswith("ms")
    assert not error_texts(at)


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
    at = open_page(PAGE)
    at.number_input(key="tf.n_layer").set_value(1)
    at.number_input(key="tf.n_embd").set_value(16)
    at.number_input(key="tf.context").set_value(16)
    at.number_input(key="tf.steps").set_value(2)
    at.number_input(key="tf.eval_every").set_value(0)
    at.run()
    at.button(key="tf.train").click().run()
    assert_no_exception(at)
    _wait_for_jobs()
    at.run()
    assert_no_exception(at)
    done = [s.value for s in at.success if "bits/char" in s.value]
    assert done and "2 steps" in done[0], [s.value for s in at.success]
    assert "transformer" in " ".join(m.value for m in at.sidebar.markdown)
    # the run is recorded for this session and listed
    assert len(at.dataframe) >= 1
    at.number_input(key="tf.n").set_value(10)
    at.button(key="tf.generate").click().run()
    assert_no_exception(at)
    assert any("surprisal" in c.value for c in at.caption)
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

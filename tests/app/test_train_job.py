"""Training as a job: series for the live charts, the run in the store, a loadable model."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from lmcore.app.jobs import Job, JobContext, JobRegistry, Slots, run_here
from lmcore.app.train_job import JobFeed, TrainOutcome, dynamics_job, training_job
from lmcore.data.corpus import from_text
from lmcore.models.checkpoint import load_model
from lmcore.models.transformer import Transformer
from lmcore.runs.store import RunStore
from lmcore.train.memory import RSSSampler
from lmcore.train.objectives import CausalLM
from lmcore.train.record import step_values
from lmcore.train.trainer import Step, TrainConfig

CORPUS = from_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 80, name="cats")
TINY = dict(context=16, n_layer=1, n_head=2, n_embd=16)


# One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_training_job_feeds_series_records_run_and_saves_model():
    reg = JobRegistry(slots=Slots(1))
    cfg = TrainConfig(steps=4, batch_size=4, eval_every=2, eval_tokens=64)
    job = reg.submit("t", training_job(CORPUS, "char", TINY, cfg, CausalLM(), session="s1"))
    assert job.wait(120) and job.status == "done", job.error
    out = job.result
    assert isinstance(out, TrainOutcome) and out.result.steps == 4
    snap = job.snapshot()
    assert snap["train"]["step"] == [1, 2, 3, 4]
    assert snap["eval"]["step"] == [2, 4] and "layer 0" in snap["grad"]
    assert len(snap["memory"]["rss_mb"]) >= 1 and job.progress == 1.0
    run = RunStore().get(out.run_id, session="s1")
    assert run.status == "done" and run.checkpoint == out.checkpoint
    assert run.final["valid_loss"] == out.result.valid_loss
    assert RunStore().list(session="someone else") == []
    loaded = load_model(out.checkpoint)
    assert loaded.tokenizer.vocab_size == out.tokenizer.vocab_size
    assert loaded.extra["run_id"] == out.run_id
    assert job.pid != os.getpid()  # trained in a worker process; the page loads the weights:
    sd, ref = out.model.state_dict(), loaded.model.state_dict()
    assert sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in sd)


def test_stopped_training_job_keeps_its_model():
    reg = JobRegistry(slots=Slots(1))
    cfg = TrainConfig(steps=10_000, batch_size=4, eval_every=0, eval_tokens=64)
    job = reg.submit("t", training_job(CORPUS, "char", TINY, cfg, CausalLM()))
    while not job.snapshot().get("train"):
        assert not job.wait(0.01)
    job.stop()
    assert job.wait(120) and job.status == "stopped"
    assert isinstance(job.result, TrainOutcome) and job.result.result.status == "stopped"
    assert RunStore().get(job.result.run_id).status == "stopped"


def test_failed_training_job_says_why(monkeypatch):
    monkeypatch.setenv("LMCORE_MAX_STEPS", "2")
    reg = JobRegistry(slots=Slots(1))
    job = reg.submit("t", training_job(CORPUS, "char", TINY, TrainConfig(steps=3),
                                       CausalLM()))
    assert job.wait(120) and job.status == "failed"
    assert "max_steps" in job.error
    assert [r.status for r in RunStore().list()] == ["failed"]


def test_dynamics_job_logs_one_series_per_variant():
    reg = JobRegistry(slots=Slots(1))
    cfg = TrainConfig(steps=2, batch_size=2, eval_every=0, eval_tokens=32, memory_every=0)
    job = reg.submit("d", dynamics_job("optimizers", CORPUS, TINY, cfg, CausalLM()))
    assert job.wait(120) and job.status == "done", job.error
    assert set(job.snapshot()) == {"SGD", "SGD + momentum", "Adam", "AdamW"}
    assert [r.label for r in job.result] == ["SGD", "SGD + momentum", "Adam", "AdamW"]


def test_jobfeed_and_the_run_store_keep_the_cuda_peak():
    job = Job("t")
    feed = JobFeed(JobContext(job), RSSSampler())
    step = Step(step=1, steps=2, loss=3.0, lr=1e-3, grad_norm=1.0, grad_norms={"layer 0": 1.0},
                clipped=False, tokens_per_s=100.0, elapsed_s=0.5, rss=2**30,
                cuda_peak=3 * 2**20)
    feed(step)
    feed(dataclasses.replace(step, step=2, cuda_peak=None))
    assert job.snapshot()["train"]["cuda_peak_mb"] == [3.0, None]
    assert step_values(step)["cuda_peak_mb"] == 3.0
    assert "cuda_peak_mb" not in step_values(dataclasses.replace(step, cuda_peak=None))


def test_same_seed_same_run_and_the_outcome_names_its_corpus():
    reg = JobRegistry(slots=Slots(1))
    cfg = TrainConfig(steps=3, batch_size=4, eval_every=0, eval_tokens=64, seed=5)
    a, b = (reg.submit("t", training_job(CORPUS, "char", TINY, cfg, CausalLM()))
            for _ in range(2))
    assert a.wait(120) and b.wait(120) and a.status == b.status == "done"
    assert a.result.result.losses == b.result.result.losses  # the initial weights are seeded
    assert a.result.corpus_fingerprint == CORPUS.fingerprint


def test_too_many_parameters_are_refused_before_the_model_is_built(monkeypatch):
    monkeypatch.setenv("LMCORE_MAX_PARAMS", "1000")
    built = []
    monkeypatch.setattr("lmcore.app.train_job.Transformer",
                        lambda cfg: built.append(cfg) or Transformer(cfg))
    # in this process (run_here), where the patched constructor is the one the job calls
    job = run_here(training_job(CORPUS, "char", TINY, TrainConfig(steps=2), CausalLM()))
    assert job.status == "failed"
    assert "exceeds the limit max_params=1,000" in job.error and not built
    assert RunStore().list() == []

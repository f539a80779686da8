"""One budget, three objectives: shared initial weights, comparable rows, stop and progress
during scoring."""

from __future__ import annotations

import random
import threading

import pytest
import torch
from objective_models import V, token_data

from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.transformer import TransformerConfig
from lmcore.train.fair_metrics import Scoring, ScoringStopped, fair_metrics
from lmcore.train.one_budget import build_models, train_and_score, work_plan
from lmcore.train.trainer import TrainConfig


def test_build_models_share_initial_weights_and_differ_in_mask():
    cfg = TransformerConfig(vocab_size=V, context=8, n_layer=1, n_head=2, n_embd=16)
    models = build_models(cfg, seed=3, nsp=True)
    assert {n: m.config.mask for n, m in models.items()} == {
        "causal": "causal", "prefix": "prefix", "masked": "bidirectional"}
    sd = {n: m.state_dict() for n, m in models.items()}
    for k, v in sd["causal"].items():
        assert torch.equal(v, sd["prefix"][k]) and torch.equal(v, sd["masked"][k]), k
    assert models["masked"].nsp is not None and models["causal"].nsp is None


def test_train_and_score_gives_comparable_rows():
    tok = train_tokenizer("char", "abcdefgh")
    data = token_data("abcdefgh" * 40, tok)
    cfg = TransformerConfig(vocab_size=tok.vocab_size, context=8, n_layer=1, n_head=2,
                            n_embd=16)
    tcfg = TrainConfig(steps=2, batch_size=4, eval_every=0, eval_tokens=48, memory_every=0)
    runs = {n: train_and_score(n, m, data, tcfg, tokenizer=tok)
            for n, m in build_models(cfg).items()}
    suffix = [r for run in runs.values() for r in run.metrics if r.metric.startswith("suffix")]
    assert len(suffix) == 2 and suffix[0].tokens == suffix[1].tokens
    assert runs["masked"].metrics[0].pseudo
    assert all(run.ranks.shape == (1, 2) and run.result.status == "done"
               for run in runs.values())


def _setup(nsp=False, context=8, eval_tokens=48):
    tok = train_tokenizer("char", "abcdefgh")
    data = token_data("".join(random.Random(2).choice("abcdefgh") for _ in range(900)), tok)
    cfg = TransformerConfig(vocab_size=tok.vocab_size, context=context, n_layer=1, n_head=2,
                            n_embd=16)
    tcfg = TrainConfig(steps=2, batch_size=4, eval_every=0, eval_tokens=eval_tokens,
                       memory_every=0)
    return tok, data, build_models(cfg, nsp=nsp), tcfg


def test_a_stop_set_before_training_skips_scoring():
    tok, data, models, tcfg = _setup()
    stop = threading.Event()
    stop.set()
    events = []
    run = train_and_score("masked", models["masked"], data, tcfg, tokenizer=tok,
                          callback=events.append, stop=stop)
    assert run.status == "stopped" and run.metrics == [] and run.ranks is None
    assert run.result.steps == 0
    assert not any(isinstance(e, Scoring) for e in events)


def test_a_stop_during_scoring_ends_it_at_the_next_batch():
    tok, data, models, tcfg = _setup(eval_tokens=400)
    stop = threading.Event()
    events = []

    def callback(e):
        events.append(e)
        if isinstance(e, Scoring) and e.done > 0:
            stop.set()  # the job's Stop button or its time limit, during the first stage

    run = train_and_score("masked", models["masked"], data, tcfg, tokenizer=tok,
                          callback=callback, stop=stop)
    assert run.status == "stopped" and run.metrics == [] and run.ranks is None
    scoring = [e for e in events if isinstance(e, Scoring)]
    assert events[-1] is scoring[-1] and scoring[-1].done < scoring[-1].total
    assert sum(e.done > 0 for e in scoring) == 1  # no batch ran after the stop
    with pytest.raises(ScoringStopped):
        fair_metrics({"causal": models["causal"]}, data, 8, tokenizer=tok, stop=stop)


@pytest.mark.parametrize("name,nsp", [("causal", False), ("prefix", False), ("masked", True)])
def test_scoring_progress_counts_up_to_the_planned_work(name, nsp):
    tok, data, models, tcfg = _setup(nsp=nsp)
    events = []
    run = train_and_score(name, models[name], data, tcfg, tokenizer=tok, nsp=nsp,
                          callback=events.append)
    assert run.status == "done" and run.metrics
    scoring = [e for e in events if isinstance(e, Scoring)]
    done = [e.done for e in scoring]
    assert done == sorted(done) and done[-1] == scoring[-1].total
    assert scoring[-1].total == work_plan(name, data, tcfg, 8, nsp)[1]
    assert scoring[-1].stage.endswith("attention effective rank")

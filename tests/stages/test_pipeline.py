"""The three stages at the default budget: SFT beats the model before it by a clear margin,
DPO raises the held-out win rate; every stage saves, reloads and is recorded."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lmcore.data.builtin import pydoc_corpus
from lmcore.runs.store import RunStore
from lmcore.stages.pipeline import (
    DPO_DEFAULTS,
    SFT_DEFAULTS,
    PretrainConfig,
    accuracy_table,
    instructions_for,
    load_stage,
    pretrain,
    run_dpo,
    run_sft,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    home = tmp_path_factory.mktemp("stages-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("LMCORE_HOME", str(home))
    corpus = pydoc_corpus()
    data = instructions_for(corpus)
    base = pretrain(corpus, PretrainConfig())
    sft, acc = run_sft(base, data, SFT_DEFAULTS, corpus=corpus)
    dpo, pref = run_dpo(sft, data, DPO_DEFAULTS, corpus=corpus)
    yield dict(corpus=corpus, data=data, base=base, sft=sft, acc=acc, dpo=dpo, pref=pref,
               home=home)
    mp.undo()


def test_sft_beats_the_model_before_it_by_a_clear_margin(stages):
    acc = stages["acc"]
    assert acc["after"]["all"] >= acc["before"]["all"] + 0.3, acc
    assert acc["after"]["upper"] >= 0.5 and acc["after"]["reverse"] >= 0.5, acc


def test_dpo_raises_the_preferred_response_win_rate(stages):
    before, after = stages["pref"]["before"], stages["pref"]["after"]
    assert before["margin"] == 0.0 and before["kl"] == pytest.approx(0.0, abs=1e-9)
    assert after["win_rate"] > before["win_rate"], (before, after)
    assert after["margin"] > 0 and 0 < after["kl"] < 1.0, after
    assert all(p.chosen != p.rejected for p in stages["pref"]["test_pairs"])


def test_every_stage_reloads_with_the_same_answers_and_is_recorded(stages, monkeypatch):
    monkeypatch.setenv("LMCORE_HOME", str(stages["home"]))
    data = stages["data"]
    for name in ("base", "sft", "dpo"):
        sm = stages[name]
        again = load_stage(sm.run_id)  # by run id, through the run store
        assert again.stage == sm.stage
        for a, b in zip(again.model.state_dict().values(), sm.model.state_dict().values(),
                        strict=True):
            assert torch.equal(a, b)
        run = RunStore().get(sm.run_id)
        assert run.config["stage"] == sm.stage and run.checkpoint == sm.checkpoint
    rows = accuracy_table({"pretrain": stages["base"], "sft": stages["sft"],
                           "dpo": stages["dpo"]}, data)
    assert rows[1]["all"] == pytest.approx(stages["acc"]["after"]["all"])
    assert RunStore().get(stages["dpo"].run_id).config["from_run"] == stages["sft"].run_id


def test_a_stage_refuses_a_model_of_the_wrong_kind(stages):
    with pytest.raises(ValueError, match="DPO starts from a sft or dpo model"):
        run_dpo(stages["base"], stages["data"], dataclasses.replace(DPO_DEFAULTS, steps=1))

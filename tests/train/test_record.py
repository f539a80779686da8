"""train_recorded: the one train -> save -> record sequence of the app's job and `lmcore train`."""

from __future__ import annotations

import pytest
import torch

from lmcore.data.corpus import from_text
from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.checkpoint import load_model
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.runs.store import RunStore
from lmcore.train.data import TokenData
from lmcore.train.objectives import CausalLM
from lmcore.train.record import Recorder, train_recorded
from lmcore.train.trainer import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CORPUS = from_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 60, name="cats")


def _setup(tmp_path):
    tok = train_tokenizer("char", CORPUS.split().train)
    data = TokenData.from_corpus(CORPUS, tok)
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=16, n_layer=1,
                                          n_head=2, n_embd=16))
    store = RunStore()
    run_id = store.create("t", {}, corpus_name=CORPUS.name,
                          corpus_fingerprint=CORPUS.fingerprint)
    return tok, data, model, store, run_id, tmp_path / "model"


def test_a_finished_run_is_recorded_saved_and_points_at_its_checkpoint(tmp_path):
    tok, data, model, store, run_id, out = _setup(tmp_path)
    events = []
    result = train_recorded(model, CausalLM(), data, TrainConfig(steps=3, batch_size=4,
                                                                 eval_tokens=64),
                            Recorder(store, run_id, then=events.append), tokenizer=tok,
                            corpus=CORPUS, out=out)
    assert result.status == "done" and len(events) >= 4  # 3 steps and the end, chained
    run = store.get(run_id)
    assert run.status == "done" and run.checkpoint == str(out)
    assert run.final["valid_loss"] == result.valid_loss
    loaded = load_model(out)
    assert loaded.extra["run_id"] == run_id
    assert loaded.extra["corpus_fingerprint"] == CORPUS.fingerprint
    for name, p in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], p), name


def test_a_refusal_before_the_first_step_finishes_the_run_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("LMCORE_MAX_STEPS", "2")
    tok, data, model, store, run_id, out = _setup(tmp_path)
    with pytest.raises(ValueError, match="max_steps"):
        train_recorded(model, CausalLM(), data, TrainConfig(steps=3), Recorder(store, run_id),
                       tokenizer=tok, corpus=CORPUS, out=out)
    run = store.get(run_id)
    assert run.status == "failed" and "max_steps" in run.error and not out.exists()


def test_a_failure_during_training_saves_nothing(tmp_path, monkeypatch):
    tok, data, model, store, run_id, out = _setup(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("the loss went away")

    monkeypatch.setattr(CausalLM, "loss", broken)
    result = train_recorded(model, CausalLM(), data, TrainConfig(steps=3, batch_size=4),
                            Recorder(store, run_id), tokenizer=tok, corpus=CORPUS, out=out)
    assert result.status == "failed" and "the loss went away" in result.error
    assert store.get(run_id).status == "failed" and store.get(run_id).checkpoint is None
    assert not out.exists()

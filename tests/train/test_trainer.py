"""The trainer: reproducible, stoppable, resumable after a kill, errors as events, exact rules."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from safetensors import safe_open

from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.settings import LimitError
from lmcore.train.data import TokenData
from lmcore.train.objectives import CausalLM
from lmcore.train.trainer import (
    STATE_FILE,
    UPDATE_RULES,
    Done,
    Error,
    Eval,
    Step,
    TrainConfig,
    evaluate,
    layer_groups,
    train,
)

TEXT = ("the cat sat on the mat. the dog sat on the log. " * 40
        + "a bird sang in the tree; the cat did not. " * 10)


# One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer("char", TEXT)


@pytest.fixture(scope="module")
def data(tok):
    cut = int(len(TEXT) * 0.85)
    return TokenData.from_text(tok, TEXT[:cut], TEXT[cut:], "fp")


def _model(tok, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=tok.vocab_size, context=16, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return Transformer(TransformerConfig(**cfg))


def _cfg(**kw):
    base = dict(steps=8, batch_size=4, eval_every=4, eval_tokens=64, warmup_steps=2, lr=1e-2)
    base.update(kw)
    return TrainConfig(**base)


def test_same_seed_same_losses_other_seed_differs(tok, data):
    a = train(_model(tok), CausalLM(), data, _cfg(seed=1))
    b = train(_model(tok), CausalLM(), data, _cfg(seed=1))
    c = train(_model(tok), CausalLM(), data, _cfg(seed=2))
    assert a.status == b.status == "done" and a.steps == 8
    assert a.losses == b.losses and len(a.losses) == 8
    assert a.losses != c.losses
    assert a.valid_loss == b.valid_loss and math.isfinite(a.valid_loss)


def test_events_carry_the_numbers(tok, data):
    events = []
    res = train(_model(tok), CausalLM(), data, _cfg(grad_clip=1e-3, memory_every=4),
                callback=events.append)
    steps = [e for e in events if isinstance(e, Step)]
    evals = [e for e in events if isinstance(e, Eval)]
    assert [e.step for e in steps] == list(range(1, 9))
    assert [e.step for e in evals] == [4, 8] and isinstance(events[-1], Done)
    s = steps[0]
    assert list(s.grad_norms)[:2] == ["wte", "wpe"] and "layer 0" in s.grad_norms
    assert "layer 1" in s.grad_norms and "ln_f" in s.grad_norms
    total = math.sqrt(sum(v * v for v in s.grad_norms.values()))
    assert s.grad_norm == pytest.approx(total, rel=1e-5)
    assert all(e.clipped for e in steps)  # clip at 1e-3 always binds
    assert s.tokens_per_s > 0 and s.rss > 0 and s.saved_bytes > 0
    assert steps[1].saved_bytes is None and steps[3].saved_bytes > 0
    assert [e.lr for e in steps[:2]] == [pytest.approx(5e-3), pytest.approx(1e-2)]
    e = evals[-1]
    assert e.bits_per_token == pytest.approx(e.valid_loss / math.log(2))
    assert e.bits_per_char == pytest.approx(e.bits_per_token * data.tokens_per_char("valid"))
    assert e.perplexity == pytest.approx(math.exp(e.valid_loss))
    assert res.valid_loss == e.valid_loss and res.bits_per_char == e.bits_per_char


def test_eval_equals_a_plain_cross_entropy_loop(tok, data):
    model = _model(tok)
    got = evaluate(model, CausalLM(), data, window=17, max_tokens=64)
    windows = data.eval_windows(17, max_tokens=64)
    with torch.no_grad():
        logits = model(windows[:, :-1])
        ref = torch.nn.functional.cross_entropy(logits.flatten(0, 1),
                                                windows[:, 1:].flatten())
    assert got == pytest.approx(float(ref), rel=1e-5)


def test_training_lowers_the_held_out_loss(tok, data):
    res = train(_model(tok), CausalLM(), data, _cfg(steps=40, eval_every=20, lr=2e-2))
    first, last = res.evals[0], res.evals[-1]
    assert res.losses[-1] < res.losses[0]
    assert last.valid_loss < first.valid_loss < math.log(tok.vocab_size)


def test_stop_event_stops_at_the_next_step(tok, data):
    stop = threading.Event()
    events = []

    def cb(e):
        events.append(e)
        if isinstance(e, Step) and e.step == 3:
            stop.set()

    res = train(_model(tok), CausalLM(), data, _cfg(steps=50), callback=cb, stop=stop)
    assert res.status == "stopped" and res.steps == 3 and len(res.losses) == 3
    assert isinstance(events[-1], Done) and events[-1].status == "stopped"
    assert math.isfinite(res.valid_loss)  # the model trained so far is still evaluated


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, no checkpoint is written."""


@pytest.mark.parametrize("optimizer", ["adamw", "momentum"])
def test_resume_after_kill_gives_the_same_following_losses(tok, data, tmp_path, optimizer):
    full = train(_model(tok), CausalLM(), data, _cfg(optimizer=optimizer))

    def kill_at_6(e):
        if isinstance(e, Step) and e.step == 6:
            raise _Killed

    ck = tmp_path / "ck"
    with pytest.raises(_Killed):
        train(_model(tok), CausalLM(), data,
              _cfg(optimizer=optimizer, checkpoint_dir=str(ck), checkpoint_every=4),
              callback=kill_at_6)
    assert (ck / STATE_FILE).exists()
    fresh = _model(tok, seed=99)  # different weights: the checkpoint must restore them
    resumed = train(fresh, CausalLM(), data,
                    _cfg(optimizer=optimizer, checkpoint_dir=str(ck), checkpoint_every=4),
                    resume_from=ck)
    assert resumed.status == "done" and resumed.steps == 8
    assert resumed.losses == full.losses[4:]
    assert resumed.valid_loss == full.valid_loss
    with safe_open(str(ck / STATE_FILE), framework="pt") as f:  # safetensors, not pickle
        assert "rng.gen" in f.keys() and '"step": 8' in f.metadata()["lmcore"]
    assert not list(ck.glob(".tmp-*"))  # atomic writes leave no temp files


def test_resume_refuses_another_model(tok, data, tmp_path):
    train(_model(tok), CausalLM(), data, _cfg(steps=2, checkpoint_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="same model config"):
        train(_model(tok, n_embd=32), CausalLM(), data, _cfg(steps=4), resume_from=tmp_path)
    with pytest.raises(FileNotFoundError, match="no training checkpoint"):
        train(_model(tok), CausalLM(), data, _cfg(steps=4), resume_from=tmp_path / "nope")


class _Flaky:
    """A causal objective that breaks at a chosen step."""

    def __init__(self, at: int, how: str):
        self.inner, self.at, self.how, self.calls = CausalLM(), at, how, 0

    def loss(self, model, batch, gen):
        if model.training:
            self.calls += 1
        loss = self.inner.loss(model, batch, gen)
        if model.training and self.calls == self.at:
            if self.how == "raise":
                raise RuntimeError("disk on fire")
            return loss * float("nan")
        return loss


def test_exception_becomes_error_event(tok, data):
    events = []
    res = train(_model(tok), _Flaky(3, "raise"), data, _cfg(), callback=events.append)
    assert res.status == "failed" and res.steps == 2
    assert isinstance(events[-1], Error) and events[-1].step == 3
    assert events[-1].message == "RuntimeError: disk on fire" == res.error


def test_nan_loss_is_an_error_that_names_the_learning_rate(tok, data):
    events = []
    res = train(_model(tok), _Flaky(2, "nan"), data, _cfg(), callback=events.append)
    assert res.status == "failed"
    assert "loss became nan at step 2" in res.error and "learning rate" in res.error
    assert isinstance(events[-1], Error)


def test_sgd_runs_exactly_its_update_rule(tok, data):
    model = _model(tok)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = _cfg(steps=1, optimizer="sgd", warmup_steps=0, lr=0.5, min_lr=0.5, grad_clip=None)
    # the same batch and gradient, computed by hand
    ref = _model(tok)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    batch = data.batch("train", cfg.batch_size, 17, gen)
    CausalLM().loss(ref, batch, gen).backward()
    train(model, CausalLM(), data, cfg)
    for n, p in model.named_parameters():
        g = dict(ref.named_parameters())[n].grad
        torch.testing.assert_close(p.detach(), before[n] - 0.5 * g)
    assert set(UPDATE_RULES) == {"sgd", "momentum", "adam", "adamw"}


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam", "adamw"])
def test_every_optimizer_learns(tok, data, opt):
    lr = {"sgd": 0.5, "momentum": 0.1}.get(opt, 1e-2)
    res = train(_model(tok), CausalLM(), data, _cfg(steps=15, optimizer=opt, lr=lr,
                                                   eval_every=0))
    assert res.status == "done"
    assert sum(res.losses[-3:]) < sum(res.losses[:3])


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(steps=110, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert cfg.lr_at(5) == pytest.approx(0.5) and cfg.lr_at(10) == pytest.approx(1.0)
    assert cfg.lr_at(60) == pytest.approx(0.55) and cfg.lr_at(110) == pytest.approx(0.1)


def test_limits_and_bad_config_raise_before_training(tok, data, monkeypatch):
    monkeypatch.setenv("LMCORE_MAX_STEPS", "5")
    with pytest.raises(LimitError, match="max_steps"):
        train(_model(tok), CausalLM(), data, _cfg(steps=6))
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lion")
    monkeypatch.delenv("LMCORE_MAX_STEPS")
    short = TokenData.from_ids([1, 2, 3], [1, 2, 3], 3, 3)
    with pytest.raises(ValueError, match="smaller context"):
        train(_model(tok), CausalLM(), short, _cfg())


def test_layer_groups_follow_depth(tok):
    groups = layer_groups(_model(tok, n_layer=3))
    assert list(groups) == ["wte", "wpe", "layer 0", "layer 1", "layer 2", "ln_f"]


def test_norm_of_a_group_without_gradients_lives_on_the_parameters_device():
    from lmcore.train.trainer import _norm

    p = torch.nn.Parameter(torch.ones(3, device="meta"))  # stands in for a CUDA parameter
    assert _norm([p]).device == p.device  # torch.stack of mixed devices would fail
    q = torch.nn.Parameter(torch.ones(2))
    q.grad = torch.tensor([3.0, 4.0])
    assert float(_norm([q])) == 5.0


def test_seeded_builds_the_same_weights_and_leaves_the_global_rng_alone(tok):
    from lmcore.train.trainer import seeded

    cfg = TransformerConfig(vocab_size=tok.vocab_size, context=8, n_layer=1, n_head=2,
                            n_embd=8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = seeded(lambda: Transformer(cfg), 7)
    assert torch.equal(torch.get_rng_state(), before)
    b = seeded(lambda: Transformer(cfg), 7)
    c = seeded(lambda: Transformer(cfg), 8)
    assert torch.equal(a.wte.weight, b.wte.weight) and not torch.equal(a.wte.weight, c.wte.weight)


def test_saved_step_checks_without_loading(tok, data, tmp_path):
    from lmcore.train.trainer import saved_step

    train(_model(tok), CausalLM(), data, _cfg(steps=2, checkpoint_dir=str(tmp_path)))
    assert saved_step(tmp_path, _model(tok), _cfg(steps=4)) == 2
    with pytest.raises(ValueError, match="same model config"):
        saved_step(tmp_path, _model(tok, n_embd=32), _cfg(steps=4))
    with pytest.raises(ValueError, match="same optimizer"):
        saved_step(tmp_path, _model(tok), _cfg(steps=4, optimizer="sgd"))
    with pytest.raises(ValueError, match="at step 2 already"):
        saved_step(tmp_path, _model(tok), _cfg(steps=2))
    with pytest.raises(FileNotFoundError, match="no training checkpoint"):
        saved_step(tmp_path / "nope", _model(tok), _cfg(steps=4))


def _stale_temps(folder):
    """What a kill during a checkpoint left: an empty temp file, of an older lmcore (no pid in
    the name, an hour old) and of a dead process."""
    import os
    import subprocess
    import sys
    import time

    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    legacy = folder / ".tmp-k1ll3d.safetensors"
    dead = folder / f".train_state.safetensors.{proc.pid}.x9y8z7.tmp"
    for f in (legacy, dead):
        f.write_bytes(b"")
    os.utime(legacy, (time.time() - 3600, time.time() - 3600))
    return [legacy, dead]


def test_stale_checkpoint_temps_are_removed_on_the_next_save_and_on_resume(tok, data,
                                                                           tmp_path):
    from lmcore.models.checkpoint import save_model
    from lmcore.train.trainer import saved_step

    temps = _stale_temps(tmp_path)
    train(_model(tok), CausalLM(), data, _cfg(steps=2, checkpoint_dir=str(tmp_path)))
    assert not any(f.exists() for f in temps)  # the next save cleaned them
    temps = _stale_temps(tmp_path)
    assert saved_step(tmp_path, _model(tok), _cfg(steps=4)) == 2
    assert not any(f.exists() for f in temps)  # and so does a resume
    temps = _stale_temps(tmp_path / "model")
    save_model(tmp_path / "model", _model(tok), tok)
    assert not any(f.exists() for f in temps)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_a_damaged_training_state_is_a_value_error(tok, data, tmp_path):
    from lmcore.train.trainer import STATE_FILE, saved_step

    train(_model(tok), CausalLM(), data, _cfg(steps=2, checkpoint_dir=str(tmp_path)))
    state = tmp_path / STATE_FILE
    state.write_bytes(state.read_bytes()[:200])  # cut off, as by a full disk
    with pytest.raises(ValueError, match="damaged or not lmcore's"):
        saved_step(tmp_path, _model(tok), _cfg(steps=4))
    state.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="damaged or not lmcore's"):
        saved_step(tmp_path, _model(tok), _cfg(steps=4))


@pytest.mark.parametrize("field, value", [("eval_every", -1), ("grad_clip", -1.0),
                                          ("grad_clip", float("nan")), ("checkpoint_every", -1),
                                          ("eval_tokens", 0), ("weight_decay", float("inf")),
                                          ("min_lr", -1.0), ("context", 0)])
def test_nonsense_config_values_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})

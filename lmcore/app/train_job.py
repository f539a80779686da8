"""Training as a background job: trainer events into the job's series, the run into the store.

`run_training` and `run_dynamics` are job bodies: module-level functions of `ctx` and plain
arguments that run in a job's worker process and never call streamlit. `training_job` and
`dynamics_job` bind the arguments (`functools.partial`) for `registry().submit`. The page reads
the series with `job.snapshot()`; a finished training hands back a `TrainOutcome` naming the
safetensors checkpoint the run store keeps, which the page loads with `outcome.model`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from lmcore.app.jobs import JobContext
from lmcore.data.corpus import Corpus
from lmcore.data.tokenizers import Tokenizer, train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.runs.store import RunStore, models_root
from lmcore.settings import get_settings
from lmcore.train.data import TokenData
from lmcore.train.dynamics import COMPARISONS, VariantResult, run_comparison
from lmcore.train.estimate import count_parameters
from lmcore.train.memory import RSSSampler, training_state_bytes
from lmcore.train.record import Recorder, eval_values, train_recorded
from lmcore.train.trainer import (
    Eval,
    Event,
    Step,
    TrainConfig,
    TrainResult,
    seeded,
)


@dataclass
class TrainOutcome:
    """What a finished training job hands the page: plain data and the checkpoint's path."""

    tokenizer: Tokenizer
    result: TrainResult
    run_id: str
    checkpoint: str  # safetensors folder kept by the run store (reloadable from Runs)
    corpus_fingerprint: str  # the corpus it was trained on: a page drops it after a switch
    _model: Transformer | None = field(default=None, repr=False, compare=False)

    @property
    def model(self) -> Transformer:
        """The trained model, loaded from the checkpoint with lmcore's loader (once)."""
        if self._model is None:
            from lmcore.models.checkpoint import load_model

            self._model = load_model(self.checkpoint).model
        return self._model


def get_tokenizer(corpus: Corpus, kind: str, vocab_size: int | None = None,
                  current: Tokenizer | None = None) -> Tokenizer:
    """Reuse the session's tokenizer when it is of this kind, else train one on the corpus."""
    if current is not None and current.kind == kind and (vocab_size is None
                                                         or current.vocab_size == vocab_size):
        return current
    return train_tokenizer(kind, corpus.split().train, vocab_size=vocab_size)


class JobFeed:
    """Trainer callback that fills the job's series (train, eval, grad, memory) and progress."""

    def __init__(self, ctx: JobContext, sampler: RSSSampler, state_mb: float | None = None):
        self.ctx = ctx
        self.sampler = sampler
        self.sent = 0
        self.state_mb = state_mb  # weights + gradients + optimizer state (constant)

    def __call__(self, e: Event) -> None:
        ctx = self.ctx
        if isinstance(e, Step):
            ctx.log("train", step=e.step, loss=e.loss, lr=e.lr, tokens_per_s=e.tokens_per_s,
                    grad_norm=e.grad_norm, elapsed_s=e.elapsed_s, clipped=e.clipped,
                    saved_mb=None if e.saved_bytes is None else e.saved_bytes / 2**20,
                    cuda_peak_mb=None if e.cuda_peak is None else e.cuda_peak / 2**20,
                    state_mb=self.state_mb)
            ctx.log("grad", step=e.step, **e.grad_norms)
            ctx.progress(e.step / e.steps, f"step {e.step:,}/{e.steps:,} · loss {e.loss:.3f} · "
                                           f"{e.tokens_per_s:,.0f} tokens/s")
            times, rss = self.sampler.samples()
            for t, r in zip(times[self.sent:], rss[self.sent:], strict=True):
                ctx.log("memory", t=t, rss_mb=r / 2**20)
            self.sent = len(times)
        elif isinstance(e, Eval):
            ctx.log("eval", step=e.step, **eval_values(e))


def run_training(ctx: JobContext, *, corpus: Corpus, tokenizer_kind: str,
                 model_config: dict[str, Any], train_config: TrainConfig, objective: Any,
                 session: str | None = None, vocab_size: int | None = None,
                 tokenizer: Tokenizer | None = None) -> TrainOutcome:
    """Tokenize, build, train (recorded in the run store), save the checkpoint, return."""
    ctx.progress(0.0, "preparing the tokenizer and data…")
    tok = get_tokenizer(corpus, tokenizer_kind, vocab_size, tokenizer)
    data = TokenData.from_corpus(corpus, tok)
    mcfg = TransformerConfig(vocab_size=tok.vocab_size, **model_config)
    get_settings().check("max_params", count_parameters(mcfg))  # before allocating
    model = seeded(lambda: Transformer(mcfg), train_config.seed)
    store = RunStore()
    run_id = store.create(
        f"transformer {mcfg.n_layer}x{mcfg.n_embd} ({tok.kind})",
        {"model": mcfg.to_dict(), "train": dataclasses.asdict(train_config),
         "tokenizer": tok.kind},
        corpus_name=corpus.name, corpus_fingerprint=corpus.fingerprint,
        tokenizer=f"{tok.kind} ({tok.vocab_size})", session=session)
    out = models_root() / run_id
    tcfg = dataclasses.replace(train_config, checkpoint_dir=str(out))
    ctx.set("run_id", run_id)
    with RSSSampler(interval=0.05) as sampler:
        feed = JobFeed(ctx, sampler, training_state_bytes(model, tcfg.optimizer) / 2**20)
        result = train_recorded(model, objective, data, tcfg,
                                Recorder(store, run_id, then=feed), tokenizer=tok,
                                corpus=corpus, out=out, stop=ctx.stop)
    if result.status == "failed":
        raise ValueError(f"training failed at step {result.steps + 1}: {result.error}")
    return TrainOutcome(tok, result, run_id, str(out), corpus.fingerprint)


def training_job(corpus: Corpus, tokenizer_kind: str, model_config: dict[str, Any],
                 train_config: TrainConfig, objective: Any, *, session: str | None = None,
                 vocab_size: int | None = None, tokenizer: Tokenizer | None = None
                 ) -> functools.partial:
    """`run_training` with its arguments bound: what a page submits."""
    return functools.partial(run_training, corpus=corpus, tokenizer_kind=tokenizer_kind,
                             model_config=model_config, train_config=train_config,
                             objective=objective, session=session, vocab_size=vocab_size,
                             tokenizer=tokenizer)


def run_dynamics(ctx: JobContext, *, kind: str, corpus: Corpus, model_config: dict[str, Any],
                 train_config: TrainConfig, objective: Any) -> list[VariantResult]:
    """Run comparison `kind` with char tokens; one loss series per variant."""
    total = len(COMPARISONS[kind][1]) * train_config.steps
    ctx.progress(0.0, "preparing the data…")
    tok = train_tokenizer("char", corpus.split().train)
    data = TokenData.from_corpus(corpus, tok)
    done = [0]

    def on_event(label: str, e: Event) -> None:
        if isinstance(e, Step):
            done[0] += 1
            ctx.log(label, step=e.step, loss=e.loss, grad_norm=e.grad_norm)
            ctx.progress(done[0] / total, f"{label}: step {e.step}/{e.steps}")

    mcfg = TransformerConfig(vocab_size=tok.vocab_size, **model_config)
    return run_comparison(kind, mcfg, train_config, data, objective, on_event=on_event,
                          stop=ctx.stop)


def dynamics_job(kind: str, corpus: Corpus, model_config: dict[str, Any],
                 train_config: TrainConfig, objective: Any) -> functools.partial:
    """`run_dynamics` with its arguments bound: what a page submits."""
    return functools.partial(run_dynamics, kind=kind, corpus=corpus, model_config=model_config,
                             train_config=train_config, objective=objective)

"""Training as a background job: trainer events into the job's series, the run into the store.

The functions here build the `fn(ctx)` a page submits to the job registry. They run in the
job's thread and never call streamlit; the page reads the series with `job.snapshot()` and,
when the job is done, takes the trained model from `job.result`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmcore.app.jobs import JobContext
from lmcore.data.corpus import Corpus
from lmcore.data.tokenizers import Tokenizer, train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.runs.store import RunStore
from lmcore.settings import get_settings
from lmcore.train.data import TokenData
from lmcore.train.dynamics import COMPARISONS, VariantResult, run_comparison
from lmcore.train.estimate import count_parameters
from lmcore.train.memory import RSSSampler
from lmcore.train.record import Recorder, eval_values
from lmcore.train.trainer import (
    Eval,
    Event,
    Step,
    TrainConfig,
    TrainResult,
    seeded,
    train,
)


@dataclass
class TrainOutcome:
    """What a finished training job hands the page."""

    model: Transformer
    tokenizer: Tokenizer
    result: TrainResult
    run_id: str
    checkpoint: str
    corpus_fingerprint: str  # the corpus it was trained on: a page drops it after a switch


def get_tokenizer(corpus: Corpus, kind: str, vocab_size: int | None = None,
                  current: Tokenizer | None = None) -> Tokenizer:
    """Reuse the session's tokenizer when it is of this kind, else train one on the corpus."""
    if current is not None and current.kind == kind and (vocab_size is None
                                                         or current.vocab_size == vocab_size):
        return current
    return train_tokenizer(kind, corpus.split().train, vocab_size=vocab_size)


class JobFeed:
    """Trainer callback that fills the job's series (train, eval, grad, memory) and progress."""

    def __init__(self, ctx: JobContext, sampler: RSSSampler):
        self.ctx = ctx
        self.sampler = sampler
        self.sent = 0

    def __call__(self, e: Event) -> None:
        ctx = self.ctx
        if isinstance(e, Step):
            ctx.log("train", step=e.step, loss=e.loss, lr=e.lr, tokens_per_s=e.tokens_per_s,
                    grad_norm=e.grad_norm, elapsed_s=e.elapsed_s, clipped=e.clipped,
                    saved_mb=None if e.saved_bytes is None else e.saved_bytes / 2**20,
                    cuda_peak_mb=None if e.cuda_peak is None else e.cuda_peak / 2**20)
            ctx.log("grad", step=e.step, **e.grad_norms)
            ctx.progress(e.step / e.steps, f"step {e.step:,}/{e.steps:,} · loss {e.loss:.3f} · "
                                           f"{e.tokens_per_s:,.0f} tokens/s")
            times, rss = self.sampler.samples()
            for t, r in zip(times[self.sent:], rss[self.sent:], strict=True):
                ctx.log("memory", t=t, rss_mb=r / 2**20)
            self.sent = len(times)
        elif isinstance(e, Eval):
            ctx.log("eval", step=e.step, **eval_values(e))


def training_job(corpus: Corpus, tokenizer_kind: str, model_config: dict[str, Any],
                 train_config: TrainConfig, objective: Any, *, session: str | None = None,
                 vocab_size: int | None = None, tokenizer: Tokenizer | None = None
                 ) -> Callable[[JobContext], TrainOutcome]:
    """A job function: tokenize, build, train (recorded in the run store), save, return."""

    def fn(ctx: JobContext) -> TrainOutcome:
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
        out = Path(get_settings().home).expanduser() / "models" / run_id
        tcfg = dataclasses.replace(train_config, checkpoint_dir=str(out))
        ctx.set("run_id", run_id)
        try:
            with RSSSampler(interval=0.05) as sampler:
                result = train(model, objective, data, tcfg,
                               callback=Recorder(store, run_id, then=JobFeed(ctx, sampler)),
                               stop=ctx.stop)
        except Exception as exc:  # refused before the first step: the run did not happen
            store.finish(run_id, "failed", {}, error=str(exc))
            raise
        if result.status == "failed":
            raise ValueError(f"training failed at step {result.steps + 1}: {result.error}")
        from lmcore.models.checkpoint import save_model

        save_model(out, model, tok, extra={"run_id": run_id, "corpus": corpus.name,
                                           "corpus_fingerprint": corpus.fingerprint,
                                           **result.summary()})
        store.update(run_id, checkpoint=str(out))
        return TrainOutcome(model, tok, result, run_id, str(out), corpus.fingerprint)

    return fn


def dynamics_job(kind: str, corpus: Corpus, model_config: dict[str, Any],
                 train_config: TrainConfig, objective: Any
                 ) -> Callable[[JobContext], list[VariantResult]]:
    """A job function running comparison `kind` with char tokens; one series per variant."""
    total = len(COMPARISONS[kind][1]) * train_config.steps

    def fn(ctx: JobContext) -> list[VariantResult]:
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

    return fn

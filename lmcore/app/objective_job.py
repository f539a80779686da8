"""The Objectives page's background jobs: train-and-score one objective, the generation demo.

`run_objective`, `run_generation` and `run_encdec_generation` are job bodies (module-level,
`ctx` first) that run in a job's worker process and never call streamlit; `objective_job` and
`generation_job` bind their arguments (`functools.partial`). Progress (training steps, then
held-out scoring) goes to `ctx.progress` as one fraction of the whole work, so the panel's ETA
covers both. These jobs take and hand back the model itself (the objectives include an
encoder-decoder, which has no safetensors checkpoint format here): lmcore's own torch modules,
pickled by the server and its workers, never by a visitor.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import torch

from lmcore.app.jobs import JobContext
from lmcore.data.corpus import Corpus
from lmcore.data.tokenizers import Tokenizer
from lmcore.models.generate import CacheTiming, time_kv_cache
from lmcore.models.transformer import Transformer
from lmcore.runs.store import RunStore
from lmcore.train.data import TokenData
from lmcore.train.fair_metrics import Scoring
from lmcore.train.fill_blanks import fillable_ids
from lmcore.train.one_budget import ObjectiveRun, train_and_score, work_plan
from lmcore.train.record import Recorder
from lmcore.train.trainer import Eval, Step, TrainConfig


@dataclass
class ObjectiveOutcome:
    """What a finished objective job hands the page."""

    run: ObjectiveRun
    tokenizer: Tokenizer
    fillable: torch.Tensor  # bool (V,): ids a blank may be filled with (printable, seen)
    run_id: str


class ObjectiveFeed:
    """Trainer + scoring callback: loss series, and progress over training and scoring."""

    def __init__(self, ctx: JobContext, name: str, train_work: int, score_work: int):
        self.ctx, self.name = ctx, name
        self.train_work, self.score_work = max(train_work, 1), max(score_work, 0)

    def __call__(self, e: Any) -> None:
        ctx, name = self.ctx, self.name
        if isinstance(e, Step):
            ctx.log("train", step=e.step, loss=e.loss)
            total = self.train_work + self.score_work
            ctx.progress(e.step / e.steps * self.train_work / total,
                         f"{name}: step {e.step}/{e.steps} · loss {e.loss:.3f}")
        elif isinstance(e, Eval):
            ctx.log("eval", step=e.step, valid_loss=e.valid_loss)
        elif isinstance(e, Scoring):
            self.score_work = e.total  # exact now
            total = self.train_work + e.total
            ctx.progress((self.train_work + e.done) / total,
                         f"{name}: scoring {e.stage.split(': ', 1)[-1]} "
                         f"({e.done / max(e.total, 1):.0%})")


def run_objective(ctx: JobContext, *, name: str, model: Transformer, data: TokenData,
                  train_config: TrainConfig, tokenizer: Tokenizer, corpus: Corpus,
                  rate: float = 0.15, nsp: bool = False,
                  session: str | None = None) -> ObjectiveOutcome:
    """Train and score objective `name`, recorded as a run in the store."""
    cfg = model.config
    store = RunStore()
    run_id = store.create(
        f"objective {name} {cfg.n_layer}x{cfg.n_embd} ({tokenizer.kind})",
        {"model": cfg.to_dict(), "objective": name, "rate": rate, "nsp": nsp,
         "train": dataclasses.asdict(train_config)},
        corpus_name=corpus.name, corpus_fingerprint=corpus.fingerprint,
        tokenizer=f"{tokenizer.kind} ({tokenizer.vocab_size})", session=session)
    ctx.set("run_id", run_id)
    context = train_config.context or cfg.context
    feed = ObjectiveFeed(ctx, name, *work_plan(name, data, train_config, context, nsp))
    try:
        run = train_and_score(name, model, data, train_config, tokenizer=tokenizer,
                              rate=rate, nsp=nsp, callback=Recorder(store, run_id, then=feed),
                              stop=ctx.stop)
    except Exception as exc:  # refused before the first step: the run did not happen
        if store.get(run_id).status == "running":
            store.finish(run_id, "failed", {}, error=str(exc))
        raise
    if run.metrics:
        final = dict(store.get(run_id).final or {})
        final["fair_metrics"] = [m.as_row() for m in run.metrics]
        store.update(run_id, final=final)
    return ObjectiveOutcome(run, tokenizer, fillable_ids(tokenizer, data.train), run_id)


def objective_job(name: str, model: Transformer, data: TokenData, train_config: TrainConfig,
                  tokenizer: Tokenizer, corpus: Corpus, *, rate: float = 0.15,
                  nsp: bool = False, session: str | None = None) -> functools.partial:
    """`run_objective` with its arguments bound: what the page submits."""
    return functools.partial(run_objective, name=name, model=model, data=data,
                             train_config=train_config, tokenizer=tokenizer, corpus=corpus,
                             rate=rate, nsp=nsp, session=session)


@dataclass
class GenerationDemo:
    """The same sampled continuation with and without the KV cache, timed step by step."""

    prompt: str
    n: int
    temperature: float
    text: str  # the new text only (first sample)
    tokens: list[str]  # first sample's tokens and probabilities
    probs: list[float]
    timing: CacheTiming  # per-step medians of both paths; speed-up for every length
    cached_steps: int
    identical: bool
    context: int
    texts: list[str] = field(default_factory=list)  # every sample's new text

    @property
    def seconds(self) -> dict[str, float]:
        """Total seconds of each path ('cache', 'no cache') for all `n` tokens."""
        return {label: self.timing.total(label) for label in self.timing.seconds}


class GenerationStopped(Exception):
    """Raised from a forward hook when the job is asked to stop mid-generation."""


def run_generation(ctx: JobContext, *, model: Transformer, tokenizer: Tokenizer, prompt: str,
                   n: int, temperature: float = 0.8, seed: int = 0, repeats: int = 3,
                   samples: int = 8) -> GenerationDemo:
    """Generate `samples` continuations of `n` tokens at once (one batch, as a server does),
    with the KV cache and without (`repeats` times each, per-step medians: `time_kv_cache`).

    Why a batch: a tiny model's step is mostly fixed per-call cost (Python, small matrix
    products), which hides the work the cache saves; a batch multiplies the work, not the cost.

    Generation runs on a private copy of the model, whose forward hook stops the loop (by
    raising) once the job's stop event is set; progress is reported between runs, never
    inside a timed step. Both paths are timed on one torch thread: a tiny model's small
    products gain nothing from a second thread, and on a busy machine (a browser and a server
    beside the job) a second thread waits out whole time slices at every operation.
    """
    from lmcore.info.threads import one_torch_thread

    ids = torch.tensor([[tokenizer.bos_id] + tokenizer.encode(prompt)] * max(1, samples))
    m = copy.deepcopy(model)
    runs = {"done": 0}
    total = 2 * max(1, repeats)

    def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        if ctx.stop.is_set():
            raise GenerationStopped("generation stopped")

    def on_run(label: str, r: int) -> None:
        ctx.progress(runs["done"] / total,
                     f"generating {n} tokens {'with the KV cache' if label == 'cache' else 'without a cache'}"
                     f" (run {r + 1} of {max(1, repeats)})")
        runs["done"] += 1

    handle = m.register_forward_hook(hook)
    try:
        with one_torch_thread():
            timing = time_kv_cache(m, ids, n, temperature=temperature, seed=seed,
                                   repeats=repeats, on_run=on_run)
    finally:
        handle.remove()
    out = timing.generation
    new = out.new[0].tolist()
    return GenerationDemo(prompt=prompt, n=n, temperature=temperature,
                          text=tokenizer.decode(new), tokens=tokenizer.token_strings(new),
                          probs=out.probs[0].tolist(), timing=timing,
                          cached_steps=out.cached_steps, identical=timing.identical,
                          context=m.config.context,
                          texts=[tokenizer.decode(row.tolist()) for row in out.new])


def generation_job(model: Transformer, tokenizer: Tokenizer, prompt: str, n: int, *,
                   temperature: float = 0.8, seed: int = 0, repeats: int = 3,
                   samples: int = 8) -> functools.partial:
    """`run_generation` with its arguments bound (a bad `n` or `samples` is refused here)."""
    if n < 1:
        raise ValueError(f"ask for at least one token, got {n}")
    if not 1 <= samples <= 64:
        raise ValueError(f"samples at once must lie between 1 and 64, got {samples}")
    return functools.partial(run_generation, model=model, tokenizer=tokenizer, prompt=prompt,
                             n=n, temperature=temperature, seed=seed, repeats=repeats,
                             samples=samples)


def run_encdec_generation(ctx: JobContext, *, model: torch.nn.Module, tokenizer: Tokenizer,
                          prompt: str, n: int, temperature: float = 0.8,
                          seed: int = 0) -> dict[str, Any]:
    """The encoder-decoder continuing the prompt (encoder once, decoder re-run per token),
    timed, for the page's comparison with the decoder-only model's KV-cached generation."""
    import time

    from lmcore.models.encoder_decoder import generate_encdec

    ctx.progress(0.0, "encoder-decoder: generating")
    m = copy.deepcopy(model)
    ids = tokenizer.encode(prompt)
    start = time.perf_counter()
    new = generate_encdec(m, ids, n, temperature=temperature, top_k=20, seed=seed,
                          mask_id=tokenizer.mask_id, bos_id=tokenizer.bos_id)
    seconds = time.perf_counter() - start
    return {"text": tokenizer.decode(new), "n": len(new), "seconds": seconds,
            "prompt_tokens": min(len(ids), m.config.context - 1)}

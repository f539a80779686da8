"""The training stages as background jobs: each runs one stage in a worker process.

Every function takes the job's `ctx` and plain arguments, reports the loss (and held-out
numbers) as live series, and returns plain data: the saved checkpoint folder and run id, the
accuracy or preference numbers, and the answers to the page's sample prompts with each
token's probability. The page reloads a stage's model from its checkpoint when it needs it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lmcore.app.jobs import JobContext
from lmcore.data.corpus import Corpus
from lmcore.stages.chat import chat_tokenizer, grow_vocab, has_chat_tokens
from lmcore.stages.pipeline import (
    PretrainConfig,
    StageModel,
    instructions_for,
    load_stage,
    pretrain,
    run_dpo,
    run_sft,
)
from lmcore.stages.respond import answer_batch
from lmcore.stages.sft import StageConfig

SAMPLE_PROMPTS = 6  # held-out instructions answered side by side after each stage


def _feed(ctx: JobContext, series: str, label: str):
    def feed(d: dict) -> None:
        ctx.log(series, **{k: v for k, v in d.items() if k != "steps"})
        ctx.progress(d["step"] / d["steps"], f"{label}: step {d['step']:,}/{d['steps']:,} · "
                                             f"loss {d['loss']:.3f}")
    return feed


def sample_answers(sm: StageModel, prompts: list[str]) -> list[dict]:
    """Greedy answers of a stage's model to `prompts`: text, tokens and their probabilities
    (a model without chat tokens answers through the copy SFT would start from)."""
    tok, model = sm.tokenizer, sm.model
    if not has_chat_tokens(tok):
        tok = chat_tokenizer(tok)
        model = grow_vocab(model, tok.vocab_size)
    return [dataclasses.asdict(a) for a in answer_batch(model, tok, prompts)]


def sample_examples(corpus: Corpus, seed: int) -> list[dict]:
    """The held-out instructions every stage answers on the page (a few of each task)."""
    data = instructions_for(corpus, seed=seed)
    per = max(1, SAMPLE_PROMPTS // max(1, len(data.by_task())))
    picks = [ex for exs in data.by_task().values() for ex in exs[:per]][:SAMPLE_PROMPTS]
    return [dataclasses.asdict(ex) for ex in picks]


def _answers(sm: StageModel, corpus: Corpus, seed: int) -> dict[str, Any]:
    examples = sample_examples(corpus, seed)
    return {"examples": examples,
            "answers": sample_answers(sm, [ex["prompt"] for ex in examples])}


def run_pretrain_stage(ctx: JobContext, *, corpus: Corpus, config: PretrainConfig,
                       session: str | None = None) -> dict[str, Any]:
    """Stage 1 as a job: pretrain the tiny model on the corpus."""
    ctx.progress(0.0, "pretraining: preparing the tokenizer and data…")
    sm = pretrain(corpus, config, session=session, callback=_feed(ctx, "pretrain", "pretrain"),
                  stop=ctx.stop)
    return {"stage": "pretrain", "checkpoint": sm.checkpoint, "run_id": sm.run_id,
            **_answers(sm, corpus, config.seed),
            "corpus_fingerprint": corpus.fingerprint}


def _tune(ctx: JobContext, tune: Any, *, stage: str, label: str, message: str, corpus: Corpus,
          start: str, config: StageConfig, session: str | None) -> tuple[Any, ...]:
    """Load the model saved at `start` and tune it with `tune` (`run_sft`, `run_dpo`) on the
    corpus's instructions: the tuned model, `tune`'s measurements, the model it started from,
    the data, and the result fields both stages share."""
    ctx.progress(0.0, message)
    base = load_stage(start, session=session)
    data = instructions_for(corpus, seed=config.seed)
    sm, out = tune(base, data, config, corpus=corpus, session=session,
                  callback=_feed(ctx, stage, label), stop=ctx.stop)
    common = {"stage": stage, "checkpoint": sm.checkpoint, "run_id": sm.run_id,
              "before": out["before"], "after": out["after"],
              **_answers(sm, corpus, config.seed), "corpus_fingerprint": corpus.fingerprint}
    return sm, out, base, data, common


def run_sft_stage(ctx: JobContext, *, corpus: Corpus, start: str, config: StageConfig,
                  session: str | None = None) -> dict[str, Any]:
    """Stage 2 as a job: instruction-tune the model saved at `start` (folder or run id)."""
    _, _, base, data, common = _tune(
        ctx, run_sft, stage="sft", label="SFT", corpus=corpus, start=start, config=config,
        session=session,
        message="SFT: generating instructions and measuring the model before…")
    return {**common, "start_stage": base.stage, "source": data.source,
            "n_train": len(data.train), "n_test": len(data.test)}


def run_dpo_stage(ctx: JobContext, *, corpus: Corpus, start: str, config: StageConfig,
                  session: str | None = None) -> dict[str, Any]:
    """Stage 3 as a job: DPO on the SFT model saved at `start` (folder or run id)."""
    from lmcore.stages.respond import exact_match

    sm, m, _, data, common = _tune(
        ctx, run_dpo, stage="dpo", label="DPO", corpus=corpus, start=start, config=config,
        session=session, message="DPO: sampling the SFT model's answers and ranking them…")
    return {**common, "accuracy": exact_match(sm.model, sm.tokenizer, data.test),
            "train_pairs": [dataclasses.asdict(p) for p in m["train_pairs"]],
            "test_pairs": [dataclasses.asdict(p) for p in m["test_pairs"]]}

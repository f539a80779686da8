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


def run_sft_stage(ctx: JobContext, *, corpus: Corpus, start: str, config: StageConfig,
                  session: str | None = None) -> dict[str, Any]:
    """Stage 2 as a job: instruction-tune the model saved at `start` (folder or run id)."""
    ctx.progress(0.0, "SFT: generating instructions and measuring the model before…")
    base = load_stage(start, session=session)
    data = instructions_for(corpus, seed=config.seed)
    sm, acc = run_sft(base, data, config, corpus=corpus, session=session,
                      callback=_feed(ctx, "sft", "SFT"), stop=ctx.stop)
    return {"stage": "sft", "checkpoint": sm.checkpoint, "run_id": sm.run_id,
            "before": acc["before"], "after": acc["after"], "start_stage": base.stage,
            **_answers(sm, corpus, config.seed),
            "source": data.source, "n_train": len(data.train), "n_test": len(data.test),
            "corpus_fingerprint": corpus.fingerprint}


def run_dpo_stage(ctx: JobContext, *, corpus: Corpus, start: str, config: StageConfig,
                  session: str | None = None) -> dict[str, Any]:
    """Stage 3 as a job: DPO on the SFT model saved at `start` (folder or run id)."""
    from lmcore.stages.respond import exact_match

    ctx.progress(0.0, "DPO: sampling the SFT model's answers and ranking them…")
    base = load_stage(start, session=session)
    data = instructions_for(corpus, seed=config.seed)
    sm, m = run_dpo(base, data, config, corpus=corpus, session=session,
                    callback=_feed(ctx, "dpo", "DPO"), stop=ctx.stop)
    return {"stage": "dpo", "checkpoint": sm.checkpoint, "run_id": sm.run_id,
            "before": m["before"], "after": m["after"],
            "accuracy": exact_match(sm.model, sm.tokenizer, data.test),
            "train_pairs": [dataclasses.asdict(p) for p in m["train_pairs"]],
            "test_pairs": [dataclasses.asdict(p) for p in m["test_pairs"]],
            **_answers(sm, corpus, config.seed),
            "corpus_fingerprint": corpus.fingerprint}

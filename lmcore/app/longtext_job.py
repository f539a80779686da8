"""The Long-texts page's jobs: train the tiny Transformer, score a text by each strategy, sweep
the stride, build the summary tree, continue the text.

Job bodies (module-level, `ctx` first, plain arguments) that run in a job's worker process.
They get the session's language model itself (lmcore's n-gram and Transformer LMs pickle with
their tokenizers; the server pickles them, never a visitor). The tiny Transformer comes back
as a safetensors checkpoint in the job's private folder (`ctx.workdir`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmcore.data.tokenizers import Tokenizer
from lmcore.longtext.continuation import Continuation, continue_text
from lmcore.longtext.quick_model import QuickModelConfig, train_quick_transformer
from lmcore.longtext.strategies import evaluate_ids, plan_windows, plan_work
from lmcore.longtext.summarize import SummaryNode, summarize_tree
from lmcore.train.trainer import TrainResult


@dataclass
class QuickModel:
    """The tiny Transformer a training job hands back: its checkpoint folder and the run."""

    checkpoint: str
    result: TrainResult

    def load(self) -> Any:
        """The model as a language model (tiled attention, its tokenizer), via lmcore's
        checkpoint loader."""
        from lmcore.models.checkpoint import load_model

        return load_model(self.checkpoint).lm()


def run_quick_training(ctx: Any, *, train: str, valid: str, tokenizer: Tokenizer,
                       config: QuickModelConfig) -> QuickModel:
    """Train the tiny Transformer (loss series live) and save it in the job's folder."""
    from lmcore.models.checkpoint import save_model

    def cb(event: Any) -> None:
        if hasattr(event, "loss") and hasattr(event, "lr"):
            ctx.progress(event.step / event.steps, f"step {event.step}")
            ctx.log("loss", step=event.step, loss=event.loss)

    lm, res = train_quick_transformer(train, valid, tokenizer, config, callback=cb,
                                      stop=ctx.stop)
    folder = save_model(Path(ctx.workdir) / "tiny-transformer", lm)
    return QuickModel(str(folder), res)


def run_strategies(ctx: Any, *, model: Any, ids: list[int], bounds: list[int],
                   strategies: list[str], window: int, stride: int,
                   attention: str | None) -> list[dict]:
    """Score the text by each strategy; one series point per window, memory as it goes."""
    rows, t_job = [], time.perf_counter()
    # progress in token positions read, so the ETA holds across strategies
    works = [plan_work(plan_windows(len(ids), name, window if name != "full"
                                    else max(len(ids), 1), stride))
             for name in strategies]
    total = max(1, sum(wk[-1] if wk else 0 for wk in works))
    before = 0
    for name, work in zip(strategies, works, strict=True):
        label = f"{name} S={stride}" if name == "sliding" else name
        offset = time.perf_counter() - t_job
        n_win = max(1, len(work))

        def on_window(ws: Any, label: str = label, offset: float = offset, n_win: int = n_win,
                      work: list[int] = work, before: int = before) -> None:
            ctx.log("windows", strategy=label, index=ws.index, tokens=ws.tokens,
                    chars=ws.chars, bits_per_char=round(ws.bits_per_char, 4),
                    seconds=round(ws.seconds, 4), t=offset + ws.t_end, rss_mb=ws.rss / 2**20)
            done = before + work[min(ws.index, len(work) - 1)]
            ctx.progress(done / total, f"{label}: window {ws.index + 1}/{n_win}")

        def on_memory(t: float, rss: int, label: str = label, offset: float = offset) -> None:
            ctx.log("rss", strategy=label, t=offset + t, mb=rss / 2**20)

        r = evaluate_ids(model, ids, bounds, name, window=window, stride=stride,
                         attention=attention, on_window=on_window, on_memory=on_memory,
                         stop=ctx.stop)
        rows.append(r.summary())
        before += work[-1] if work else 0
        if ctx.stop.is_set():
            break
    return rows


def run_stride_sweep(ctx: Any, *, model: Any, ids: list[int], bounds: list[int], window: int,
                     strides: list[int], attention: str | None) -> list[dict]:
    """The sliding window at each stride (S = window is disjoint chunks)."""
    out, done = [], 0
    works = [(plan_work(plan_windows(len(ids), "sliding", window, s)) or [1])[-1]
             for s in strides]  # stride S reads about W/S times the text
    for i, s in enumerate(strides):
        if ctx.stop.is_set():
            break
        r = evaluate_ids(model, ids, bounds, "sliding", window=window, stride=s,
                         attention=attention, stop=ctx.stop)
        ctx.log("sweep", stride=s, bits_per_char=r.bits_per_char, seconds=r.seconds)
        done += works[i]
        ctx.progress(done / sum(works), f"stride {s}")
        out.append(r.summary())
    return out


def run_summary(ctx: Any, *, text: str, summarizer: Any, budget: int, chunk_size: int,
                fan_in: int) -> tuple[SummaryNode, str]:
    """The map-reduce summary tree of `text`; returns (root, the summarizer's method)."""

    def on_node(node: SummaryNode, done: int, total: int) -> None:
        ctx.progress(done / total, f"summary {done}/{total} (level {node.level})")

    root = summarize_tree(text, summarizer, budget=budget, chunk_size=chunk_size,
                          fan_in=fan_in, on_node=on_node, stop=ctx.stop)
    return root, summarizer.method


def run_continuation(ctx: Any, *, model: Any, tokenizer: Tokenizer, text: str, n: int,
                     window: int | None, seed: int, temperature: float) -> Continuation:
    """Continue `text` by `n` tokens from its last window (one model call per token)."""
    return continue_text(model, tokenizer, text, n, window=window, seed=seed,
                         temperature=temperature, stop=ctx.stop,
                         on_token=lambda done, total: ctx.progress(done / total,
                                                                   f"token {done}/{total}"))

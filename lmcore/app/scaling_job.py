"""The Scaling & emergence page's background jobs: one module-level body per experiment.

Each body takes the job context first and only plain arguments (numbers, strings, lists, a
Corpus), reports progress and live-chart points through `ctx`, checks `ctx.stop` through the
library's stop event, and returns plain data (dicts, lists, lmcore result dataclasses). They
never touch streamlit. Submit as `registry().submit(name, functools.partial(run_x, ...))`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lmcore.data.corpus import Corpus
from lmcore.scaling.chain_of_thought import CoTConfig, CoTResult, cot
from lmcore.scaling.emergence import EmergenceConfig, EmergenceResult, emergence
from lmcore.scaling.fewshot import FewShotConfig, FewShotResult, fewshot
from lmcore.scaling.induction import InductionConfig, InductionResult, induction
from lmcore.scaling.laws import laws, optima_rows
from lmcore.scaling.sweep import (
    Shape,
    SweepConfig,
    budget_sweep,
    default_budgets,
    isoflop_sweep,
    prepare,
    size_sweep,
)

SWEEPS = ("size", "budget", "isoflop")


def run_scaling(ctx: Any, *, kind: str, corpus: Corpus, shapes: list[str],
                steps: list[int], budgets: list[float] | None = None,
                config: dict[str, Any] | None = None, session: str | None = None,
                n_boot: int = 200) -> dict[str, Any]:
    """One scaling sweep (`kind` in SWEEPS); returns points, fits and IsoFLOP optima.

    size: every shape for steps[0] steps; budget: shapes[0] for each of `steps`; isoflop:
    every shape at each budget in `budgets` (default: three budgets from the largest shape).
    """
    if kind not in SWEEPS:
        raise ValueError(f"sweep must be one of {SWEEPS}, got {kind!r}")
    cfg = SweepConfig(**(config or {}))
    ladder = [Shape.parse(s) for s in shapes]
    ctx.progress(0.0, "tokenizing the corpus…")
    data, tok = prepare(corpus)
    last = {"label": ""}

    def on_step(_, e) -> None:
        if e.step % 5 == 0 or e.step == e.steps:
            ctx.log(f"run {last['label']}", step=e.step, loss=e.loss)

    def on_point(p) -> None:
        ctx.log("points", label=p.label, non_embedding=p.non_embedding, tokens=p.tokens,
                flops=p.flops, bits_per_char=p.bits_per_char, budget=p.budget)

    def on_progress(frac: float, message: str) -> None:
        # 'run 2/6 1x24: step …' names the run whose loss curve is being drawn
        last["label"] = message.split(":", 1)[0].removeprefix("run ")
        ctx.progress(frac, message)

    kw = dict(data=data, tokenizer=tok, on_progress=on_progress, on_point=on_point,
              on_step=on_step, stop=ctx.stop, session=session)
    if kind == "size":
        result = size_sweep(corpus, ladder, int(steps[0]), cfg, **kw)
    elif kind == "budget":
        result = budget_sweep(corpus, ladder[0], [int(s) for s in steps], cfg, **kw)
    else:
        vocab = int(tok.rsplit("(", 1)[1].rstrip(")"))
        chosen = budgets or default_budgets(ladder, vocab, cfg)
        result = isoflop_sweep(corpus, chosen, ladder, cfg, **kw)
    ctx.progress(1.0, "fitting…")
    found = laws(result, n_boot=n_boot, seed=cfg.seed)
    return {"kind": kind, "status": result.status, "seconds": result.seconds,
            "tokenizer": result.tokenizer, "config": dataclasses.asdict(cfg),
            "points": [p.row() for p in result.points], "fits": found.fits,
            "optima": optima_rows(found.optima), "frontier": found.frontier,
            "notes": found.notes}


def run_emergence(ctx: Any, *, digits: int, shapes: list[str], steps: int,
                  eval_every: int, seed: int = 0, session: str | None = None
                  ) -> EmergenceResult:
    """k-digit addition across sizes; live: each model's three metrics against steps."""
    cfg = EmergenceConfig(digits=digits, shapes=[Shape.parse(s) for s in shapes], steps=steps,
                          eval_every=eval_every, seed=seed)

    def on_row(r: dict) -> None:
        ctx.log(r["model"], step=r["step"], bits_per_token=r["bits_per_token"],
                token_accuracy=r["token_accuracy"], exact_match=r["exact_match"])

    return emergence(cfg, on_progress=ctx.progress, on_row=on_row, stop=ctx.stop,
                     session=session)


def run_induction(ctx: Any, *, config: dict[str, Any], session: str | None = None
                  ) -> InductionResult:
    """Repeated segments; live: loss on the repeat and on new tokens against steps."""
    cfg = InductionConfig(**config)

    def on_row(r: dict) -> None:
        ctx.log("eval", step=r["step"], repeat_loss=r["repeat_loss"],
                fresh_loss=r["fresh_loss"], best_score=max(r["scores"].values()))

    return induction(cfg, on_progress=ctx.progress, on_row=on_row, stop=ctx.stop,
                     session=session)


def run_fewshot(ctx: Any, *, config: dict[str, Any], session: str | None = None
                ) -> FewShotResult:
    """Few-shot mapping; live: accuracy at 0, 2, 4 and 8 shots against steps."""
    cfg = FewShotConfig(**config)

    def on_row(r: dict) -> None:
        if r["shots"] in (0, 2, 4, 8):
            ctx.log(f"{r['shots']} shots", step=r["step"], accuracy=r["accuracy"])

    return fewshot(cfg, on_progress=ctx.progress, on_row=on_row, stop=ctx.stop,
                   session=session)


def run_cot(ctx: Any, *, config: dict[str, Any], session: str | None = None) -> CoTResult:
    """Answer only vs scratchpad; live: teacher-forced exact match against steps."""
    cfg = CoTConfig(**config)

    def on_curve(c: dict) -> None:
        ctx.log(c["variant"], step=c["step"], exact=c["exact_tf_mean"])

    return cot(cfg, on_progress=ctx.progress, on_curve=on_curve, stop=ctx.stop,
               session=session)

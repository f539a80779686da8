"""Chain of thought: the same addition problems learned answer-only and with a scratchpad.

Two identical models (same shape, seed, steps, batch and the same operands) learn n-digit
addition in the natural order. One must write the sum straight away (`357+468=825.`): its
first digit depends on every carry. The other first writes each digit and carry from the
right (`357+468=512180>825.`), so every character it writes depends on a few characters
already on the page. Training lengths are mostly short and the longest ones rare; exact match
of the final answer is measured by greedy generation on held-out problems of every length,
including ones longer than any seen in training.

The operands are right-aligned in columns as wide as the longest length (`___357+___468=`),
as on paper: the i-th digit from the right, and the step that uses it, sit at the same
position at every length, so a model with learned absolute positions can use for 4 and 5
digits what it learned on short problems. Unaligned (`357+468=`), every length put each digit
somewhere else; measured at the defaults (1 thread, seed 0), the scratchpad solved 1-3 digits
and 0.01 of 4-digit problems, and 0.00-0.12 with 3,000 steps, a third layer, a flat length
mix, another learning rate or index hints. Aligned, the default run (2 threads, 59 s) gives
the scratchpad 1.00 at 1 to 5 digits and answer only 1.00, 0.96, 0.19, 0.01, 0.00 (seed 1 on
1 thread: scratchpad 1.00 at 4 and 0.90 at 5 digits, answer only 0.08 at 3). Neither solves
6 digits, a length never trained: the positions of a sixth column never held a digit.

Equal budget means equal optimizer steps over the same problems, each padded to the same
context, so both variants spend the same training FLOPs (reported beside the results); the
scratchpad variant simply has more of its tokens carrying a loss.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmcore.scaling.drill import (
    DrillConfig,
    answer_metrics,
    build,
    drill,
    greedy,
    pool_sampler,
    pool_size,
)
from lmcore.scaling.tasks import final_answer, long_addition, pack

VARIANTS = ("answer only", "scratchpad")


@dataclass
class CoTConfig:
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    eval_every: int = 250
    train_lengths: Sequence[int] = (1, 2, 3, 4, 5)
    train_weights: Sequence[float] = (4, 4, 4, 2, 1)  # the longest lengths are rare
    test_lengths: Sequence[int] = (1, 2, 3, 4, 5, 6)
    train_problems: int = 30_000
    test_per_length: int = 100
    seed: int = 0


@dataclass
class CoTResult:
    rows: list[dict[str, Any]] = field(default_factory=list)  # (variant, length) exact match
    curves: list[dict[str, Any]] = field(default_factory=list)  # (variant, step) teacher-forced
    flops: dict[str, float] = field(default_factory=dict)  # training FLOPs per variant
    status: str = "done"
    seconds: float = 0.0
    run_ids: dict[str, str] = field(default_factory=dict)


def _digits(ns: list[int]) -> str:
    """'2 and 3 digits', '4 to 6 digits', '5 digits'."""
    if len(ns) == 1:
        return f"{ns[0]} digit" + ("s" if ns[0] != 1 else "")
    if ns == list(range(ns[0], ns[-1] + 1)) and len(ns) > 2:
        return f"{ns[0]} to {ns[-1]} digits"
    return ", ".join(map(str, ns[:-1])) + f" and {ns[-1]} digits"


def read_lengths(rows: Sequence[dict[str, Any]]) -> str:
    """Where the scratchpad is ahead, behind, and where neither variant solves a length, in
    words read from the rows (exact match by length), with the share of training problems
    of the lengths neither solves: so a default that only helps at trained lengths says so."""
    by: dict[int, dict[str, dict]] = {}
    for r in rows:
        by.setdefault(int(r["digits"]), {})[r["variant"]] = r
    tol = 0.1  # about two standard errors of a rate over 100 problems per length
    ahead, behind, neither = [], [], []
    for n, pair in sorted(by.items()):
        if set(pair) != set(VARIANTS):
            continue
        a, s = pair["answer only"]["exact_match"], pair["scratchpad"]["exact_match"]
        if max(a, s) < 0.05:
            neither.append(n)
        elif s > a + tol:
            ahead.append(n)
        elif a > s + tol:
            behind.append(n)
    said = []
    if ahead:
        said.append(f"The scratchpad is ahead at {_digits(ahead)} (" + ", ".join(
            f"{by[n]['scratchpad']['exact_match']:.2f} against "
            f"{by[n]['answer only']['exact_match']:.2f}" for n in ahead) + ").")
    if behind:
        said.append(f"Answer only is ahead at {_digits(behind)}.")
    if not ahead and not behind:
        said.append("The two variants score alike at every length here.")
    if neither:
        shares = [by[n]["answer only"]["share_of_training"] for n in neither]
        said.append(f"Neither solves {_digits(neither)}, which made up " + ", ".join(
            f"{100 * x:.0f}%" for x in shares) + " of the training problems.")
    return " ".join(said)


def cot(cfg: CoTConfig | None = None, *,
        on_progress: Callable[[float, str], None] | None = None,
        on_row: Callable[[dict[str, Any]], None] | None = None,
        on_curve: Callable[[dict[str, Any]], None] | None = None,
        stop: threading.Event | None = None, session: str | None = None,
        store=None) -> CoTResult:
    """Train both variants at equal budget; exact match by length on held-out problems."""
    cfg = cfg or CoTConfig()
    if len(cfg.train_weights) != len(cfg.train_lengths):
        raise ValueError("give one training weight per training length")
    longest = max(max(cfg.test_lengths), max(cfg.train_lengths))
    context = 5 * longest + 5  # 2w+2 prompt, 2n scratchpad, ">", n+1 answer digits, "."
    result = CoTResult()
    say = on_progress or (lambda f, m: None)
    t0 = time.perf_counter()
    for v, variant in enumerate(VARIANTS):
        if stop is not None and stop.is_set():
            result.status = "stopped"
            break
        pad = variant == "scratchpad"
        train = long_addition(cfg.train_lengths, cfg.train_weights,
                              pool_size(cfg.train_problems, cfg.steps, cfg.batch_size), pad,
                              "train", cfg.seed, width=longest)
        tests = {n: long_addition([n], None, cfg.test_per_length, pad, "test", cfg.seed,
                                  width=longest) for n in cfg.test_lengths}
        x, y = pack(train, context)
        tf = {n: pack(p, context) for n, p in tests.items()}
        dc = DrillConfig(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head,
                         context=context, steps=cfg.steps, batch_size=cfg.batch_size,
                         lr=cfg.lr, seed=cfg.seed, eval_every=cfg.eval_every)
        model = build(dc)

        def evaluate(m, step, variant=variant, tf=tf):
            row = {"variant": variant}
            for n, (tx, ty) in tf.items():
                row[f"exact_tf_{n}"] = answer_metrics(m, tx, ty)["exact_match"]
            row["exact_tf_mean"] = sum(row[f"exact_tf_{n}"] for n in tf) / len(tf)
            result.curves.append({"step": step, **row})
            if on_curve is not None:
                on_curve(result.curves[-1])
            return row

        def on_step(step, loss, v=v, variant=variant):
            if step % 10 == 0:
                say((v + step / cfg.steps) / (len(VARIANTS) + 0.1),
                    f"{variant}: step {step}/{cfg.steps} · loss {loss:.3f}")

        run = drill(model, pool_sampler(x, y, cfg.batch_size), dc, evaluate=evaluate,
                    name=f"chain of thought ({variant})", task="long addition",
                    extra_config={"variant": variant, "lengths": list(cfg.train_lengths),
                                  "weights": list(cfg.train_weights)},
                    on_step=on_step, stop=stop, store=store, session=session)
        result.run_ids[variant] = run.run_id
        tokens = run.steps * cfg.batch_size * context
        result.flops[variant] = float(model.flops_per_token(training=True)) * tokens
        say((v + 1) / (len(VARIANTS) + 0.1), f"{variant}: generating answers…")
        for n, probs in tests.items():
            outs = greedy(model, [p.prompt for p in probs], max_new=context)
            right = sum(final_answer(o) == final_answer(p.answer) for o, p in zip(
                outs, probs, strict=True))
            share = sum(p.length == n for p in train) / len(train)
            row = {"variant": variant, "digits": n, "exact_match": right / len(probs),
                   "problems": len(probs), "share_of_training": share,
                   "example": f"{probs[0].prompt}{outs[0]}"}
            result.rows.append(row)
            if on_row is not None:
                on_row(row)
        if run.status == "stopped":
            result.status = "stopped"
            break
    result.seconds = time.perf_counter() - t0
    return result

"""`lmcore emergence addition|induction|fewshot|cot`: big-model behaviour on synthetic tasks.

The same experiments as the app's Scaling & emergence page, printed as Markdown tables: the
metric effect behind 'emergence' on k-digit addition, induction heads on repeated segments,
few-shot accuracy against the number of examples, and chain of thought (answer only vs a
scratchpad) against problem length. Every model is recorded in $LMCORE_HOME/runs.sqlite.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from lmcore.cli import CLIError, whole

EPILOG = "Tables are Markdown on stdout; --csv FILE also writes every evaluation as CSV."


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("emergence", help="emergence, induction heads, few-shot, chain "
                                                "of thought on synthetic tasks",
                              description=__doc__.splitlines()[0], epilog=EPILOG)
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    add = sub.add_parser("addition", help="per-digit metrics vs exact match across sizes and "
                                          "steps", epilog=EPILOG)
    add.add_argument("--digits", type=int, default=3)
    add.add_argument("--shapes", default="1x16,1x32,2x32,2x48,2x64", metavar="LxD,...")
    add.add_argument("--steps", type=int, default=1000)
    add.add_argument("--eval-every", type=int, default=50)
    add.add_argument("--lr", type=float, default=1e-2, help="at width 16; width w uses lr*16/w")
    _common(add)
    add.set_defaults(func=run_addition)
    ind = sub.add_parser("induction", help="the induction-head phase change", epilog=EPILOG)
    # InductionConfig's defaults (a test keeps them equal; importing it here would load torch)
    ind.add_argument("--steps", type=int, default=4000)
    ind.add_argument("--layers", type=int, default=2)
    ind.add_argument("--width", type=int, default=64)
    ind.add_argument("--heads", type=int, default=4)
    ind.add_argument("--lr", type=float, default=3e-3)
    _common(ind)
    ind.set_defaults(func=run_induction)
    few = sub.add_parser("fewshot", help="accuracy against the number of in-context examples",
                         epilog=EPILOG)
    # FewShotConfig's defaults (kept equal by a test)
    few.add_argument("--steps", type=int, default=4500)
    few.add_argument("--layers", type=int, default=2)
    few.add_argument("--width", type=int, default=64)
    few.add_argument("--lr", type=float, default=3e-3)
    _common(few)
    few.set_defaults(func=run_fewshot)
    cot = sub.add_parser("cot", help="answer only vs scratchpad, exact match by length",
                         epilog=EPILOG)
    cot.add_argument("--steps", type=int, default=1500, help="per variant")
    cot.add_argument("--layers", type=int, default=2)
    cot.add_argument("--width", type=int, default=64)
    cot.add_argument("--lr", type=float, default=3e-3)
    _common(cot)
    cot.set_defaults(func=run_cot)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.add_argument("--csv", metavar="FILE", help="also write every evaluation as CSV")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        v = getattr(args, name)
        if not v > 0 or (isinstance(v, float) and not math.isfinite(v)):
            raise CLIError(f"--{name.replace('_', '-')} must be positive, got {v}")


def _width(args: argparse.Namespace, heads: int) -> None:
    if args.width % heads:
        raise CLIError(f"--width {args.width} must be a multiple of {heads} heads")


def _finish(args: argparse.Namespace, t0: float, status: str, rows: list[dict]) -> int:
    import torch

    from lmcore.cli.objectives import _write
    from lmcore.scaling.tables import csv_text

    print(f"\n{status} in {time.perf_counter() - t0:.1f} s (torch threads: "
          f"{torch.get_num_threads()})")
    if args.csv:
        _write(args.csv, csv_text(rows))
    return 0


def _progress(args: argparse.Namespace):
    from lmcore.cli.scaling import _Progress

    return _Progress(args.quiet)


def _prepare(args: argparse.Namespace) -> None:
    from lmcore.cli import output_path

    output_path(args.csv, "--csv")


def _run(args: argparse.Namespace, experiment: Callable[..., Any], cfg: Any) -> tuple[Any, float]:
    """Run `experiment(cfg)` with the progress line; its result and its start time."""
    prog = _progress(args)
    t0 = time.perf_counter()
    try:
        return experiment(cfg, on_progress=prog, stop=threading.Event()), t0
    finally:
        prog.close()


def run_addition(args: argparse.Namespace) -> int:
    from lmcore.scaling.emergence import EmergenceConfig, emergence, read_sizes
    from lmcore.scaling.sweep import Shape
    from lmcore.scaling.tables import markdown

    _prepare(args)
    _positive(args, "digits", "steps", "eval_every", "lr")
    shapes = [Shape.parse(s.strip()) for s in args.shapes.split(",") if s.strip()]
    if not shapes:
        raise CLIError("--shapes must name at least one model, e.g. 1x16")
    cfg = EmergenceConfig(digits=args.digits, shapes=shapes, steps=args.steps,
                          eval_every=args.eval_every, lr=args.lr, seed=args.seed)
    res, t0 = _run(args, emergence, cfg)
    k = args.digits
    print(f"{k}-digit addition · held-out problems · lr {args.lr:g}×16/width · seed "
          f"{args.seed}\n\nAcross sizes, end of training:\n")
    cols = ("model", "non_embedding", "step", "bits_per_token", "token_accuracy",
            "exact_match", "exact_if_independent")
    print(markdown(res.final(), cols))
    mid = res.most_spread()
    print(f"\nAcross sizes at step {mid} (where exact match differs most between sizes):\n")
    print(markdown(res.at_step(mid), cols))
    print("\n" + read_sizes(res.at_step(mid), mid))
    print(f"\nAcross steps (per-digit accuracy / exact match of all {k + 1} digits):\n")
    print(markdown(_pivot(res.rows)))
    return _finish(args, t0, res.status, res.rows)


def _pivot(rows: list[dict]) -> list[dict[str, Any]]:
    models = list(dict.fromkeys(r["model"] for r in rows))
    by_step: dict[int, dict[str, Any]] = {}
    for r in rows:
        by_step.setdefault(r["step"], {"step": r["step"]})[r["model"]] = (
            f"{r['token_accuracy']:.3f} / {r['exact_match']:.3f}")
    return [{"step": s, **{m: d.get(m, "–") for m in models}} for s, d in by_step.items()]


def run_induction(args: argparse.Namespace) -> int:
    from lmcore.scaling.induction import InductionConfig, induction
    from lmcore.scaling.tables import markdown

    _prepare(args)
    _positive(args, "steps", "layers", "width", "heads", "lr")
    _width(args, args.heads)
    cfg = InductionConfig(steps=args.steps, n_layer=args.layers, n_embd=args.width,
                          n_head=args.heads, lr=args.lr, seed=args.seed)
    res, t0 = _run(args, induction, cfg)
    print(f"{cfg.T} random tokens, one segment of {cfg.min_len}..{cfg.max_len} of them twice "
          f"(vocabulary {cfg.vocab}, chance loss ln {cfg.vocab} = {math.log(cfg.vocab):.3f}) · "
          f"{args.layers}x{args.width}, {args.heads} heads · lr {args.lr:g} · seed "
          f"{args.seed}\n")
    every = max(1, len(res.rows) // 20)
    shown = res.rows[::every] + ([res.rows[-1]] if (len(res.rows) - 1) % every else [])
    print(markdown([{"step": r["step"], "loss on repeats": r["repeat_loss"],
                     "loss on new tokens": r["fresh_loss"],
                     "best induction score": max(r["scores"].values())} for r in shown]))
    print("\nInduction score per head (end of training):\n")
    print(markdown([{"head": h, "score": s} for h, s in res.final_scores().items()]))
    layers = ", ".join(f"layer {k} {v:.3f}" for k, v in res.layer_scores().items())
    print(f"\nbest head: {res.best_head}; a head spreading its attention evenly would score "
          f"{res.uniform_score:.3f} on these sequences; summed over each layer's heads: "
          f"{layers}")
    change = res.phase_change()
    print("loss on repeats: " + (change.describe() if change is not None else
                                 "no drop to locate (fell by less than 0.05 nats)"))
    flat = [{k: v for k, v in r.items() if k != "scores"} | r["scores"] for r in res.rows]
    return _finish(args, t0, res.status, flat)


def run_fewshot(args: argparse.Namespace) -> int:
    from lmcore.scaling.fewshot import FewShotConfig, fewshot, read_shots
    from lmcore.scaling.tables import markdown

    _prepare(args)
    _positive(args, "steps", "layers", "width", "lr")
    _width(args, 4)
    cfg = FewShotConfig(steps=args.steps, n_layer=args.layers, n_embd=args.width, lr=args.lr,
                        seed=args.seed)
    res, t0 = _run(args, fewshot, cfg)
    before = {r["shots"]: r["accuracy"] for r in res.curve(0)}
    rows = [{"shots": r["shots"], "before training": before.get(r["shots"]),
             f"after {r['step']} steps": r["accuracy"],
             "after, key shown": r["accuracy_key_shown"], "perfect learner": r["ideal"],
             "problems": r["problems"]} for r in res.curve()]
    print(f"few-shot mapping a..h -> digits, held-out mappings · {args.layers}x{args.width} · "
          f"lr {args.lr:g} · seed {args.seed}\n")
    print(markdown(rows))
    print(f"\n{read_shots(res.curve())}")
    return _finish(args, t0, res.status, res.rows)


def run_cot(args: argparse.Namespace) -> int:
    from lmcore.scaling.chain_of_thought import CoTConfig, cot, read_lengths
    from lmcore.scaling.tables import markdown

    _prepare(args)
    _positive(args, "steps", "layers", "width", "lr")
    _width(args, 4)
    cfg = CoTConfig(steps=args.steps, n_layer=args.layers, n_embd=args.width, lr=args.lr,
                    seed=args.seed)
    res, t0 = _run(args, cot, cfg)
    by_len: dict[int, dict[str, Any]] = {}
    for r in res.rows:
        d = by_len.setdefault(r["digits"], {"digits": r["digits"],
                                            "share of training": r["share_of_training"]})
        d[f"exact: {r['variant']}"] = r["exact_match"]
    print(f"n-digit addition, answer only vs scratchpad, {args.steps} steps each · "
          f"{args.layers}x{args.width} · lr {args.lr:g} · seed {args.seed} · "
          f"{cfg.test_per_length} held-out problems per length\n")
    print(markdown(list(by_len.values())))
    print("\n" + read_lengths(res.rows))
    print("\ntraining FLOPs: " + ", ".join(f"{v} {f:.3g}" for v, f in res.flops.items()))
    examples = {r["variant"]: r["example"] for r in res.rows if r["digits"] == 3}
    for v, e in examples.items():
        print(f"example ({v}): {e}")
    return _finish(args, t0, res.status, res.rows)

"""`lmcore scaling sizes|budgets|isoflop`: scaling sweeps on a corpus, printed as tables.

The same experiments as the app's Scaling & emergence page: every point is a real training run
(char tokens, held-out bits per character) recorded in $LMCORE_HOME/runs.sqlite; the fits
(Kaplan's pure power law and Hoffmann's with an irreducible term, on the log scale, bootstrap
intervals on the exponent) follow the table of points.
"""

from __future__ import annotations

import argparse
import threading
import time

from lmcore.cli import CLIError, real, whole

EPILOG = "Tables are Markdown on stdout; --csv FILE also writes the points as CSV."


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scaling", help="scaling laws: loss against size, data, compute",
                              description=__doc__.splitlines()[0], epilog=EPILOG)
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    sizes = sub.add_parser("sizes", help="a ladder of model sizes at a fixed token budget",
                           epilog=EPILOG)
    _common(sizes)
    sizes.add_argument("--shapes", default=None, metavar="LxD,...",
                       help="model shapes LAYERSxWIDTH[xHEADS], comma-separated (default: six "
                            "shapes from 1x16 to 3x64, 45x in non-embedding parameters)")
    sizes.add_argument("--larger", action="store_true",
                       help="add 4x96 and 6x128 to the default ladder (slower)")
    sizes.add_argument("--steps", type=whole(1), default=300, help="steps per model (default 300)")
    sizes.set_defaults(func=run_sizes)
    budgets = sub.add_parser("budgets", help="one model size at several token budgets",
                             epilog=EPILOG)
    _common(budgets)
    budgets.add_argument("--shape", default="2x48", help="the model (default 2x48)")
    budgets.add_argument("--steps", default="25,50,100,200,400", metavar="N,...",
                         help="the budgets in steps, one run each (default 25..400)")
    budgets.set_defaults(func=run_budgets)
    iso = sub.add_parser("isoflop", help="loss against size at two or three fixed compute "
                                         "budgets; the best size per budget", epilog=EPILOG)
    _common(iso)
    iso.add_argument("--shapes", default=None, metavar="LxD,...",
                     help="model shapes (default: the six of `sizes`)")
    iso.add_argument("--budgets", default=None, metavar="C,...",
                     help="training FLOPs per budget, e.g. 1e11,2e11 (default: two budgets "
                          "at which the largest shape trains 125 and 400 steps)")
    iso.set_defaults(func=run_isoflop)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default="builtin", metavar="FILE|builtin",
                   help="a text file, 'builtin' (Python's reference docs) or 'markov'")
    p.add_argument("--context", type=whole(1), default=64)
    p.add_argument("--batch-size", type=whole(1), default=32)
    p.add_argument("--lr", type=real(above=0), default=5e-3)
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.add_argument("--eval-tokens", type=whole(1), default=8192,
                   help="held-out tokens scored per model")
    p.add_argument("--bootstrap", type=whole(1), default=200, help="resamples for the intervals")
    p.add_argument("--csv", metavar="FILE", help="also write the points as CSV")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"{what} must be whole numbers separated by commas, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise CLIError(f"{what} must be positive whole numbers, got {text!r}")
    return vals


def _floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"{what} must be numbers separated by commas, got {text!r}") from None
    if not vals or min(vals) <= 0:
        raise CLIError(f"{what} must be positive numbers, got {text!r}")
    return vals


def _shapes(text: str | None, larger: bool = False):
    from lmcore.scaling.sweep import LARGER_SIZES, SIZES, Shape

    if text is None:
        return list(LARGER_SIZES if larger else SIZES)
    return [Shape.parse(s.strip()) for s in text.split(",") if s.strip()]


def _config(args: argparse.Namespace):
    from lmcore.scaling.sweep import SweepConfig

    for name in ("context", "batch_size", "eval_tokens", "bootstrap"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.lr > 0:
        raise CLIError(f"--lr must be positive, got {args.lr}")
    return SweepConfig(context=args.context, batch_size=args.batch_size, lr=args.lr,
                       seed=args.seed, eval_tokens=args.eval_tokens)


class _Progress:
    """One updating line on stderr (nothing with --quiet)."""

    def __init__(self, quiet: bool):
        import sys

        self.quiet, self.err, self.last = quiet, sys.stderr, 0.0

    def __call__(self, frac: float, message: str) -> None:
        now = time.monotonic()
        if self.quiet or now - self.last < 0.5:
            return
        self.last = now
        self.err.write(f"\r{100 * frac:5.1f}% {message[:90]:<90}")
        self.err.flush()

    def close(self) -> None:
        if not self.quiet:
            self.err.write("\r" + " " * 100 + "\r")
            self.err.flush()


def _run(args: argparse.Namespace, make) -> int:
    from lmcore.cli import output_path
    from lmcore.cli.objectives import _write
    from lmcore.cli.train import read_corpus
    from lmcore.scaling.laws import POINT_COLUMNS, fit_rows, laws, optima_rows
    from lmcore.scaling.tables import csv_text, markdown

    output_path(args.csv, "--csv")
    cfg = _config(args)
    corpus = read_corpus(args.corpus)
    progress = _Progress(args.quiet)
    stop = threading.Event()
    t0 = time.perf_counter()
    try:
        result = make(corpus, cfg, progress, stop)
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        progress.close()
    seconds = time.perf_counter() - t0
    rows = [p.row() for p in result.points]
    cols = POINT_COLUMNS if result.kind != "isoflop" else ("budget",) + POINT_COLUMNS
    print(f"{corpus.name} · {result.tokenizer} · context {cfg.context} · batch "
          f"{cfg.batch_size} · lr {cfg.lr:g} · seed {cfg.seed} · {len(rows)} runs\n")
    print(markdown(rows, cols))
    found = laws(result, n_boot=args.bootstrap, seed=args.seed)
    if found.optima:
        print("\nIsoFLOP optima (parabola in log10 N):\n")
        print(markdown(optima_rows(found.optima)))
    if found.frontier:
        f = found.frontier[0]
        print(f"\nCompute-optimal frontier: {f['fit']} (Kaplan et al. 2020: "
              f"{f['kaplan']}; Hoffmann et al. 2022: {f['hoffmann']}).")
    if found.fits:
        print("\nFits (least squares on log L):\n")
        print(markdown(fit_rows(found.fits)))
        print()
        for f in found.fits:
            print(f"- {f['form']}: {f['verdict']}")
    for note in found.notes:
        print(f"\nnote: {note}")
    print(f"\n{result.status} in {seconds:.1f} s (torch threads: {_threads()})")
    if args.csv:
        _write(args.csv, csv_text(rows, cols))
    return 0


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def run_sizes(args: argparse.Namespace) -> int:
    from lmcore.scaling.sweep import size_sweep

    shapes = _shapes(args.shapes, args.larger)
    if args.steps < 1:
        raise CLIError("--steps must be at least 1")
    return _run(args, lambda corpus, cfg, progress, stop: size_sweep(
        corpus, shapes, args.steps, cfg, on_progress=progress, stop=stop))


def run_budgets(args: argparse.Namespace) -> int:
    from lmcore.scaling.sweep import Shape, budget_sweep

    shape = Shape.parse(args.shape)
    steps = _ints(args.steps, "--steps")
    return _run(args, lambda corpus, cfg, progress, stop: budget_sweep(
        corpus, shape, steps, cfg, on_progress=progress, stop=stop))


def run_isoflop(args: argparse.Namespace) -> int:
    from lmcore.scaling.sweep import ISOFLOP_SIZES, default_budgets, isoflop_sweep, prepare

    shapes = _shapes(args.shapes) if args.shapes else list(ISOFLOP_SIZES)
    budgets = _floats(args.budgets, "--budgets") if args.budgets else None

    def make(corpus, cfg, progress, stop):
        data, tok = prepare(corpus)
        vocab = int(tok.rsplit("(", 1)[1].rstrip(")"))
        chosen = budgets or default_budgets(shapes, vocab, cfg)
        return isoflop_sweep(corpus, chosen, shapes, cfg, data=data, tokenizer=tok,
                             on_progress=progress, stop=stop)

    return _run(args, make)

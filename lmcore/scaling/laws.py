"""Scaling laws read off a sweep: L(N), L(D), L(C) fits and the IsoFLOP frontier.

`laws(result)` turns the points of one sweep into the rows the page and the CLI show: both
power-law forms fitted with bootstrap intervals against N (size sweep), D (budget sweep) or
the best size per compute budget (IsoFLOP sweep), each placed against Kaplan et al. (2020)
and Hoffmann et al. (2022).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lmcore.scaling.fit import HOFFMANN, KAPLAN, Optimum, fit_table, isoflop_optimum
from lmcore.scaling.sweep import Point, SweepResult

POINT_COLUMNS = ("label", "non_embedding", "params", "steps", "tokens", "flops",
                 "bits_per_char", "seconds", "status", "run_id")


@dataclass
class Laws:
    """What a sweep says: fit rows (both forms), IsoFLOP optima, notes."""

    kind: str
    fits: list[dict] = field(default_factory=list)
    optima: list[Optimum] = field(default_factory=list)
    frontier: list[dict] = field(default_factory=list)  # N_opt against C fit (>= 2 budgets)
    notes: list[str] = field(default_factory=list)


def _finite(points: Sequence[Point]) -> list[Point]:
    return [p for p in points if math.isfinite(p.bits_per_char) and p.status != "failed"]


def laws(result: SweepResult, n_boot: int = 200, seed: int = 0) -> Laws:
    """Fit the sweep's points; too few points give a note instead of a fit."""
    out = Laws(result.kind)
    out.notes += [f"left out: {s}" for s in result.skipped]
    pts = [p for p in _finite(result.points) if p.status == "done"]
    if len(pts) < len(result.points):
        out.notes.append(f"{len(result.points) - len(pts)} stopped or failed run(s) left out "
                         "of the fits.")
    try:
        if result.kind == "size":
            out.fits = fit_table([p.non_embedding for p in pts], [p.bits_per_char for p in pts],
                                 "N", KAPLAN["alpha_N"], HOFFMANN["alpha"], n_boot, seed)
        elif result.kind == "budget":
            out.fits = fit_table([p.tokens for p in pts], [p.bits_per_char for p in pts],
                                 "D", KAPLAN["alpha_D"], HOFFMANN["beta"], n_boot, seed)
        elif result.kind == "isoflop":
            _isoflop(out, pts)
    except ValueError as exc:
        out.notes.append(f"no fit: {exc}")
    return out


def _isoflop(out: Laws, pts: list[Point]) -> None:
    budgets = sorted({p.budget for p in pts if p.budget is not None})
    for c in budgets:
        group = [p for p in pts if p.budget == c]
        if len(group) < 2:
            out.notes.append(f"budget {c:.2g} has {len(group)} run(s): no optimum")
            continue
        opt = isoflop_optimum(c, [p.non_embedding for p in group],
                              [p.bits_per_char for p in group])
        out.optima.append(opt)
        if not opt.inside:
            out.notes.append(f"budget {c:.2g}: the best size lies at the edge of the sizes "
                             "tried, so its optimum is a bound, not a measurement")
    if len(out.optima) >= 2:
        c = np.log([o.budget for o in out.optima])
        n = np.log([o.n_opt for o in out.optima])
        a, _ = np.polyfit(c, n, 1)
        out.frontier.append({"fit": f"N_opt ∝ C^{a:.2f}", "exponent": float(a),
                             "kaplan": KAPLAN["N_opt_exponent"],
                             "hoffmann": HOFFMANN["N_opt_exponent"],
                             "budgets": len(out.optima)})
        x = [o.budget for o in out.optima]
        y = [o.loss_opt for o in out.optima]
        if len(out.optima) >= 3:
            out.fits = fit_table(x, y, "C", KAPLAN["alpha_C"], None, 100)


def optima_rows(optima: Sequence[Optimum]) -> list[dict]:
    return [{"budget_flops": o.budget, "best_N_parabola": o.n_opt,
             "best_N_measured": o.best_measured, "loss_at_best": o.loss_opt,
             "inside_range": o.inside} for o in optima]


def fit_rows(fits: Sequence[dict]) -> list[dict]:
    return [{"form": f["form"], "fit": f["fit"], "alpha": f["alpha"],
             "alpha 90% CI": f"{f['alpha_low']:.3f}–{f['alpha_high']:.3f}",
             "rmse(log L)": f["rmse_log"]} for f in fits]

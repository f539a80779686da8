"""Power laws L(x) = E + A / x^alpha fitted by least squares on the log scale, with bootstrap CIs.

Why the log scale: losses of models a hundred times apart in size differ by a few percent, and
a fit on the raw scale would chase the largest losses; residuals of log L weigh every point by
its relative error (Hoffmann et al. 2022 fit log L the same way, with a Huber loss).

Two forms are fitted: Kaplan et al. (2020) write a pure power law L = (x_c / x)^alpha (E = 0);
Hoffmann et al. (2022) add the irreducible loss E (L(N, D) = E + A/N^alpha + B/D^beta; at a fixed
D the B/D^beta term folds into E). `fit_power_law` does both (offset=True/False), `bootstrap`
resamples the points to put an interval on the exponent, `isoflop_optimum` finds the best model
size of one compute budget from a parabola in log N (Hoffmann's Approach 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Published exponents, for the page's "where does this corpus fall" sentence.
KAPLAN = {"alpha_N": 0.076, "alpha_D": 0.095, "alpha_C": 0.050, "N_opt_exponent": 0.73}
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28,
            "N_opt_exponent": 0.50}
KAPLAN_FORM = "L(N) = (N_c / N)^α_N"
HOFFMANN_FORM = "L(N, D) = E + A / N^α + B / D^β"


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = E + A * x^-alpha; `rmse_log` is the root mean squared residual of log L."""

    E: float
    A: float
    alpha: float
    rmse_log: float
    offset: bool  # False: E fixed at 0 (Kaplan's form)

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return self.E + self.A * np.asarray(x, dtype=float) ** -self.alpha

    def formula(self, var: str = "N") -> str:
        if self.offset:
            return f"L = {self.E:.3f} + {self.A:.3g} / {var}^{self.alpha:.3f}"
        return f"L = {self.A:.3g} / {var}^{self.alpha:.3f}"


@dataclass(frozen=True)
class Interval:
    """A bootstrap percentile interval of a fitted exponent."""

    estimate: float
    low: float
    high: float
    level: float
    resamples: int  # resamples that gave a fit (degenerate ones are skipped)


def _check(x: Sequence[float], y: Sequence[float], least: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("x and y must be two lists of the same length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("a power law needs finite values (a run that failed has no loss)")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a power law needs positive x and losses")
    if len(np.unique(x)) < least:
        raise ValueError(f"fitting this power law needs at least {least} distinct x values, "
                         f"got {len(np.unique(x))}")
    return x, y


def _pure(x: np.ndarray, y: np.ndarray) -> PowerLaw:
    """log y = log A - alpha log x: ordinary least squares, closed form."""
    lx, ly = np.log(x), np.log(y)
    slope, icept = np.polyfit(lx, ly, 1)
    rmse = float(np.sqrt(np.mean((ly - (icept + slope * lx)) ** 2)))
    return PowerLaw(E=0.0, A=float(math.exp(icept)), alpha=float(-slope), rmse_log=rmse,
                    offset=False)


def _resid(theta: np.ndarray, lz: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """log-scale residuals for theta = (log E, log A, alpha), z = x / x0."""
    e, a, alpha = theta
    return ly - np.logaddexp(e, a - alpha * lz)


def _levenberg_marquardt(theta: np.ndarray, lz: np.ndarray, ly: np.ndarray,
                         iters: int = 300) -> np.ndarray:
    """Minimise the sum of squared `_resid` from `theta` (numeric Jacobian, adaptive damping)."""
    lam = 1e-3
    r = _resid(theta, lz, ly)
    cost = float(r @ r)
    for _ in range(iters):
        J = np.empty((len(ly), 3))
        for j in range(3):
            h = 1e-6 * max(1.0, abs(theta[j]))
            t = theta.copy()
            t[j] += h
            J[:, j] = (_resid(t, lz, ly) - r) / h
        g = J.T @ r
        H = J.T @ J
        improved = False
        while lam < 1e10:
            step = np.linalg.solve(H + lam * np.diag(np.diag(H) + 1e-12), -g)
            new = theta + step
            new[2] = min(max(new[2], 1e-4), 10.0)
            new[0] = max(new[0], -30.0)
            r_new = _resid(new, lz, ly)
            c_new = float(r_new @ r_new)
            if c_new < cost:
                theta, r, lam, improved = new, r_new, lam / 3, True
                break
            lam *= 4
        if not improved or abs(cost - c_new) < 1e-15 * max(cost, 1e-30):
            cost = min(cost, c_new)
            break
        cost = c_new
    return theta


def fit_power_law(x: Sequence[float], y: Sequence[float], offset: bool = True) -> PowerLaw:
    """Fit L = E + A x^-alpha (or A x^-alpha when `offset` is False) on the log scale.

    The offset fit starts from the best point of a grid over alpha (for each alpha, E and A
    by linear least squares, E clipped to [0, min L)), then refines all three with
    Levenberg-Marquardt on the log residuals; E stays positive (it is fitted as log E).
    """
    x, y = _check(x, y, 3 if offset else 2)
    if not offset:
        return _pure(x, y)
    x0 = float(np.exp(np.mean(np.log(x))))  # work with z = x / x0 ~ 1: better conditioned
    z = x / x0
    lz, ly = np.log(z), np.log(y)
    best, best_cost = None, math.inf
    for alpha in np.geomspace(0.01, 5.0, 80):
        zz = z ** -alpha
        M = np.stack([np.ones_like(zz), zz], axis=1)
        E, A = np.linalg.lstsq(M, y, rcond=None)[0]
        E = min(max(E, 1e-6 * y.min()), 0.999 * y.min())
        A = max(float(np.dot(zz, y - E) / np.dot(zz, zz)), 1e-12)
        theta = np.array([math.log(E), math.log(A), alpha])
        r = _resid(theta, lz, ly)
        if float(r @ r) < best_cost:
            best, best_cost = theta, float(r @ r)
    theta = _levenberg_marquardt(best, lz, ly)
    r = _resid(theta, lz, ly)
    e, a, alpha = (float(v) for v in theta)
    A = math.exp(a) * x0 ** alpha  # back to the original x: A z^-alpha = A x0^alpha x^-alpha
    return PowerLaw(E=math.exp(e), A=A, alpha=alpha, rmse_log=float(np.sqrt(np.mean(r * r))),
                    offset=True)


def bootstrap(x: Sequence[float], y: Sequence[float], offset: bool = True, n: int = 200,
              level: float = 0.9, seed: int = 0) -> Interval:
    """Percentile interval of alpha over `n` resamples of the points (with replacement).

    Resamples with too few distinct x values to fit are skipped and not counted.
    """
    x, y = _check(x, y, 3 if offset else 2)
    est = fit_power_law(x, y, offset).alpha
    rng = np.random.default_rng(seed)
    least = 3 if offset else 2
    alphas = []
    for _ in range(n):
        idx = rng.integers(0, len(x), len(x))
        if len(np.unique(x[idx])) < least:
            continue
        alphas.append(fit_power_law(x[idx], y[idx], offset).alpha)
    if not alphas:
        return Interval(est, math.nan, math.nan, level, 0)
    lo, hi = np.quantile(alphas, [(1 - level) / 2, (1 + level) / 2])
    return Interval(est, float(lo), float(hi), level, len(alphas))


@dataclass(frozen=True)
class Optimum:
    """The best size of one compute budget: from the parabola, and the best measured point."""

    budget: float
    n_opt: float  # parabola vertex in log N (clamped to the measured range)
    loss_opt: float
    best_measured: float  # the measured size with the lowest loss
    inside: bool  # True when the vertex lies strictly inside the measured sizes
    coeffs: tuple[float, float, float]  # loss = c0 (log10 N)^2 + c1 log10 N + c2


def isoflop_optimum(budget: float, sizes: Sequence[float], losses: Sequence[float]) -> Optimum:
    """Fit loss = parabola(log10 N) over one budget's runs; its vertex is the best size."""
    n, loss = _check(sizes, losses, 2)
    best = float(n[int(np.argmin(loss))])
    lx = np.log10(n)
    if len(np.unique(n)) < 3:
        return Optimum(budget, best, float(loss.min()), best, False, (0.0, 0.0, 0.0))
    c = np.polyfit(lx, loss, 2)
    if c[0] <= 0:  # no minimum: the curve still falls (or rises) across the range
        return Optimum(budget, best, float(loss.min()), best, False, tuple(map(float, c)))
    v = -c[1] / (2 * c[0])
    inside = bool(lx.min() < v < lx.max())
    v = float(np.clip(v, lx.min(), lx.max()))
    return Optimum(budget, float(10 ** v), float(np.polyval(c, v)), best, inside,
                   tuple(map(float, c)))


def exponent_verdict(alpha: Interval, name: str, kaplan: float, hoffmann: float | None) -> str:
    """One sentence placing a measured exponent against the published ones."""
    refs = [("Kaplan et al. 2020", kaplan)]
    if hoffmann is not None:
        refs.append(("Hoffmann et al. 2022", hoffmann))
    parts = []
    for who, ref in refs:
        if math.isnan(alpha.low):
            rel = "compared with"
        elif alpha.low <= ref <= alpha.high:
            rel = "consistent with"
        elif ref < alpha.low:
            rel = "steeper than"
        else:
            rel = "shallower than"
        parts.append(f"{rel} {who}'s {ref:g}")
    ci = ("" if math.isnan(alpha.low)
          else f" ({100 * alpha.level:.0f}% bootstrap interval {alpha.low:.3f}–{alpha.high:.3f})")
    return f"{name} = {alpha.estimate:.3f}{ci}: " + "; ".join(parts) + "."


def fit_table(x: Sequence[float], y: Sequence[float], var: str, kaplan: float,
              hoffmann: float | None, n_boot: int = 200, seed: int = 0) -> list[dict]:
    """Both forms fitted to (x, y), one row each: formula, exponent, interval, verdict."""
    rows = []
    for offset, form, who in ((False, f"L = A / {var}^α", "Kaplan et al. 2020"),
                              (True, f"L = E + A / {var}^α", "Hoffmann et al. 2022")):
        law = fit_power_law(x, y, offset)
        ci = bootstrap(x, y, offset, n=n_boot, seed=seed)
        rows.append({"form": f"{form} ({who}'s form)", "fit": law.formula(var),
                     "alpha": law.alpha, "alpha_low": ci.low, "alpha_high": ci.high,
                     "E": law.E, "A": law.A, "rmse_log": law.rmse_log,
                     "verdict": exponent_verdict(ci, f"α_{var}", kaplan, hoffmann)})
    return rows

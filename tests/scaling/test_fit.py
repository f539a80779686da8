"""The power-law fit recovers known exponents; intervals cover them; IsoFLOP vertex is right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmcore.scaling.fit import (
    bootstrap,
    exponent_verdict,
    fit_power_law,
    fit_table,
    isoflop_optimum,
)


@pytest.mark.parametrize(("E", "A", "alpha"), [(1.5, 40.0, 0.35), (0.8, 12.0, 0.1),
                                               (2.2, 300.0, 0.6)])
def test_offset_fit_recovers_exact_parameters(E, A, alpha):
    x = np.geomspace(3e3, 3e5, 7)
    law = fit_power_law(x, E + A * x ** -alpha)
    assert law.alpha == pytest.approx(alpha, rel=1e-4)
    assert law.E == pytest.approx(E, rel=1e-4)
    assert law.A == pytest.approx(A, rel=1e-3)
    assert law.rmse_log < 1e-8


def test_pure_power_law_is_kaplans_form():
    x = np.geomspace(1e3, 1e6, 6)
    law = fit_power_law(x, 7.0 * x ** -0.076, offset=False)
    assert law.E == 0 and law.alpha == pytest.approx(0.076, abs=1e-9)
    assert law.A == pytest.approx(7.0, rel=1e-9)
    assert "/ N^0.076" in law.formula()


def test_noisy_data_bootstrap_interval_covers_the_true_exponent():
    rng = np.random.default_rng(3)
    x = np.geomspace(3e3, 1e5, 8)
    y = (1.2 + 25 * x ** -0.3) * np.exp(rng.normal(0, 0.005, len(x)))
    ci = bootstrap(x, y, n=150, seed=0)
    assert ci.low <= 0.3 <= ci.high
    assert ci.low < ci.estimate < ci.high and ci.resamples > 100
    assert abs(ci.estimate - 0.3) < 0.08


def test_fit_is_on_the_log_scale():
    # one outlier 10% high at the smallest x: on the log scale its pull equals a 10% error
    # anywhere; the fitted curve passes within a few percent of all other points
    x = np.geomspace(1e3, 1e5, 6)
    y = 2.0 * x ** -0.2
    y[0] *= 1.1
    law = fit_power_law(x, y, offset=False)
    assert np.all(np.abs(np.log(law(x[1:]) / y[1:])) < 0.05)


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="distinct x"):
        fit_power_law([1, 1, 2], [3, 2, 1])
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2, 3], [3, 0, 1])
    with pytest.raises(ValueError, match="finite"):
        fit_power_law([1, 2, 3], [3, math.nan, 1])


def test_isoflop_vertex_of_a_parabola():
    n = np.array([1e3, 3e3, 1e4, 3e4, 1e5])
    loss = 0.5 * (np.log10(n) - np.log10(8e3)) ** 2 + 2.0
    opt = isoflop_optimum(1e12, n, loss)
    assert opt.inside and opt.n_opt == pytest.approx(8e3, rel=1e-6)
    assert opt.loss_opt == pytest.approx(2.0) and opt.best_measured == 1e4
    edge = isoflop_optimum(1e12, n, 6 - np.log10(n))  # still falling: the optimum is a bound
    assert not edge.inside and edge.best_measured == 1e5


def test_verdict_places_the_exponent():
    ci = bootstrap(np.geomspace(1e3, 1e5, 6), 3 * np.geomspace(1e3, 1e5, 6) ** -0.5,
                   offset=False, n=20)
    text = exponent_verdict(ci, "α_N", 0.076, 0.34)
    assert text.startswith("α_N = 0.500") and "steeper than Kaplan" in text
    rows = fit_table(np.geomspace(1e3, 1e5, 6), 1 + 3 * np.geomspace(1e3, 1e5, 6) ** -0.34,
                     "N", 0.076, 0.34, n_boot=30)
    assert rows[1]["alpha"] == pytest.approx(0.34, rel=1e-3)
    assert "Hoffmann" in rows[1]["form"] and "Kaplan" in rows[0]["form"]

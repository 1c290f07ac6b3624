"""mittag_leffler against independent truth: closed forms (exp, erfcx/Faddeeva, cos, sin, cosh), the integral
representation of E_α(−x) by scipy quad, the power series summed exactly where it has no cancellation, the
recurrence E_{α,β}(z) = 1/Γ(β) + z E_{α,α+β}(z), complete monotonicity and the large-x asymptote."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.integrate import IntegrationWarning, quad
from scipy.special import erfcx, gammaln, rgamma, wofz

from neurospike.errors import NeurospikeError
from neurospike.mittag_leffler import mittag_leffler

X_NEGATIVE = np.concatenate([np.linspace(0.0, 2.0, 41), np.logspace(-3.0, 4.0, 120)])


def relative_error(value, truth):
    return np.max(np.abs(np.asarray(value) - truth) / np.abs(truth))


def integral_representation(x: float, alpha: float) -> float:
    """E_α(−x) = sin(απ)/(απ) ∫_0^∞ e^{−v^{1/α}} x / ((v − x)² + 2vx(1 + cos απ)) dv, 0 < α < 1 (the kernel
    r^{α−1} sin(απ)/(π(r^{2α} + 2r^α cos απ + 1)) after r = (v/x)^{1/α}; 1 + cos απ = 2 sin²((1 − α)π/2) so the
    near-pole at v = x for α → 1 costs no digits), by quad with breakpoints around that near-pole."""
    spread = math.sin(alpha * math.pi)
    one_plus_cos = 2.0 * math.sin((1.0 - alpha) * math.pi / 2.0) ** 2

    def integrand(v):
        return math.exp(-v ** (1.0 / alpha)) * x / ((v - x) ** 2 + 2.0 * v * x * one_plus_cos)

    end = 60.0 ** alpha  # e^{-60} beyond: below 1e-26 of the value
    points = sorted({0.0, end, *(x * (1.0 + k * spread) for k in (-30, -3, -1, 0, 1, 3, 30))})
    points = [p for p in points if 0.0 <= p <= end]
    with warnings.catch_warnings():  # quad warns that 2e-14 is near round-off; the comparison tells
        warnings.simplefilter("ignore", IntegrationWarning)
        total = sum(quad(integrand, a, b, epsabs=0.0, epsrel=2e-14, limit=200)[0] for a, b in zip(points, points[1:]))
    return spread / (alpha * math.pi) * total


def positive_series(x: float, alpha: float, beta: float) -> float:
    """Σ x^k/Γ(αk + β) for x > 0: every term positive, so no cancellation; terms in log space, math.fsum."""
    k = np.arange(4000)
    return math.fsum(np.exp(k * math.log(x) - gammaln(alpha * k + beta)))


def test_alpha_one_is_the_exponential():
    z = np.linspace(-700.0, 700.0, 201)
    np.testing.assert_array_equal(mittag_leffler(z, 1.0), np.exp(z))


def test_alpha_one_beta_two_is_the_difference_quotient_of_exp():
    z = np.concatenate([-np.logspace(-6.0, 4.0, 60), np.logspace(-6.0, 2.5, 40)])
    assert relative_error(mittag_leffler(z, 1.0, 2.0), np.expm1(z) / z) < 1e-14


def test_half_order_on_the_negative_axis_is_erfcx():
    # E_{1/2}(−x) = exp(x²) erfc(x) = erfcx(x), over 0 ≤ x ≤ 1e4.
    error = relative_error(mittag_leffler(-X_NEGATIVE, 0.5), erfcx(X_NEGATIVE))
    assert error < 1e-14


def test_half_order_positive_and_complex_is_faddeeva():
    # E_{1/2}(z) = exp(z²) erfc(−z) = w(−iz), w the Faddeeva function.
    x = np.linspace(0.0, 20.0, 81)
    assert relative_error(mittag_leffler(x, 0.5), wofz(-1j * x).real) < 1e-14
    z = np.random.default_rng(1).uniform(-6.0, 6.0, (200, 2)) @ np.array([1.0, 1.0j])
    assert relative_error(mittag_leffler(z, 0.5), wofz(-1j * z)) < 1e-13


def test_order_two_gives_cos_sin_cosh():
    x = np.linspace(0.01, 30.0, 150)
    assert np.max(np.abs(mittag_leffler(-x ** 2, 2.0) - np.cos(x))) < 1e-14
    assert np.max(np.abs(mittag_leffler(-x ** 2, 2.0, 2.0) - np.sin(x) / x)) < 1e-14
    assert relative_error(mittag_leffler(x ** 2, 2.0), np.cosh(x)) < 1e-14


@pytest.mark.parametrize("beta", [0.3, 1.0, 2.5])
def test_value_at_zero_is_reciprocal_gamma(beta):
    assert mittag_leffler(0.0, 0.7, beta) == pytest.approx(rgamma(beta), rel=1e-15)


@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.5, 0.8, 0.9, 0.99, 0.999])
def test_negative_axis_matches_the_integral_representation(alpha):
    x = np.logspace(-2.0, 4.0, 25)
    truth = np.array([integral_representation(value, alpha) for value in x])
    assert relative_error(mittag_leffler(-x, alpha), truth) < (1e-14 if alpha <= 0.9 else 1e-12)


@pytest.mark.parametrize("alpha, beta", [(0.3, 1.0), (0.6, 0.5), (0.9, 2.5), (0.75, 1.0), (1.5, 1.0)])
def test_positive_axis_matches_the_series(alpha, beta):
    x = np.linspace(0.1, 40.0 ** alpha, 30)  # up to E ~ e^40
    truth = np.array([positive_series(value, alpha, beta) for value in x])
    assert relative_error(mittag_leffler(x, alpha, beta), truth) < 1e-12


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9, 0.999, 1.0, 1.5])
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_recurrence_between_beta_and_alpha_plus_beta(alpha, beta):
    # E_{α,β}(z) = 1/Γ(β) + z E_{α,α+β}(z); error allowed relative to the terms' size (cancellation at large x).
    z = -np.logspace(-1.0, 4.0, 60)
    left, shifted = mittag_leffler(z, alpha, beta), mittag_leffler(z, alpha, alpha + beta)
    scale = np.abs(left) + rgamma(beta) + np.abs(z * shifted)
    assert np.max(np.abs(left - rgamma(beta) - z * shifted) / scale) < 1e-14


@pytest.mark.parametrize("alpha", [0.1, 0.4, 0.7, 0.95, 0.999])
def test_completely_monotone_on_the_negative_axis(alpha):
    x = np.concatenate([[0.0], np.logspace(-4.0, 4.0, 400)])
    values = mittag_leffler(-x, alpha)
    assert np.all(values > 0.0)
    assert np.all(np.diff(values) < 0.0)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_large_argument_asymptote(alpha):
    # E_α(−x) = x^{−1}/Γ(1 − α) − x^{−2}/Γ(1 − 2α) − x^{−3}/Γ(1 − 3α) + O(x^{−4}).
    x = np.array([1e2, 1e3, 1e4])
    leading = rgamma(1.0 - alpha) / x
    relative_gap = np.abs(mittag_leffler(-x, alpha) / leading - 1.0)
    second, third = (abs(rgamma(1.0 - k * alpha) / rgamma(1.0 - alpha)) for k in (2, 3))
    assert np.all(relative_gap < 2.0 * (second / x + third / x ** 2) + 1e-14)
    assert np.all(relative_gap > 0.5 * (second / x + third / x ** 2) - 1e-14)


def test_shape_and_dtype():
    assert mittag_leffler([[-1.0, 0.5]], 0.5).shape == (1, 2)
    assert mittag_leffler(np.arange(3), 0.5).dtype == np.float64
    assert mittag_leffler(np.array([0.5j]), 0.5).dtype == np.complex128
    assert mittag_leffler(800.0, 0.5) == np.inf


@pytest.mark.parametrize("z, alpha, beta, named", [
    (1.0, 0.0, 1.0, "alpha"), (1.0, 2.5, 1.0, "alpha"), (1.0, math.nan, 1.0, "alpha"), (1.0, "x", 1.0, "alpha"),
    (1.0, 0.5, 0.0, "beta"), (1.0, 0.5, math.inf, "beta"), ([0.0, math.nan], 0.5, 1.0, "z"),
    ([0.0, math.inf], 0.5, 1.0, "z"), (["a"], 0.5, 1.0, "z"),
])
def test_bad_input_is_a_one_line_error(z, alpha, beta, named):
    with pytest.raises(NeurospikeError, match=named) as caught:
        mittag_leffler(z, alpha, beta)
    assert "\n" not in str(caught.value)

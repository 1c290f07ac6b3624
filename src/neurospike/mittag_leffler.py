"""The Mittag-Leffler function E_{α,β}(z) = Σ_{k≥0} z^k / Γ(αk + β), exact solution of fractional linear tests.

D^α y = −λ y, y(0) = 1 (Caputo, 0 < α ≤ 1) has y(t) = E_α(−λ t^α); the fractional LIF neuron below threshold has
v(t) = E_L + (I/g_L)(1 − E_α(−(g_L/C) t^α)).

Algorithm: R. Garrappa, "Numerical evaluation of two and three parameter Mittag-Leffler functions",
SIAM J. Numer. Anal. 53 (2015) 1350–1369 (his MATLAB ``ml.m``). With s^{α−β}/(s^α − z) the Laplace transform of
t^{β−1} E_{α,β}(z t^α), E_{α,β}(z) is its inverse at t = 1: the residues at the poles s* = z^{1/α} (all branches
with |arg s*| < π) to the right of the contour, plus the integral over the parabola s(u) = μ(1 + iu)², done by the
trapezoidal rule with 2N + 1 nodes. The poles split the plane into regions; in each admissible one μ, h and N are
chosen so that the discretisation and truncation errors are both below ε = 1e-15 after allowing for the growth of
round-off by e^{μ} (Garrappa §3–4), and the region with the fewest nodes is used (if even that needs more than 200
nodes, ε is loosened tenfold, as in ``ml.m``, down to 1e-9 at most; no admissible contour gives NaN).

|z| ≤ 1 uses the power series instead (Horner's rule, truncated where Γ(αk + β) > 2.4e18), as the contour
integral loses digits near z = 0.

For α < 1, |z| ≥ 10 and |arg z| ≥ απ (no pole, hence no exponentially growing part) the value comes from the
asymptotic series E_{α,β}(z) = −Σ_{k=1}^{K} z^{−k}/Γ(β − αk) (Podlubny 1999, Thm 1.4), taken only when two
consecutive terms are below 1e-17 times its sum: its remainder is then below round-off, and the relative accuracy
holds where the function itself is small (E_α(−x) ~ x^{−1}/Γ(1 − α)).

Why the series near 0, and the measured errors: docs/design.md#mittag-leffler-accuracy
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import rgamma

from .errors import NeurospikeError

EPSILON = 1.0e-15
LOG_EPSILON = math.log(EPSILON)
LOG_EPS = math.log(np.finfo(float).eps)
MAX_NODES = 200
ASYMPTOTIC_TERMS = 40
ASYMPTOTIC_TOLERANCE = 1.0e-17
LOOSEST_LOG_EPSILON = math.log(1.0e-9)
SERIES_RADIUS = 1.0
SERIES_GAMMA_ARGUMENT = 21.0


def mittag_leffler(z, alpha: float, beta: float = 1.0) -> np.ndarray:
    """E_{α,β}(z) for each element of ``z`` (real → float64, complex → complex128), 0 < α ≤ 2, β > 0.

    α = β = 1 returns ``exp(z)`` exactly. See the module docstring for the algorithm and its error control.
    """
    alpha, beta = _parameter("alpha", alpha, 0.0, 2.0), _parameter("beta", beta, 0.0, math.inf)
    values = np.asarray(z)
    if values.dtype.kind not in "iufc":
        raise NeurospikeError(f"mittag_leffler: z must be numeric, got dtype {values.dtype}")
    is_complex = values.dtype.kind == "c"
    values = values.astype(np.complex128 if is_complex else np.float64)
    if not np.all(np.isfinite(values)):
        bad = values[~np.isfinite(values)].flat[0]
        raise NeurospikeError(f"mittag_leffler: z must be finite, got {bad}")
    if alpha == 1.0 and beta == 1.0:
        with np.errstate(over="ignore"):
            return np.exp(values)
    flat = values.astype(np.complex128).ravel()
    result = np.empty(flat.shape, dtype=np.complex128)
    near_zero = np.abs(flat) <= SERIES_RADIUS
    result[near_zero] = _power_series(flat[near_zero], alpha, beta)
    with np.errstate(over="ignore", invalid="ignore"):
        for index in np.flatnonzero(~near_zero):
            value = complex(flat[index])
            asymptotic = _asymptotic(value, alpha, beta)
            result[index] = _laplace_inversion(value, alpha, beta) if asymptotic is None else asymptotic
    result = result.reshape(values.shape)
    return result if is_complex else result.real.copy()


def _parameter(name: str, value, low: float, high: float) -> float:
    """``value`` as a float in (low, high], or a one-line error."""
    allowed = f"a finite number in ({low:g}, {high:g}]" if math.isfinite(high) else f"a finite number > {low:g}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and low < number <= high):
        raise NeurospikeError(f"mittag_leffler: {name} must be {allowed}, got {value!r}")
    return number


def _power_series(z: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Σ_{k<K} z^k/Γ(αk + β) by Horner's rule for |z| ≤ 1, with K the first k where Γ(αk + β) > Γ(21) ≈ 2.4e18:
    the tail is then below 1e-18/(1 − 21^{−α}) and the round-off below eps·E_{α,β}(|z|)."""
    n_terms = max(2, math.ceil((SERIES_GAMMA_ARGUMENT - beta) / alpha) + 1)
    coefficients = rgamma(alpha * np.arange(n_terms) + beta)
    total = np.zeros_like(z)
    for coefficient in coefficients[::-1]:
        total = total * z + coefficient
    return total


def _asymptotic(z: complex, alpha: float, beta: float) -> complex | None:
    """−Σ_{k=1}^{K} z^{−k}/Γ(β − αk) when α < 1, |z| ≥ 10 and |arg z| ≥ απ (no pole, so no exponential term), once
    the series has converged to below round-off (two consecutive terms < 1e-17 of the sum); else None."""
    if alpha >= 1.0 or abs(z) < 10.0 or abs(np.angle(z)) < alpha * math.pi:
        return None
    k = np.arange(1, ASYMPTOTIC_TERMS + 1)
    terms = -(z ** -k.astype(float)) * rgamma(beta - alpha * k)
    partial = np.cumsum(terms)
    magnitude = np.abs(terms)
    last_nonzero = magnitude[0]
    for j in range(1, ASYMPTOTIC_TERMS):
        if magnitude[j] > last_nonzero:  # divergence has set in before convergence
            return None
        # 1/Γ(β − αk) vanishes at some k, so two consecutive terms must be small.
        if magnitude[j - 1] + magnitude[j] <= ASYMPTOTIC_TOLERANCE * abs(partial[j]):
            return complex(partial[j])
        last_nonzero = magnitude[j] if magnitude[j] > 0 else last_nonzero
    return None


def _laplace_inversion(z: complex, alpha: float, beta: float) -> complex:
    """Garrappa's LTInversion at t = 1, γ = 1: residues right of the contour plus trapezoidal parabola integral."""
    theta = float(np.angle(z))
    k_min = math.ceil(-alpha / 2.0 - theta / (2.0 * math.pi))
    k_max = math.floor(alpha / 2.0 - theta / (2.0 * math.pi))
    branches = np.arange(k_min, k_max + 1)
    poles = abs(z) ** (1.0 / alpha) * np.exp(1j * (theta + 2.0 * math.pi * branches) / alpha)
    phi_poles = (poles.real + np.abs(poles)) / 2.0
    order = np.argsort(phi_poles, kind="stable")
    poles, phi_poles = poles[order], phi_poles[order]
    keep = phi_poles > 1.0e-15
    poles = np.concatenate([[0.0], poles[keep]])
    phi = np.concatenate([[0.0], phi_poles[keep], [math.inf]])
    n_poles = len(poles) - 1
    # Strength of the singularity at the left (p) and right (q) end of each region (γ = 1).
    p = [max(0.0, -2.0 * (alpha - beta + 1.0))] + [1.0] * n_poles
    q = [1.0] * n_poles + [math.inf]

    log_epsilon = LOG_EPSILON
    round_off_limit = log_epsilon - LOG_EPS
    regions = [j for j in range(n_poles + 1) if phi[j] < round_off_limit and phi[j] < phi[j + 1]]
    while True:
        choices = []
        for j in regions:
            if j < n_poles:
                choices.append(_bounded_region(phi[j], phi[j + 1], p[j], q[j], log_epsilon))
            else:
                choices.append(_unbounded_region(phi[j], p[j], log_epsilon))
        nodes = [c[2] for c in choices]
        if min(nodes) <= MAX_NODES or log_epsilon >= LOOSEST_LOG_EPSILON:
            break
        log_epsilon += math.log(10.0)
    best = int(np.argmin(nodes))
    mu, h, n = choices[best]
    if not math.isfinite(n):  # no admissible contour (not met in the tests): report, do not guess
        return complex(math.nan, math.nan)
    region = regions[best]

    u = h * np.arange(-n, n + 1)
    s = mu * (1j * u + 1.0) ** 2
    ds = 2.0 * mu * (1j - u)
    integrand = np.exp(s) * s ** (alpha - beta) / (s ** alpha - z) * ds
    integral = h * np.sum(integrand) / (2j * math.pi)
    right_poles = poles[region + 1:]
    residues = np.sum(right_poles ** (1.0 - beta) * np.exp(right_poles)) / alpha
    if z.imag == 0.0 and not np.isfinite(residues):  # real E_{α,β}(z) beyond the float64 range
        return complex(math.inf)
    return complex(integral + residues)


def _bounded_region(phi_left: float, phi_right: float, p: float, q: float, log_epsilon: float):
    """(μ, h, N) for a parabola between two singularities (Garrappa's OptimalParam_RB), N = inf if not admissible."""
    fac = 1.01
    f_max = math.exp(log_epsilon - LOG_EPS)
    sq_left = math.sqrt(phi_left)
    threshold = 2.0 * math.sqrt(log_epsilon - LOG_EPS)
    sq_right = min(math.sqrt(phi_right), threshold - sq_left)
    if p < 1.0e-14 and q < 1.0e-14:
        sq_bar_left, sq_bar_right, f_bar = sq_left, sq_right, fac
    elif p < 1.0e-14:
        f_min = fac * (sq_left / (sq_right - sq_left)) ** q if sq_left > 0 else fac
        if f_min >= f_max:
            return 0.0, 0.0, math.inf
        f_bar = f_min + f_min / f_max * (f_max - f_min)
        fq = f_bar ** (-1.0 / q)
        sq_bar_left = sq_left
        sq_bar_right = (2.0 * sq_right - fq * sq_left) / (2.0 + fq)
    elif q < 1.0e-14:
        f_min = fac * (sq_right / (sq_right - sq_left)) ** p
        if f_min >= f_max:
            return 0.0, 0.0, math.inf
        f_bar = f_min + f_min / f_max * (f_max - f_min)
        fp = f_bar ** (-1.0 / p)
        sq_bar_left = (2.0 * sq_left + fp * sq_right) / (2.0 - fp)
        sq_bar_right = sq_right
    else:
        f_min = fac * (sq_left + sq_right) / (sq_right - sq_left) ** max(p, q)
        if f_min >= f_max:
            return 0.0, 0.0, math.inf
        f_min = max(f_min, 1.5)
        f_bar = f_min + f_min / f_max * (f_max - f_min)
        fp, fq = f_bar ** (-1.0 / p), f_bar ** (-1.0 / q)
        w = -phi_right / log_epsilon
        den = 2.0 + w - (1.0 + w) * fp + fq
        sq_bar_left = ((2.0 + w + fq) * sq_left + fp * sq_right) / den
        sq_bar_right = (-(1.0 + w) * fq * sq_left + (2.0 + w - (1.0 + w) * fp) * sq_right) / den
    log_epsilon = log_epsilon - math.log(f_bar)
    w = -sq_bar_right ** 2 / log_epsilon
    mu = (((1.0 + w) * sq_bar_left + sq_bar_right) / (2.0 + w)) ** 2
    h = -2.0 * math.pi / log_epsilon * (sq_bar_right - sq_bar_left) / ((1.0 + w) * sq_bar_left + sq_bar_right)
    if not (mu > 0 and h > 0):
        return 0.0, 0.0, math.inf
    return mu, h, math.ceil(math.sqrt(1.0 - log_epsilon / mu) / h)


def _unbounded_region(phi_left: float, p: float, log_epsilon: float):
    """(μ, h, N) for a parabola right of every singularity (Garrappa's OptimalParam_RU)."""
    sq_phi = math.sqrt(phi_left)
    phi_bar = phi_left * 1.01 if phi_left > 0 else 0.01
    sq_phi_bar = math.sqrt(phi_bar)
    f_min, f_max, f_target = 1.0, 10.0, 5.0
    while True:
        log_eps_phi = log_epsilon / phi_bar
        n = math.ceil(phi_bar / math.pi * (1.0 - 1.5 * log_eps_phi + math.sqrt(1.0 - 2.0 * log_eps_phi)))
        a = math.pi * n / phi_bar
        sq_mu = sq_phi_bar * abs(4.0 - a) / abs(7.0 - math.sqrt(1.0 + 12.0 * a))
        f_bar = ((sq_phi_bar - sq_phi) / sq_mu) ** (-p)
        if p < 1.0e-14 or f_min < f_bar < f_max:
            break
        sq_phi_bar = f_target ** (-1.0 / p) * sq_mu + sq_phi
        phi_bar = sq_phi_bar ** 2
    mu = sq_mu ** 2
    h = (-3.0 * a - 2.0 + 2.0 * math.sqrt(1.0 + 12.0 * a)) / (4.0 - a) / n
    threshold = log_epsilon - LOG_EPS
    if mu > threshold:
        shift = 0.0 if abs(p) < 1.0e-14 else f_target ** (-1.0 / p) * math.sqrt(mu)
        phi_bar = (shift + sq_phi) ** 2
        if phi_bar < threshold:
            w = math.sqrt(LOG_EPS / (LOG_EPS - log_epsilon))
            u = math.sqrt(-phi_bar / LOG_EPS)
            mu = threshold
            n = math.ceil(w * log_epsilon / (2.0 * math.pi) / (u * w - 1.0))
            h = math.sqrt(LOG_EPS / (LOG_EPS - log_epsilon)) / n
        else:
            return 0.0, 0.0, math.inf
    return mu, h, n

"""Fractional Adams–Bashforth–Moulton predictor–corrector (PECE) for Caputo models, D^α y = f(t, y), 0 < α_i ≤ 1.

Diethelm, Ford & Freed, Nonlinear Dyn. 29 (2002) 3–22, on the integral form y(t) = y0 + I^α f on the uniform grid
t_j = t0 + j h, per state i (f_j = f(t_j, y_j) with the *corrected* y_j):

    predictor  y^P_{n+1} = y0 + h^α/Γ(α+1) Σ_{j=0}^{n} b_{n−j} f_j,           b_k = (k+1)^α − k^α,
    corrector  y_{n+1}   = y0 + h^α/Γ(α+2) [f(t_{n+1}, y^P_{n+1}) + Σ_{j=0}^{n} a_{j,n+1} f_j],
               a_{0,n+1} = n^{α+1} − (n−α)(n+1)^α,   a_{j,n+1} = c_{n+1−j},  c_k = (k+1)^{α+1} + (k−1)^{α+1} − 2k^{α+1}.

Error O(h^{min(2, 1+α)}) for smooth f(t, y(t)); the t^α layer of y near t0 lowers it (Diethelm, Ford & Freed,
BIT 44 (2004)). For α = 1 (b_k = 1, a_0 = 1, c_k = 2) the predictor is the left rectangle rule and the corrector the
trapezoidal rule over [t0, t_{n+1}]; then y_{n+1} − y_n = h/2 [f(y^P_{n+1}) − f(y^P_n) + 2 f_n], which for linear f
is exactly Heun's method, y_n = (1 + z + z²/2)^n y0 (z = hλ).

History (``history="fft"``, the default): both sums are lag convolutions S_m = Σ_{j<m} g_{m−j} f_j (predictor
g_k = b_{k−1}, corrector g_k = c_k, the j = 0 corrector term then fixed to a_{0,n+1}). As in Garrappa's fde12
(Garrappa, Mathematics 6 (2018) 16) the lower triangle {j < m} is split into squares: source block
[t − L, t) × target block [t, t + L) for every t = L·odd, L = ``FFT_BLOCK``·2^k, plus the triangles inside blocks
of ``FFT_BLOCK`` steps. When step t is reached, the square's product is one FFT convolution of length 4L added to an
accumulator of future sums; the in-block lags are summed directly. Work O(N log² N), memory O(N); equal to the
direct sum to rounding (measured 1e-13 in v, 2e-12 ms in spike times, fractional LIF, 10^4–10^5 steps).
``history="direct"``: the full O(N²) sums, block by block with the L1 solver's blocked sum
(:func:`neurospike.solvers.fractional._direct_sum`). Fractional LIF (α = 0.7, 600 ms, one state, 2 cores shared):
10^4 steps 0.022 s (direct 0.049 s), 10^5 0.16 s (direct 4.2 s; L1 direct 2.2 s), 10^6 3.2 s; compile ≈ 1.3 s.

Input: the current of step n → n+1 is read on the piece holding the step's midpoint (as the L1 solver), both for
the predictor-corrector evaluation and for the stored f_{n+1}.

Resets: the same model as the L1 solver, y(t) = y(0) + Σ_{t*≤t} J + I^α f, the memory of f kept across spikes
(no restart of the memory). With ``events="located"`` the step from t_n is first taken whole; on a crossing,
t* = t_n + θh by linear interpolation, ``before`` the interpolated state, ``after`` = reset(before), and the step
is split at t* as in the L1 solver: the pieces [t_n, t*] (f_n, f(t*, before)) and [t*, t_{n+1}] (f(t*, after),
f_{n+1}) enter both sums with the product-integration weights of those non-uniform pieces (:func:`rectangle_weight`
for the predictor, :func:`trapezoid_weights` for the corrector), and both constant terms restart at t*: each is set
so that its form gives ``after`` exactly at t* (the integral at the non-grid time t* is the node's sum plus the
change of every whole step's weight from t_{n+1} to t*, zero for α = 1, so an upstroke's huge f never enters a
difference of large sums; corrections of earlier split steps are interpolated linearly between the nodes, exact
for α = 1 and O(h²) otherwise except right after a split step). The node t_{n+1} is then the predictor–corrector
step over [t*, t_{n+1}] from ``after``; for α = 1, Heun restarted at t*. Later nodes weigh the split step by its
pieces (their excess over the whole step's weights is added once per split step to every later node's sums, as
in L1). So J = after − (the integral form at t*), with ``before`` recorded as the interpolated state. Spike times:
fractional LIF, α = 0.8, 5 nA, 11th spike +7.9e-4, +2.1e-4, +5.8e-5 ms at h = 0.05, 0.025, 0.0125 ms (order ≈ 1.8;
its limit within 2e-4 ms of L1's). This replaces the earlier rule (reset state plus the corrector's drift on the
next node, with a trust test for explosive upstrokes). The weights of the split pieces at every later node (O(N)
once per split step, outside the plain step loop: :func:`neurospike.solvers.fractional.run_split_steps`) use the
closed form from the piece length, exact for α = 1: with the powers' differences taken as plain differences it lost
5 digits at lag 10^4, which moved an AdEx spike (α = 1) by 0.4 ms through its upstroke's f ~ 10^14 mV/ms;
:func:`trapezoid_weights` itself uses 12-point Gauss–Legendre beyond one piece length (rounding level). With
``events="step"`` the spike is at t_{n+1}, before = y_{n+1}, and the node gets ``after`` itself, the constant terms
moved so that both forms give it with the node's stored f. Refractory periods start at t*: nodes t_n ≤ t* + t_ref
keep the post-reset state, store f_n = 0 (the equation is suspended) and move the drift of the integral form into
the constant terms, as a jump (the L1 solver's rule); the step in which the period ends is split there and both
forms restart from the held state (α = 1, LIF, t_ref = 5 ms: ISI error 0.039·h², second order). Not supported:
populations; a second crossing after the reset in the same step; a spike in the step where a period ends (the
period is then taken to end at the step's start); a period shorter than the rest of its spike's step (not held
inside that step); orders α < 1 on models with an explosive upstroke (``SpikeRule.explosive``, AdEx), refused:
f_n at the last node before the crossing is ~10^9 mV/ms and stays in the memory with weights that decay only like
k^{α−1} (FO-AdEx, α = 0.8, measured with the earlier reset rule: second spike at 99.6 ms for h = 0.01,
158.5 ms for h = 0.002; L1, which stores increments, gives 121.0 and 121.5). Fractional LIF (α = 0.7, I = 2.5 nA, dt = 0.05 ms,
600 ms): ISIs 133.76, 175.24, 210.87 ms (L1: 133.77, 175.25, 210.89), adapting as Teka et al. (2014) report.
Restarting the integral form at each reset instead (y0 = reset value, new origin, memory forgotten) gives equal
ISIs of 79.15 ms, no adaptation (measured with a numpy transcription), so it is not offered.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gamma, roots_legendre

from ..compiled import run_compiled
from ..errors import NeurospikeError
from .fractional import (HISTORY_BLOCK, _direct_memory, _direct_sum, blockwise_sum, blockwise_update, check_run,
                         refractory_hold, refractory_start, run_result, run_split_steps, spike_event)
from .methods import VectorField

FFT_BLOCK = 64  # history="fft": lags inside a block of this many steps are summed directly
HISTORIES = ("fft", "direct")
# lets XLA update the accumulator in place through the lax.cond/switch (else it is copied at every block)
COPY_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def predictor_weights(alpha: np.ndarray, count: int) -> np.ndarray:
    """b_k = (k+1)^α − k^α for k = 0 … count − 1, one column per state."""
    k = np.arange(count, dtype=float)[:, None]
    alpha = np.asarray(alpha, dtype=float)[None, :]
    return (k + 1.0) ** alpha - k ** alpha


def corrector_weights(alpha: np.ndarray, count: int) -> np.ndarray:
    """c_k = (k+1)^{α+1} + (k−1)^{α+1} − 2k^{α+1} for k = 0 … count − 1 (c_0 unused, set 0), one column per state."""
    k = np.arange(count, dtype=float)[:, None]
    power = np.asarray(alpha, dtype=float)[None, :] + 1.0
    weights = (k + 1.0) ** power + np.abs(k - 1.0) ** power - 2.0 * k ** power
    weights[0] = 0.0
    return weights


def _window(weights: np.ndarray) -> np.ndarray:
    """window[:, p] = w_{K−1−p} (K = len(weights)), zero-padded so every block slice stays inside: then
    _direct_sum(n + 2, F, (window,), M) = Σ_{j≤n} w_{n+K+1−M−j} F_j."""
    count, n = weights.shape
    padded = -(-(count + 1) // HISTORY_BLOCK) * HISTORY_BLOCK
    return np.concatenate([weights[::-1], np.zeros((padded + HISTORY_BLOCK, n))]).T


def _lag_kernels(alpha, count):
    """Lag-indexed kernels g (2, n, count): predictor g_k = b_{k−1}, corrector g_k = c_k (k ≥ 1), g_0 = 0."""
    kernels = np.zeros((2, len(alpha), count))
    kernels[0, :, 1:] = predictor_weights(alpha, count - 1).T
    kernels[1, :, 1:] = corrector_weights(alpha, count)[1:].T
    return kernels


def _direct_constants(alpha, n_steps):
    return _window(predictor_weights(alpha, n_steps + 1)), _window(corrector_weights(alpha, n_steps + 2))


def _fft_constants(alpha, n_steps):
    """Local windows (2, n, 2·FFT_BLOCK): [p] = g_{FFT_BLOCK − p} (zero beyond), and per level L = FFT_BLOCK·2^k ≤ N
    the spectra rfft(g_0 … g_{2L−1}, 4L) (2, n, 2L + 1)."""
    lengths = [FFT_BLOCK * 2 ** level for level in range(64) if FFT_BLOCK * 2 ** level <= n_steps]
    kernels = _lag_kernels(alpha, 2 * max(lengths, default=0) + FFT_BLOCK + 1)
    local = np.zeros((2, len(alpha), 2 * FFT_BLOCK))
    local[..., :FFT_BLOCK + 1] = kernels[..., FFT_BLOCK::-1]
    spectra = tuple(np.fft.rfft(kernels[..., :2 * length], n=4 * length) for length in lengths)
    return local, spectra


def _fft_sums(step, history, accumulated, constants):
    """(predictor, corrector) sums Σ_{j<m} g_{m−j} F_j for the target m = step: the lags inside the current block
    of ``FFT_BLOCK`` steps directly, the rest from ``accumulated``, into which the FFT products of completed
    source blocks were added (Garrappa's triangle splitting, module docstring)."""
    local_windows = constants[0]
    start = (step // FFT_BLOCK) * FFT_BLOCK
    block = jax.lax.dynamic_slice_in_dim(history, start, FFT_BLOCK, 1)
    weights = jax.lax.dynamic_slice_in_dim(local_windows, FFT_BLOCK - (step - start), FFT_BLOCK, 2)
    sums = jax.lax.dynamic_index_in_dim(accumulated, step, 2, keepdims=False) + jnp.sum(weights * block[None], 2)
    return sums[0], sums[1]


def _fft_push(step, history, accumulated, constants):
    """At step t = L·odd (L = FFT_BLOCK·2^k): add the source block [t − L, t) to the targets [t, t + L)."""
    _, spectra = constants

    def level(length, spectrum, total):
        source = jax.lax.dynamic_slice_in_dim(history, step - length, length, 1)
        product = jnp.fft.irfft(jnp.fft.rfft(source, n=4 * length)[None] * spectrum, n=4 * length)
        old = jax.lax.dynamic_slice_in_dim(total, step, length, 2)
        return jax.lax.dynamic_update_slice_in_dim(total, old + product[..., length:2 * length], step, 2)

    def fire(total):
        quotient = step // FFT_BLOCK
        index = jax.lax.population_count((quotient & -quotient) - 1)
        branches = [lambda a, spectrum=spectrum: level(spectrum.shape[-1] // 2, spectrum, a) for spectrum in spectra]
        return jax.lax.switch(jnp.minimum(index, len(spectra) - 1), branches, total)

    if not spectra:
        return accumulated
    return jax.lax.cond((step % FFT_BLOCK == 0) & (step > 0), fire, lambda a: a, accumulated)


def _difference(power, far, near):
    """far^p − near^p (far > 0, 0 ≤ near ≤ far) without cancellation."""
    ratio = 1.0 - near / jnp.where(far > 0, far, 1.0)
    return far ** power * -jnp.expm1(power * jnp.log1p(-ratio))


def rectangle_weight(alpha, x, a, b):
    """The predictor's (product rectangle) weight of a piece [a, b] (times in steps; f taken at a) at the time x ≥ b,
    in units of h^α/Γ(α + 1): (x − a)^α − (x − b)^α; 0 for an empty piece."""
    return jnp.where(b > a, _difference(alpha, x - a, x - b), 0.0)


_GAUSS_NODES, _GAUSS_WEIGHTS = roots_legendre(12)
_GAUSS_NODES, _GAUSS_WEIGHTS = (_GAUSS_NODES + 1.0) / 2.0, _GAUSS_WEIGHTS / 2.0  # on [0, 1]


def trapezoid_weights(alpha, x, a, b):
    """The corrector's (product trapezoid) weights of the values at a and at b of a piece [a, b] (times in steps) at
    the time x ≥ b, in units of h^α/Γ(α + 2): with B = x − b, ℓ = b − a,

        left = α(α+1) ℓ ∫_0^1 (B + ℓs)^{α−1} s ds,    right = α(α+1) ℓ ∫_0^1 (B + ℓs)^{α−1} (1 − s) ds

    ((α+1)/ℓ·∫ (x − σ)^{α−1}·(hat function) dσ in the variable of the piece); (0, 0) for an empty piece. Closed
    form while B < ℓ; beyond, 12-point Gauss–Legendre in s (the integrand is analytic on a Bernstein ellipse of
    ρ ≥ 5.8: error ~ρ^{−24}, rounding level), because the closed form there subtracts terms ~A^{α+1} to leave
    ~A^{α−1}ℓ² and lost 5 digits at lag 10^4 (enough to shift an AdEx spike by 0.4 ms through the upstroke's
    f ~ 10^14 mV/ms). The whole step [n, n+1] at x = n + 1 gives (α, 1), and two neighbouring steps c_k."""
    length = b - a
    far, near = x - a, x - b
    safe = jnp.where(length > 0, length, 1.0)
    lower, upper = _difference(alpha, far, near), _difference(alpha + 1.0, far, near)
    left = (alpha * upper - (alpha + 1.0) * near * lower) / safe
    right = ((alpha + 1.0) * far * lower - alpha * upper) / safe
    s = jnp.asarray(_GAUSS_NODES)
    kernel = (jnp.expand_dims(jnp.maximum(near, 0.0), -1) + jnp.expand_dims(safe, -1) * s) ** (
        jnp.expand_dims(alpha, -1) - 1.0) * jnp.asarray(_GAUSS_WEIGHTS)
    factor = alpha * (alpha + 1.0) * safe
    far_left, far_right = factor * jnp.sum(kernel * s, -1), factor * jnp.sum(kernel * (1.0 - s), -1)
    distant = near >= length
    left, right = jnp.where(distant, far_left, left), jnp.where(distant, far_right, right)
    return jnp.where(length > 0, left, 0.0), jnp.where(length > 0, right, 0.0)


def _history_at(history, last, theta, alpha, needed):
    """The change of the (predictor, corrector) sums of the whole steps up to t_last from the node t_last + 1 to the
    non-grid time t* = t_last + θh (units h^α/Γ(α+1) and h^α/Γ(α+2)): each step's weight at t* minus its weight at
    the node, zero for α = 1, so an upstroke's huge f never enters a difference of large sums. Block by block over
    the stored f (only where ``needed``); run once per split step."""
    x, node = last + theta, last + 1.0
    a = alpha[:, None]

    def term(columns):
        column = columns[None, :].astype(history.dtype)
        values = jax.lax.dynamic_slice_in_dim(history, columns[0], HISTORY_BLOCK, 1)
        whole = column <= last - 1  # steps [j, j + 1] that end by t_last
        ending = (column >= 1) & (column <= last)  # steps [j − 1, j]
        # the steps [j, j + 1] from one column before the block on: each step's weights once, read twice
        j = jnp.minimum(jnp.concatenate([column[:, :1] - 1.0, column], axis=1), last)
        change = [w_x - w_node for w_x, w_node in zip(_bulk_weights(a, x - j, 1.0), _bulk_weights(a, node - j, 1.0))]
        rect, left = change[0][:, 1:], change[1][:, 1:]  # the step [j, j + 1] for column j
        right = change[2][:, :-1]  # the step [j − 1, j]
        trap = jnp.where(whole, left, 0.0) + jnp.where(ending, right, 0.0)
        return jnp.stack([jnp.sum(jnp.where(whole, rect, 0.0) * values, axis=1), jnp.sum(trap * values, axis=1)])

    return blockwise_sum(jnp.where(needed, last // HISTORY_BLOCK + 1, 0), term, (2, history.shape[0]),
                         history.dtype)


def _shift_inside(sums, around, last, theta, f_last, f_cross, alpha):
    """(predictor, corrector) sums of the integral form at t* = t_last + θh minus those at the next node: ``sums``
    (:func:`_history_at`), the corrections of earlier split steps interpolated linearly between the nodes
    (``around``: their values at the nodes last and last + 1), and the piece [t_last, t*] with f_last at its start
    and f_cross at t* in place of the whole step's f_last."""
    x, node = last + theta, last + 1.0
    moved = [(1.0 - theta) * (at_last - at_next) for at_last, at_next in around]
    piece_left, piece_right = trapezoid_weights(alpha, x, last, x)
    whole_left, _ = trapezoid_weights(alpha, node, last, node)
    predicted = sums[0] + moved[0] + (rectangle_weight(alpha, x, last, x) - 1.0) * f_last
    corrected = sums[1] + moved[1] + (piece_left - whole_left) * f_last + piece_right * f_cross
    return predicted, corrected


def _bulk_weights(alpha, far, length):
    """(rectangle, left, right) weights of pieces of ``length`` ending ``far`` − ``length`` before x (arrays), in the
    units of :func:`rectangle_weight` and :func:`trapezoid_weights`, for the O(N) passes of a split step: the
    closed form of :func:`trapezoid_weights` with D₀ = far^α − near^α = far^α·(−expm1(α log1p(−ℓ/far))) from the
    length itself and D₁ = far^{α+1} − near^{α+1} = far·D₀ + ℓ·near^α (a sum of positive terms): three
    transcendentals a piece instead of Gauss–Legendre's twelve, absolute error ~ε far^α (the weights' own rounding
    level). α = 1, where an explosive upstroke puts f ~ 10^14 mV/ms in the history and the remaining cancellation
    would show, takes the exact (ℓ, ℓ, ℓ)."""
    safe_far = jnp.where(far > 0, far, 1.0)
    ratio = jnp.clip(length / safe_far, 0.0, 1.0)
    inside = ratio < 1.0
    far_power = safe_far ** alpha
    lower = far_power * jnp.where(inside, -jnp.expm1(alpha * jnp.log1p(-jnp.where(inside, ratio, 0.0))), 1.0)
    near = jnp.maximum(far - length, 0.0)
    upper = far * lower + length * jnp.maximum(far_power - lower, 0.0)
    safe = jnp.where(length > 0, length, 1.0)
    left = (alpha * upper - (alpha + 1.0) * near * lower) / safe
    right = ((alpha + 1.0) * far * lower - alpha * upper) / safe
    integer = alpha == 1.0
    weights = [jnp.where(integer, length, w) for w in (lower, left, right)]
    return [jnp.where(length > 0, w, 0.0) for w in weights]


def _split_excess(alpha, x, last, cross, f_last, f_cross, f_after, f_node):
    """How much more the pieces [last, cross] (f_last, f_cross) and [cross, last + 1] (f_after, f_node) of a split
    step weigh at the nodes x ≥ last + 2 than the whole step with its node values (f_last, f_node): (predictor,
    corrector)."""
    node = last + 1.0
    whole_rect, whole_left, whole_right = _bulk_weights(alpha, x - last, 1.0)
    first_rect, first_left, first_right = _bulk_weights(alpha, x - last, cross - last)
    second_rect, second_left, second_right = _bulk_weights(alpha, x - cross, node - cross)
    predicted = (first_rect - whole_rect) * f_last + second_rect * f_after
    corrected = ((first_left - whole_left) * f_last + first_right * f_cross + second_left * f_after
                 + (second_right - whole_right) * f_node)
    return predicted, corrected


def _loop(model, n_steps, located, history_kind, params, current, y0, constants, first_correction, scales, t0, dt):
    """The compiled time loop; returns the trace, the per-step spike records (NaN where none) and the halt time."""
    n = y0.shape[0]
    rule = model.spike
    k = model.state_index(rule.state) if rule else None
    predictor_scale, corrector_scale, alpha = scales
    span = n_steps + 2  # predictor: b_{n−j} from K = N + 1 weights (M = K + 1); corrector: c_{n+1−j}, K = N + 2 (M = K)
    history = _direct_memory(n, n_steps + 1, y0.dtype)  # f_j at column j
    f0 = VectorField(model.derivatives, params, current, t0 + dt / 2)(t0, y0)
    history = jax.lax.dynamic_update_index_in_dim(history, f0, 0, 1)
    if history_kind == "fft":
        longest = max([s.shape[-1] // 2 for s in constants[1]], default=0)
        accumulated = jnp.zeros((2, n, n_steps + longest + 1), dtype=y0.dtype)
    else:
        accumulated = jnp.zeros((2, n, 1), dtype=y0.dtype)
    # corrections of the split steps (resets at t*) to the (predictor, corrector) sums of every later node
    padded = -(-(n_steps + 2) // HISTORY_BLOCK) * HISTORY_BLOCK
    pending = (jnp.zeros((n, padded), dtype=y0.dtype), jnp.zeros((n, padded), dtype=y0.dtype))
    split_resets = rule is not None and rule.reset is not None and located
    splits = split_resets or (rule is not None and rule.refractory is not None)  # steps split at t* or a release

    def body(step, carry, split_mode=False):  # step = n + 1: computes y_{n+1}
        trace, y_prev, (base_p, base), history, accumulated, pending, spike_time, before_all, after_all, \
            halt_time, refractory_end = carry
        halted = ~jnp.isnan(halt_time)
        last = step - 1
        t_prev = t0 + last * dt
        t_now = t0 + step * dt
        held = refractory_hold(t_now, refractory_end, dt)
        field = VectorField(model.derivatives, params, current, t_prev + dt / 2)
        if history_kind == "fft":
            if not split_mode:  # a split step is redone after its plain attempt, which pushed already
                accumulated = _fft_push(step, history, accumulated, constants)
            predicted_sum, corrected_sum = _fft_sums(step, history, accumulated, constants)
        else:
            predicted_sum = _direct_sum(last + 2, history, (constants[0],), span)
            corrected_sum = _direct_sum(last + 2, history, (constants[1],), span)
        corrected_sum = corrected_sum + first_correction[:, last] * history[:, 0]  # a_{0,n+1} replaces c_{n+1}
        predicted_sum, corrected_sum = predicted_sum + pending[0][:, step], corrected_sum + pending[1][:, step]
        predicted = base_p + predictor_scale * predicted_sum
        y_new = base + corrector_scale * (field(t_now, predicted) + corrected_sum)
        # f(predicted) can overflow on an explosive upstroke (AdEx's exponential): the predictor stands, and its
        # threshold crossing is the spike (as Newton's fallback to the explicit value in the L1 solver)
        y_new = jnp.where(jnp.all(jnp.isfinite(y_new)), y_new, predicted)
        y_store, moved, split = y_new, jnp.asarray(False), jnp.asarray(False)
        f_last = history[:, last]
        theta, f_cross, f_after = jnp.asarray(1.0, dtype=y0.dtype), jnp.zeros((n,)), jnp.zeros((n,))
        t_spike, before, after = jnp.nan, jnp.full((n,), jnp.nan), jnp.full((n,), jnp.nan)
        if rule is not None:
            period_end = refractory_end
            released = (period_end > t_prev) & ~held  # a refractory period ends inside this step
            crossed, t_spike, y_cross, y_reset, before, after = spike_event(rule, params, k, located, y_prev, y_new,
                                                                             t_prev, dt, held)
            refractory_end = refractory_start(rule, params, t_spike, refractory_end)
            held = refractory_hold(t_now, refractory_end, dt)  # also the spike's own node when inside its period
            reset_split = crossed if split_resets else jnp.asarray(False)
            release = released & ~crossed
            if splits:  # module docstring: both forms restart at t* from the reset state, or at a release
                theta = jnp.where(reset_split, (t_spike - t_prev) / dt,
                                  jnp.where(release, (period_end - t_prev) / dt, 1.0))
                start_state = jnp.where(reset_split, y_reset, y_prev)

                split = reset_split | release

                def restart():
                    t_split = t_prev + theta * dt
                    f_cross = jnp.where(reset_split, field(t_split, y_cross), 0.0)  # 0: the held state's f
                    f_after = jnp.where(held, 0.0, field(t_split, start_state))
                    sums = _history_at(history, last, theta, alpha, split)
                    around = [(p[:, last], p[:, last + 1]) for p in pending]
                    shift = _shift_inside(sums, around, last, theta, f_last, f_cross, alpha)
                    new_base_p = start_state - predictor_scale * (predicted_sum + shift[0])
                    new_base = start_state - corrector_scale * (corrected_sum + shift[1])
                    node = last + 1.0
                    whole_left, _ = trapezoid_weights(alpha, node, last, node)
                    first_left, first_right = trapezoid_weights(alpha, node, last, last + theta)
                    second_left, second_right = trapezoid_weights(alpha, node, last + theta, node)
                    node_predicted = (predicted_sum + (rectangle_weight(alpha, node, last, last + theta) - 1.0) * f_last
                                      + rectangle_weight(alpha, node, last + theta, node) * f_after)
                    node_corrected = (corrected_sum + (first_left - whole_left) * f_last + first_right * f_cross
                                      + second_left * f_after)
                    guess = new_base_p + predictor_scale * node_predicted
                    value = new_base + corrector_scale * (second_right * field(t_now, guess) + node_corrected)
                    value = jnp.where(jnp.all(jnp.isfinite(value)), value, guess)
                    return value, new_base_p, new_base, node_predicted, node_corrected, f_cross, f_after

                if split_mode:  # only in the step redone after a plain attempt found the split
                    y_store, base_p, base, predicted_sum, corrected_sum, f_cross, f_after = restart()
            if rule.reset is not None and not located:  # events="step": the node gets the reset state
                moved, y_store = crossed, jnp.where(crossed, y_reset, y_store)
            held_value = jnp.where(crossed, y_reset, y_prev)
            # held: the state stays at the post-reset value, the equation is suspended (f = 0 enters the memory)
            # and the drift of the integral form is absorbed into the constant term, as a jump
            moved, y_store = moved | held, jnp.where(held, held_value, y_store)
        finite = jnp.all(jnp.isfinite(y_store))
        halt_time = jnp.where(~halted & ~finite, t_now, halt_time)
        keep = halted | ~finite
        y_store = jnp.where(keep, y_prev, y_store)
        moved, split = moved & ~keep, split & ~keep
        t_spike = jnp.where(keep, jnp.nan, t_spike)
        f_new = jnp.where(keep | held, 0.0, field(t_now, y_store))
        # a moved node (held, or a step-event reset): the constant term is chosen so that the corrector, with the
        # node's stored f in place of f(predictor), gives the node value, and so for the predictor
        base = jnp.where(moved, y_store - corrector_scale * (f_new + corrected_sum), base)
        base_p = jnp.where(moved, y_store - predictor_scale * predicted_sum, base_p)

        def add_split(columns, slices):
            x = columns[None, :].astype(y0.dtype)
            later = x >= step + 1
            excess = _split_excess(alpha[:, None], jnp.maximum(x, step + 1.0), last, last + theta, f_last[:, None],
                                   f_cross[:, None], f_after[:, None], f_new[:, None])
            return [p + jnp.where(later, e, 0.0) for p, e in zip(slices, excess)]

        if split_mode:  # the excess of the split step's pieces at every later node, block by block
            first = (step + 1) // HISTORY_BLOCK
            pending = blockwise_update(pending, first, jnp.where(split, padded // HISTORY_BLOCK - first, 0),
                                       add_split)
        elif splits:  # a plain attempt that found a split writes nothing the redone step does not overwrite
            f_new = jnp.where(split, 0.0, f_new)
        return (jax.lax.dynamic_update_index_in_dim(trace, y_store, step, 0), y_store, (base_p, base),
                jax.lax.dynamic_update_index_in_dim(history, f_new, step, 1), accumulated, pending,
                spike_time.at[step - 1].set(t_spike),
                jax.lax.dynamic_update_index_in_dim(before_all, before, step - 1, 0),
                jax.lax.dynamic_update_index_in_dim(after_all, after, step - 1, 0),
                halt_time, refractory_end), split

    trace = jnp.zeros((n_steps + 1, n), dtype=y0.dtype).at[0].set(y0)
    carry = (trace, y0, (y0, y0), history, accumulated, pending, jnp.full((n_steps,), jnp.nan),
             jnp.full((n_steps, n), jnp.nan), jnp.full((n_steps, n), jnp.nan), jnp.asarray(jnp.nan),
             jnp.asarray(-jnp.inf, dtype=y0.dtype))
    if not splits:
        return jax.lax.fori_loop(1, n_steps + 1, lambda step, carry: body(step, carry)[0], carry)

    # y_prev, the constant terms, halt time and refractory end are restored when an attempt finds a split
    return run_split_steps(body, n_steps, carry, {1, 2, 9, 10})


def run_pece(model, params, current, y0, alpha, t0, dt, n_steps, *, events="located", history="fft"):
    """Integrate D^α y = f(t, y) (Caputo, order ``alpha[i]`` ∈ (0, 1] per state) with the fractional
    Adams–Bashforth–Moulton PECE scheme over ``n_steps`` uniform steps of ``dt`` from ``t0`` (module docstring:
    scheme, resets). Arguments and the returned dict are those of :func:`neurospike.solvers.fractional.run_l1`
    (``t``, ``y``, ``spike_times``, ``before``, ``after``, ``status``, ``halt_time``, ``compile_time_s``,
    ``run_time_s``). ``history``: "fft" (O(N log² N) work) or "direct" (O(N²)); both O(N) memory."""
    if history not in HISTORIES:
        raise NeurospikeError(f"history={history!r}: use {' or '.join(map(repr, HISTORIES))}")
    y0, alpha, n_steps = check_run("PECE", model, params, y0, alpha, dt, n_steps, events)
    if model.spike is not None and model.spike.explosive and np.any(alpha < 1.0):
        raise NeurospikeError(f"{model.name}: pece keeps f(t, y) in its memory and this model's explosive upstroke "
                              f"puts ~1e9 there, so a run with alpha < 1 does not converge; use l1 or fast-l1")

    steps_done = np.arange(n_steps, dtype=float)[:, None]  # n = 0 … N−1
    corrector = corrector_weights(alpha, n_steps + 2)
    first_correction = (steps_done ** (alpha + 1.0) - (steps_done - alpha) * (steps_done + 1.0) ** alpha
                        - corrector[1:n_steps + 1]).T
    constants = (_fft_constants if history == "fft" else _direct_constants)(alpha, n_steps)
    scales = (dt ** alpha / gamma(alpha + 1.0), dt ** alpha / gamma(alpha + 2.0), alpha)
    args = ({k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}, current, jnp.asarray(y0),
            jax.tree_util.tree_map(jnp.asarray, constants), jnp.asarray(first_correction),
            tuple(jnp.asarray(s) for s in scales), jnp.asarray(float(t0)), jnp.asarray(float(dt)))
    loop = lambda *a: _loop(model, n_steps, events == "located", history, *a)  # noqa: E731
    outputs, compile_time, run_time = run_compiled(
        loop, (model.derivatives, model.spike, model.states, n_steps, events, history), args, COPY_OPTIONS)
    trace, _, _, _, _, _, spike_time, before, after, halt_time, _ = outputs
    return run_result(t0, dt, n_steps, trace, spike_time, before, after, halt_time, compile_time, run_time)

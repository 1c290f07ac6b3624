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

Resets: as in the L1 solver (same model, y(t) = y(0) + Σ_{t*≤t} J + I^α f), the jump is added to the constant
term (y0 ← y0 + J) and the memory of f is kept across spikes (no restart of the integral form). With
``events="located"`` the crossing time t* comes from linear interpolation between y_n and y_{n+1}, ``before`` is
the interpolated state there, J = after − before, and the node value is y0 + J + h^α/Γ(α+2) [f(t_{n+1}, after) +
Σ_j a_{j,n+1} f_j] = after + drift: the corrector with f at the reset state in place of f(y^P_{n+1}), which
belongs to the trajectory before the jump (on AdEx's explosive upstroke it is ~10^14 mV/ms). That keeps J
exact (spike times O(h): FO-LIF ISIs within 0.04 ms of L1's at h = 0.05 ms; placing ``after`` itself on the node
made the jump absorb the quadrature error of the step, O(h^α): 0.9 ms). The drift node − after is trusted only
while the spiking state's is within ``TRUSTED_DRIFT`` = 20 one-step drifts of a fresh start from ``after``,
h^α/Γ(α+1)·|f(after)|; an upstroke too fast for the step breaks the quadrature (AdEx, h = 0.01 ms: the
trapezoid sees 9 of the 52 mV v rose before t*, a drift of −43 mV; at h = 0.001 ms f_n ≈ 10^9 mV/ms gives
+10^6 mV), and the node is then after + ((t_{n+1} − t*)/h)^α h^α/Γ(α+1) f(after). With ``events="step"`` the spike is at t_{n+1},
before = y_{n+1}, and the node gets ``after`` itself. In both cases the stored f_{n+1} is f at the
node, and the constant term is set so that the corrector formula with f_{n+1} in place of f(y^P_{n+1}) gives the
node value (for located events that is y0 + J up to f(node) − f(after); for α = 1 the next step is the
trapezoid from the node). The predictor keeps its own constant term, set at the same nodes so that its formula
gives the node value too: its rectangle sum differs from the corrector's trapezoid sum by h/2 per jump of f, and
f jumps at every reset (by ~10^3 mV/ms on AdEx's upstroke), so a shared constant would carry a growing offset
into every later predictor (for α = 1 the predictor becomes explicit Euler from the node). Refractory periods: nodes t_n ≤ t* + t_ref keep the
post-reset state, store f_n = 0 (the equation is suspended) and move the drift of the integral form into the
constant term, as a jump (the L1 solver's rule). Not supported: populations; orders α < 1 on models with an
explosive upstroke (``SpikeRule.explosive``, AdEx), refused: f_n at the last node before the crossing is
~10^9 mV/ms and stays in the memory with weights that decay only like k^{α−1} (FO-AdEx, α = 0.8: second spike
at 99.6 ms for h = 0.01, 158.5 ms for h = 0.002; L1, which stores increments, gives 121.0 and 121.5).
Fractional LIF (α = 0.7, I = 2.5 nA, dt = 0.05 ms, 600 ms): ISIs 133.76, 175.23, 210.88 ms (L1: 133.78, 175.27,
210.89), adapting as Teka et al. (2014) report. Restarting the integral form at each reset instead (y0 = reset
value, new origin, memory forgotten) gives equal ISIs of 79.15 ms, no adaptation (measured with a numpy
transcription), so it is not offered.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gamma, roots_legendre

from ..errors import NeurospikeError
from .fractional import (HISTORY_BLOCK, _direct_memory, _direct_sum, check_run, refractory_hold, refractory_start,
                         run_compiled, run_result, spike_event)
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


def _shift_inside(history, pending, last, theta, f_last, f_cross, alpha):
    """(predictor, corrector) sums of the integral form at t* = t_last + θh minus those at the next node t_last + 1
    (units h^α/Γ(α+1) and h^α/Γ(α+2); the node's sums count f_last over the whole step and leave out the node's own
    value): the whole steps up to t_last by the change of their weights from the node to t* (zero for α = 1, so
    an upstroke's huge f never enters a difference of large sums), the corrections of earlier split steps
    interpolated linearly between the nodes, and the piece [t_last, t*] with f_last at its start and f_cross at t*
    in place of the whole step's f_last."""
    x, node = last + theta, last + 1.0
    column = jnp.arange(history.shape[1], dtype=history.dtype)[None, :]
    a = alpha[:, None]
    end = jnp.minimum(column + 1.0, last)
    whole = column <= last - 1  # steps [j, j + 1] that end by t_last
    rect = rectangle_weight(a, x, column, end) - rectangle_weight(a, node, column, end)
    left = trapezoid_weights(a, x, column, end)[0] - trapezoid_weights(a, node, column, end)[0]
    start = jnp.minimum(column, last)
    right = trapezoid_weights(a, x, start - 1.0, start)[1] - trapezoid_weights(a, node, start - 1.0, start)[1]
    trap = jnp.where(whole, left, 0.0) + jnp.where((column >= 1) & (column <= last), right, 0.0)
    moved = [(1.0 - theta) * (p[:, last] - p[:, last + 1]) for p in pending]
    piece_left, piece_right = trapezoid_weights(alpha, x, last, x)
    whole_left, _ = trapezoid_weights(alpha, node, last, node)
    predicted = (jnp.sum(jnp.where(whole, rect, 0.0) * history, axis=1) + moved[0]
                 + (rectangle_weight(alpha, x, last, x) - 1.0) * f_last)
    corrected = (jnp.sum(trap * history, axis=1) + moved[1] + (piece_left - whole_left) * f_last
                 + piece_right * f_cross)
    return predicted, corrected


def _split_excess(alpha, x, last, cross, f_last, f_cross, f_after, f_node):
    """How much more the pieces [last, cross] (f_last, f_cross) and [cross, last + 1] (f_after, f_node) of a split
    step weigh at the time x than the whole step with its node values (f_last, f_node): (predictor, corrector)."""
    node = last + 1.0
    predicted = ((rectangle_weight(alpha, x, last, cross) - rectangle_weight(alpha, x, last, node)) * f_last
                 + rectangle_weight(alpha, x, cross, node) * f_after)
    whole_left, whole_right = trapezoid_weights(alpha, x, last, node)
    first_left, first_right = trapezoid_weights(alpha, x, last, cross)
    second_left, second_right = trapezoid_weights(alpha, x, cross, node)
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
    pending = (jnp.zeros((n, n_steps + 2), dtype=y0.dtype), jnp.zeros((n, n_steps + 2), dtype=y0.dtype))
    split_resets = rule is not None and rule.reset is not None and located
    splits = split_resets or (rule is not None and rule.refractory is not None)  # steps split at t* or a release

    def body(step, carry):  # step = n + 1: computes y_{n+1}
        trace, y_prev, (base_p, base), history, accumulated, pending, spike_time, before_all, after_all, \
            halt_time, refractory_end = carry
        halted = ~jnp.isnan(halt_time)
        last = step - 1
        t_prev = t0 + last * dt
        t_now = t0 + step * dt
        held = refractory_hold(t_now, refractory_end, dt)
        field = VectorField(model.derivatives, params, current, t_prev + dt / 2)
        if history_kind == "fft":
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

                def restart(_):
                    t_split = t_prev + theta * dt
                    f_cross = jnp.where(reset_split, field(t_split, y_cross), 0.0)  # 0: the held state's f
                    f_after = jnp.where(held, 0.0, field(t_split, start_state))
                    shift = _shift_inside(history, pending, last, theta, f_last, f_cross, alpha)
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

                def keep_on(_):
                    return y_new, base_p, base, predicted_sum, corrected_sum, f_cross, f_after

                split = reset_split | release
                y_split, base_p, base, predicted_sum, corrected_sum, f_cross, f_after = jax.lax.cond(
                    split, restart, keep_on, None)
                y_store = jnp.where(split, y_split, y_new)
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

        def add_split(pending):
            x = jnp.arange(n_steps + 2, dtype=y0.dtype)[None, :]
            later = x >= step + 1
            excess = _split_excess(alpha[:, None], jnp.maximum(x, step + 1.0), last, last + theta, f_last[:, None],
                                   f_cross[:, None], f_after[:, None], f_new[:, None])
            return tuple(p + jnp.where(later, e, 0.0) for p, e in zip(pending, excess))

        if splits:
            pending = jax.lax.cond(split, add_split, lambda p: p, pending)
        return (jax.lax.dynamic_update_index_in_dim(trace, y_store, step, 0), y_store, (base_p, base),
                jax.lax.dynamic_update_index_in_dim(history, f_new, step, 1), accumulated, pending,
                spike_time.at[step - 1].set(t_spike),
                jax.lax.dynamic_update_index_in_dim(before_all, before, step - 1, 0),
                jax.lax.dynamic_update_index_in_dim(after_all, after, step - 1, 0),
                halt_time, refractory_end)

    trace = jnp.zeros((n_steps + 1, n), dtype=y0.dtype).at[0].set(y0)
    carry = (trace, y0, (y0, y0), history, accumulated, pending, jnp.full((n_steps,), jnp.nan),
             jnp.full((n_steps, n), jnp.nan), jnp.full((n_steps, n), jnp.nan), jnp.asarray(jnp.nan),
             jnp.asarray(-jnp.inf, dtype=y0.dtype))
    return jax.lax.fori_loop(1, n_steps + 1, body, carry)


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
        (model.derivatives, model.spike, model.states, n_steps, events, history), loop, args, COPY_OPTIONS)
    trace, _, _, _, _, _, spike_time, before, after, halt_time, _ = outputs
    return run_result(t0, dt, n_steps, trace, spike_time, before, after, halt_time, compile_time, run_time)

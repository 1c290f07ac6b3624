"""The L1 scheme for Caputo fractional-order neuron models, D^α y = f(t, y), 0 < α_i ≤ 1 per state.

On the uniform grid t_k = t0 + k Δt the Caputo derivative of the piecewise-linear interpolant of y is (Oldham &
Spanier 1974; Lin & Xu, J. Comput. Phys. 225 (2007) 1533)

    D^α y(t_n) ≈ Δt^−α / Γ(2 − α) · Σ_{j=0}^{n−1} b_j (y_{n−j} − y_{n−j−1}),    b_j = (j + 1)^{1−α} − j^{1−α},

so with the history H_n = Σ_{j≥1} b_j Δy_{n−j} (b_0 = 1) each step solves, per state i,

    y_n − y_{n−1} + H_n = Δt^α Γ(2 − α) · f(t_n, y_n)        (implicit: Newton on the JAX Jacobian, tol 1e-12)
    y_n = y_{n−1} − H_n + Δt^α Γ(2 − α) · f(t_{n−1}, y_{n−1})  (explicit).

For α_i = 1, b_j = 0 for j ≥ 1 and Δt^α Γ(2 − α) = Δt: backward / forward Euler, same arithmetic. The history is the
full O(N²) sum (no truncated memory, which is known to fire spuriously): per step, a loop over only the blocks of
``HISTORY_BLOCK`` increments written so far, each one vectorised multiply-add of contiguous rows (state-major
layout) with the weights, reversed and zero-padded, read through a sliding window; memory-bound, not Python-bound.

Input: the grid is uniform (the weights need it), so input discontinuities are *not* grid nodes; each step reads
the current on the piece holding its midpoint (as the integer-order methods do), so a jump inside a step is felt
from the step whose midpoint lies after it. Accuracy on smooth solutions: O(Δt^{2−α}) implicit, O(Δt) explicit;
the solutions of fractional equations behave like t^α near t = 0, which lowers the implicit order to about 1 at
fixed t > 0 and to α at the first nodes (Stynes, O'Riordan & Gracia, SIAM J. Numer. Anal. 55 (2017) 1057).

Resets (integrate-and-fire rules). A reset is a jump J = after − before of the state at the spike time t*. As in
pycaputo's integrate-and-fire L1 method (A. Fikl, ``pycaputo.integrate_fire``), the history stores the smooth
increments from the state after one reset to the state before the next (y⁻_{k+1} − y⁺_k), not the jump itself:
the Caputo derivative acts on the continuous part of y, i.e. y(t) = y(0) + Σ_{t*≤t} J + I^α f (I^α the
Riemann–Liouville integral). The memory of the charging phases is kept across spikes, which is what produces
spike-frequency adaptation in fractional LIF (Teka, Marinov & Santamaria, PLoS Comput. Biol. 10 (2014)
e1003526). Putting the jump into the history instead makes interspike intervals *shrink* (fractional LIF,
α = 0.7, I = 2.5 nA: 22.6 → 13.4 ms), contrary to that result. With ``events="located"`` the crossing time t* inside
step n comes from linear interpolation between y_{n−1} and y_n (the scheme's own interpolant), the state there is
``before``, the step's history increment is before − y_{n−1}, and the grid value y_n is set to ``after`` = reset
(before): the post-reset state is placed on the node t_n rather than at t* (pycaputo shortens the step to t*
instead, which a uniform grid cannot do), an O(Δt) shift of the next spike. With ``events="step"`` the reset is
applied to y_n itself (spike time t_n, increment y_n − y_{n−1}), as the integer-order ``events="step"`` loop.
Not supported: refractory periods (refused when > 0), more than one spike per step, populations.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gamma

from ..errors import NeurospikeError
from .methods import VectorField, newton

HISTORY_BLOCK = 512  # history terms summed per inner iteration (5x faster than one full-length sum per step)
_COMPILED: dict = {}


def l1_weights(alpha: np.ndarray, n_steps: int) -> np.ndarray:
    """b_j = (j + 1)^{1−α} − j^{1−α} for j = 0 … n_steps, one column per state (b_0 = 1, also for α = 1)."""
    j = np.arange(n_steps + 1, dtype=float)[:, None]
    exponent = 1.0 - np.asarray(alpha, dtype=float)[None, :]
    weights = (j + 1.0) ** exponent - j ** exponent
    weights[0] = 1.0
    return weights


def _loop(model, n_steps, implicit, located, params, current, y0, window, scale, t0, dt):
    """The compiled time loop; returns the trace, the per-step spike records (NaN where none) and the halt time."""
    n = y0.shape[0]
    rule = model.spike
    k = model.state_index(rule.state) if rule else None

    def body(step, carry):
        trace, increments, spike_time, before_all, after_all, halt_time = carry
        halted = ~jnp.isnan(halt_time)
        t_prev = t0 + (step - 1) * dt
        t_now = t0 + step * dt
        field = VectorField(model.derivatives, params, current, t_prev + dt / 2)
        y_prev = jax.lax.dynamic_index_in_dim(trace, step - 1, 0, keepdims=False)
        # H_n = Σ_{m ≤ n−2} b_{n−1−m} Δ_m (window[n_steps − n + m] = b_{n−1−m}), block by block
        def add_block(block, total):
            weights = jax.lax.dynamic_slice_in_dim(window, n_steps - step + block * HISTORY_BLOCK, HISTORY_BLOCK, 1)
            done = jax.lax.dynamic_slice_in_dim(increments, block * HISTORY_BLOCK, HISTORY_BLOCK, 1)
            return total + jnp.sum(weights * done, axis=1)

        blocks = (step - 1 + HISTORY_BLOCK - 1) // HISTORY_BLOCK
        history = jax.lax.fori_loop(0, blocks, add_block, jnp.zeros((n,), dtype=y0.dtype))
        explicit = y_prev - history + scale * field(t_prev, y_prev)
        if implicit:
            y_new = newton(lambda z: z - y_prev + history - scale * field(t_now, z), explicit)
        else:
            y_new = explicit
        y_store, increment = y_new, y_new - y_prev
        t_spike, before, after = jnp.nan, jnp.full((n,), jnp.nan), jnp.full((n,), jnp.nan)
        if rule is not None:
            level = params[rule.level]
            upward = (y_prev[k] < level) & (y_new[k] >= level)
            if located:
                crossed = upward
                theta = jnp.clip((level - y_prev[k]) / jnp.where(crossed, y_new[k] - y_prev[k], 1.0), 0.0, 1.0)
                y_cross = y_prev + theta * (y_new - y_prev)
                t_cross = t_prev + theta * dt
            else:
                crossed = upward if rule.reset is None else y_new[k] >= level
                y_cross, t_cross = y_new, t_now
            y_reset = y_cross if rule.reset is None else jnp.stack(
                rule.reset(tuple(y_cross[i] for i in range(n)), params))
            t_spike = jnp.where(crossed, t_cross, jnp.nan)
            before = jnp.where(crossed, y_cross, before)
            after = jnp.where(crossed, y_reset, after)
            if rule.reset is not None:
                y_store = jnp.where(crossed, y_reset, y_new)
                increment = jnp.where(crossed, y_cross - y_prev, increment)
        finite = jnp.all(jnp.isfinite(y_store))
        halt_time = jnp.where(~halted & ~finite, t_now, halt_time)
        keep = halted | ~finite
        y_store = jnp.where(keep, y_prev, y_store)
        increment = jnp.where(keep, 0.0, increment)
        t_spike = jnp.where(keep, jnp.nan, t_spike)
        return (jax.lax.dynamic_update_index_in_dim(trace, y_store, step, 0),
                jax.lax.dynamic_update_index_in_dim(increments, increment, step - 1, 1),
                spike_time.at[step - 1].set(t_spike),
                jax.lax.dynamic_update_index_in_dim(before_all, before, step - 1, 0),
                jax.lax.dynamic_update_index_in_dim(after_all, after, step - 1, 0),
                halt_time)

    trace = jnp.zeros((n_steps + 1, n), dtype=y0.dtype).at[0].set(y0)
    padded = -(-n_steps // HISTORY_BLOCK) * HISTORY_BLOCK
    increments = jnp.zeros((n, padded), dtype=y0.dtype)  # state-major: each state's history is contiguous
    carry = (trace, increments, jnp.full((n_steps,), jnp.nan), jnp.full((n_steps, n), jnp.nan),
             jnp.full((n_steps, n), jnp.nan), jnp.asarray(jnp.nan))
    return jax.lax.fori_loop(1, n_steps + 1, body, carry)


def run_l1(model, params, current, y0, alpha, t0, dt, n_steps, *, implicit=True, events="located"):
    """Integrate D^α y = f(t, y) (Caputo, order ``alpha[i]`` ∈ (0, 1] for state i; 1 = integer order) with the L1
    scheme over ``n_steps`` uniform steps of ``dt`` from ``t0``; see the module docstring for the scheme and the
    treatment of resets. ``params`` maps every parameter of ``model`` to a scalar; ``current`` is a
    :mod:`neurospike.currents` current. Compiled once per (model, n_steps, options); parameters, orders, dt and
    input are traced.

    Returns numpy arrays: ``t`` (n_steps + 1,), ``y`` (n_steps + 1, n) on the grid (post-reset values at the nodes
    of spiking steps), ``spike_times``, ``before``/``after`` (the states just before and after each reset),
    ``status`` ("success" or "non-finite"), ``halt_time`` (NaN unless halted), ``compile_time_s``, ``run_time_s``.
    """
    n = model.n_states
    y0 = np.asarray(y0, dtype=float)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), (n,)).copy()
    if y0.shape != (n,) or not np.all(np.isfinite(y0)):
        raise NeurospikeError(f"y0={y0!r} must be {n} finite numbers (states {', '.join(model.states)})")
    bad = alpha[~((alpha > 0) & (alpha <= 1))]
    if bad.size:
        raise NeurospikeError(f"fractional order alpha={float(bad[0]):g} is outside (0, 1]")
    if not (np.isfinite(dt) and dt > 0):
        raise NeurospikeError(f"dt={dt!r} must be a positive finite step (ms)")
    if int(n_steps) != n_steps or n_steps < 1:
        raise NeurospikeError(f"n_steps={n_steps!r} must be a positive integer")
    if events not in ("located", "step"):
        raise NeurospikeError(f"events={events!r}: use 'located' or 'step'")
    n_steps = int(n_steps)
    for name, value in params.items():
        if np.ndim(value) != 0:
            raise NeurospikeError(f"parameter {name}={value!r}: the L1 scheme integrates one neuron; give scalars")
    rule = model.spike
    if rule is not None and rule.refractory is not None and float(params[rule.refractory]) > 0:
        raise NeurospikeError(f"{rule.refractory}={params[rule.refractory]!r}: the L1 scheme has no refractory "
                              f"periods; use 0")

    weights = l1_weights(alpha, n_steps)
    padded = -(-n_steps // HISTORY_BLOCK) * HISTORY_BLOCK
    window = np.concatenate([weights[n_steps - 1::-1], np.zeros((padded, n))]).T  # window[:, p] = b_{N−1−p}
    scale = dt ** alpha * gamma(2.0 - alpha)
    args = ({k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}, current, jnp.asarray(y0),
            jnp.asarray(window), jnp.asarray(scale), jnp.asarray(float(t0)), jnp.asarray(float(dt)))
    leaves, tree = jax.tree_util.tree_flatten(args)
    key = (model.derivatives, model.spike, model.states, n_steps, bool(implicit), events, tree,
           tuple((np.shape(x), np.asarray(x).dtype.str) for x in leaves))
    began = time.perf_counter()
    if key not in _COMPILED:
        loop = lambda *a: _loop(model, n_steps, bool(implicit), events == "located", *a)  # noqa: E731
        _COMPILED[key] = jax.jit(loop).lower(*args).compile()
    compile_time = time.perf_counter() - began
    began = time.perf_counter()
    trace, _, spike_time, before, after, halt_time = jax.block_until_ready(_COMPILED[key](*args))
    run_time = time.perf_counter() - began
    spiked = ~np.isnan(np.asarray(spike_time))
    halt_time = float(halt_time)
    return {
        "t": t0 + dt * np.arange(n_steps + 1),
        "y": np.asarray(trace),
        "spike_times": np.asarray(spike_time)[spiked],
        "before": np.asarray(before)[spiked],
        "after": np.asarray(after)[spiked],
        "status": "success" if np.isnan(halt_time) else "non-finite",
        "halt_time": halt_time,
        "compile_time_s": compile_time,
        "run_time_s": run_time,
    }

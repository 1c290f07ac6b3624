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
pycaputo's integrate-and-fire L1 method (A. Fikl, ``pycaputo.integrate_fire``), the Caputo derivative acts on the
continuous part of y only, y(t) = y(0) + Σ_{t*≤t} J + I^α f (I^α the Riemann–Liouville integral): the history holds
the smooth pieces from the state after one reset to the state before the next, never the jump, and the memory of
the charging phases is kept across spikes, which is what produces spike-frequency adaptation in fractional LIF
(Teka, Marinov & Santamaria, PLoS Comput. Biol. 10 (2014) e1003526; jumps in the history make the intervals shrink
instead, docs/fractional.md).

``events="located"`` (the default): the reset is applied at t*, which becomes an extra node inside the step, and the
step is finished from the reset state, as the integer-order loops do. The step n is first taken whole; if the
spiking state crosses its level, t* = t_{n−1} + θΔt by linear interpolation between y_{n−1} and that value (the
scheme's own piecewise-linear interpolant; first order in t*, like the scheme), ``before`` = the interpolated
state, ``after`` = reset(before). The step then consists of two linear pieces, A = [t_{n−1}, t*] with increment
Δ_A = before − y_{n−1} and B = [t*, t_n] from ``after``, with increment Δ_B = y_n − after, and B is an L1 step of
length ℓ = (1 − θ)Δt:

    (1 − θ)^−α (y_n − after) + w_A(0) Δ_A + H_n = Δt^α Γ(2 − α) f(t_n, y_n)     (explicit: f(t*, after)),

where a piece [a, b] with increment Δ contributes Δ/(b − a)·((t − a)^{1−α} − (t − b)^{1−α})/Γ(2 − α) to D^α y(t)
(:func:`piece_weight`: the L1 weights of the non-uniform grid, Δt^−α w(j) at node t_{n+j}; the whole step gives
b_j). The grid stays uniform (a population keeps one grid) and every later node weighs the two pieces by their true
geometry: the direct sum stores Δ_A + Δ_B with the uniform b_j and, once per split step, adds the excess
(w_A(j) − b_j)Δ_A + (w_B(j) − b_j)Δ_B to the history of every later node (one vector of N + 1 corrections per
state, O(N) work per split step, no buffer to overflow); the sum of exponentials takes the pieces with modified
inflows (below). Refractory periods (LIF ``t_ref``) start at t*: every node t_n ≤ t* + t_ref keeps ``after`` with a
zero increment (the equation is suspended, the memory kept), and the step in which the period ends is split the
same way at t* + t_ref (a held piece with zero increment, then an L1 step of the rest from the held state); a
period shorter than the rest of its spike's step is honoured inside that step. With α = 1 the weights of earlier
pieces vanish and piece B is backward (forward) Euler over [t*, t_n]: the integer-order ``events="located"`` euler /
backward-euler loops to rounding (≤ 2e-13 ms in spike times, refractory periods included; tests). Convergence of
spike times is first order: fractional LIF, α = 0.8, 5 nA, 11th spike 0.129, 0.063, 0.031 ms late at dt = 0.05,
0.025, 0.0125 ms (ratios 2.04, 2.02; pycaputo, whose grid restarts at t*: 0.137, 0.068, 0.034); with the reset
state on the next grid node, as before issue 11, 0.253, 0.106, 0.070 (docs/fractional.md). ``events="step"``:
the reset is applied to y_n itself (spike time t_n, increment y_n − y_{n−1}), as the integer-order
``events="step"`` loop. Not supported: a second crossing in piece B of the same step (it is missed).

Populations (:func:`run_l1_population`; ``l1``, ``l1-explicit``, ``fast-l1`` with per-neuron parameters, initial
states, input or orders α): N neurons on the one grid, each taking exactly the one-neuron step (:func:`l1_step`,
shared with the one-neuron loop): one loop over steps, each step's plain attempt ``jax.vmap``-ed over the neurons,
then the neurons whose step split (a located reset or a refractory release inside it) redone from their start of
step in split mode, gathered in batches of at most ``EVENT_BATCH`` (N/64, at least 8) (their O(N) direct-history
corrections are paid only for them), as the one-neuron loop redoes its split steps. Orders may differ per neuron:
the history constants are computed once per distinct order (the soe mode count padded to the largest) and each
neuron reads its row. A neuron gives the spike times and states it gives alone to 1e-12 relative or better (the
padded modes and the vectorised sums reorder roundings; tests/test_fractional_population.py). Recorded: the states
at every node or at the requested nodes only, the spike count of every neuron and a bounded buffer of (time, neuron)
pairs (at most one spike per neuron and step); the halt time of a neuron whose state turned non-finite.

Fast history (``history="soe"``, the ``fast-l1`` method). The weights themselves are approximated by a sum of
exponentials in j: from x^−α = Γ(α)^−1 ∫_0^∞ e^{−xs} s^{α−1} ds,

    b_j = (1 − α) ∫_j^{j+1} x^−α dx = ∫_0^∞ e^{−js} g(s) ds,    g(s) = (1 − α)/Γ(α) · (1 − e^{−s}) s^{α−2},

discretised by Gauss–Jacobi quadrature (weight s^{α−1}) on [0, 1/N] and Gauss–Legendre on the dyadic intervals
[2^k/N, 2^{k+1}/N] up to s ≈ (ln(1/ε) + 3)/j0, the number of nodes per interval raised until
|b̃_j − b_j| ≤ ε b_j for j0 ≤ j ≤ N (checked on all j ≤ j0 + 2000 and 8000 geometrically spaced j beyond; the
quadrature follows Jiang, Zhang, Zhang & Zhang, Commun. Comput. Phys. 21 (2017) 650, applied here to the L1 weights
rather than to the continuous kernel, so the scheme stays the L1 scheme above). The j < j0 = ``LOCAL_TERMS`` + 1
most recent increments are kept exactly (a shift register) and the remote part Σ_{j≥j0} b̃_j Δy_{n−j} =
Σ_i w_i S_i(n) with S_i(n+1) = λ_i S_i(n) + λ_i^{j0} Δy_{n+1−j0}, λ_i = e^{−s_i}: O(N_exp) work per step and
O(N_exp + j0) memory for the history. The result differs from direct L1 only by the weight error, at most
ε Σ_j b_j |Δy_{n−j}| in each history sum (measured for ε = 1e-10: states 3e-12 and spike times 3e-11
relative on fractional LIF, α = 0.7, 10^5 steps; 1e-10 on HH, α = 0.8). LIF, 10^5 steps: 0.17–0.23 s against
2.2 s for the direct sum.
N_exp for N = 10^5 is 126 at ε = 1e-10 and 144 at the default ε = ``FAST_L1_TOLERANCE`` = 1e-11 (8 nodes per
interval), for α = 0.3, 0.5 and 0.8. The spike upstroke amplifies the weight error (a spike-time shift δ moves v by
δ·dv/dt ≈ δ·100 mV/ms): on FO-HH with only v fractional (64 spikes, 10^5 steps) ε = 1e-10 left 5.7e-7 mV between
fast-l1 and l1, 1e-11 leaves 1.8e-8 mV (2.4e-10 relative to max |v|) at the same run time. α = 1 gives b_j = 0
(j ≥ 1): no modes, Euler.

Split steps in the sum of exponentials: a piece [start, end] of a step (offsets in steps, ℓ = end − start) weighs
(1 − α)/Γ(α) ∫_0^∞ e^{−(j+1−end)s} (1 − e^{−ℓs})/(ℓs) s^{α−1} ds at lag j, i.e. the same nodes s_i with the inflow
factor ρ_i = e^{−(1−end)s_i}(1 − e^{−ℓ s_i})/(ℓ(1 − e^{−s_i})) (:func:`mode_factors`; 1 for the whole step). A split
step adds λ_i Σ_pieces (ρ_i − 1)Δ_piece to every mode at once, and the lags 1 … j0 − 1, which the exact local part
counts, get the exact excess weights minus what the modes add there (a ring of LOCAL_TERMS corrections per state,
moved on each step and carried in ``resume``). The modified quadrature keeps the sum's accuracy: measured relative
weight error ≤ 9.3e-13 for α = 0.3, 0.5, 0.8 at 10^5 steps, every lag j0 … N, pieces from 1e-9 of a step to the
whole (tests/test_fractional_resets.py checks 1e-11).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gamma, roots_jacobi, roots_legendre

from ..compiled import run_compiled
from ..errors import NeurospikeError
from . import events
from .methods import VectorField, newton
from .population import EVENT_BATCH, append_spikes, gather_neurons

HISTORY_BLOCK = 512  # history terms summed per inner iteration (5x faster than one full-length sum per step)
LOCAL_TERMS = 32  # history="soe": the increments Δy_{n−1} … Δy_{n−32} keep their exact weights (j0 = 33)
HISTORIES = ("direct", "soe")
# fast-l1's weight tolerance: 1e-10 left 5.7e-7 mV (7.8e-9 of |v|) between fast-l1 and l1 on FO-HH (only v
# fractional, 64 spikes, 10^5 steps); 1e-11 leaves 1.8e-8 mV (2.4e-10) for 144 instead of 126 terms
FAST_L1_TOLERANCE = 1e-11


def l1_weights(alpha, n_steps: int, xp=np):
    """b_j = (j + 1)^{1−α} − j^{1−α} for j = 0 … n_steps, one column per state (b_0 = 1, also for α = 1); ``xp``
    numpy or jax.numpy (differentiable in α)."""
    j = xp.arange(n_steps + 1, dtype=float)[:, None]
    exponent = 1.0 - xp.asarray(alpha, dtype=float)[None, :]
    weights = (j + 1.0) ** exponent - j ** exponent
    return xp.where(j == 0, 1.0, weights)


def gauss_jacobi(count: int, alpha):
    """The ``count``-point Gauss–Jacobi rule for the weight (1 + x)^{α−1} on [−1, 1] (nodes, weights), by
    Golub–Welsch: the eigenvalues of the symmetric tridiagonal Jacobi matrix of the monic Jacobi polynomials
    P^{(0, α−1)} are the nodes, μ0 = 2^α/α times the squared first components of its eigenvectors the weights.
    jax.numpy (``jnp.linalg.eigh``), so differentiable in ``alpha`` (traced or not); agrees with scipy's
    ``roots_jacobi`` to ~1e-13 relative for 4 … 40 nodes, α ∈ [0.3, 0.99]."""
    b = alpha - 1.0
    k = jnp.arange(count, dtype=jnp.float64)
    width = 2.0 * k + b
    diagonal = jnp.where(k == 0, b / (b + 2.0), b * b / jnp.where(k == 0, 1.0, width * (width + 2.0)))
    m = jnp.arange(1, count, dtype=jnp.float64)
    width = 2.0 * m + b
    off = jnp.sqrt(4.0 * m * m * (m + b) * (m + b) / (width * width * (width + 1.0) * (width - 1.0)))
    nodes, vectors = jnp.linalg.eigh(jnp.diag(diagonal) + jnp.diag(off, 1) + jnp.diag(off, -1))
    return nodes, 2.0 ** alpha / alpha * vectors[0] ** 2


def exponential_sum_terms(alpha, n_steps: int, tolerance: float, per_interval: int, first: int = LOCAL_TERMS + 1,
                          jacobi=None, xp=jnp):
    """The nodes s_i and weights w_i of the sum of exponentials b_j ≈ Σ_i w_i e^{−j s_i} (module docstring) with
    ``per_interval`` nodes on [0, 1/N] (Gauss–Jacobi; ``jacobi``: that rule's (x, w), default
    :func:`gauss_jacobi`) and on each dyadic interval up to (ln(1/ε) + 3)/first (Gauss–Legendre). ``xp``: numpy
    (with scipy's Γ), or jax.numpy: with the node count fixed, the weights b̃_j are then a smooth function of the
    order, which is how ``neurospike.differentiable`` differentiates fast-l1 in α."""
    x, w = gauss_jacobi(per_interval, alpha) if jacobi is None else jacobi
    gamma_of = gamma if xp is np else jax.scipy.special.gamma
    scale = (1.0 - alpha) / gamma_of(alpha)
    start = 1.0 / n_steps
    stop = (np.log(1.0 / tolerance) + 3.0) / first  # e^{−j s} < e^{−3} ε for s beyond, j ≥ first
    s = start * (1.0 + x) / 2.0
    nodes, weights = [s], [(start / 2.0) ** alpha * w * scale * -xp.expm1(-s) / s]
    x, w = roots_legendre(per_interval)
    low = start
    while low < stop:
        s = 1.5 * low + 0.5 * low * x  # [low, 2 low]
        nodes.append(xp.asarray(s))
        weights.append(0.5 * low * w * scale * -xp.expm1(-s) * s ** (alpha - 2.0))
        low *= 2.0
    return xp.concatenate(nodes), xp.concatenate(weights)


@functools.lru_cache(maxsize=64)
def exponential_sum_size(alpha: float, n_steps: int, tolerance: float, first: int = LOCAL_TERMS + 1):
    """The fewest nodes per interval (4 … 39) with which :func:`exponential_sum_terms` meets
    |Σ_i w_i e^{−j s_i} − b_j| ≤ tolerance · b_j for first ≤ j ≤ n_steps, the L1 weight
    b_j = (j + 1)^{1−α} − j^{1−α} of one order 0 < α < 1 (checked on all j ≤ first + 2000 and 8000 geometrically
    spaced j beyond; Gauss–Jacobi nodes from scipy's ``roots_jacobi``). Returns (nodes per interval, nodes,
    weights, measured maximal relative error); no nodes when first > n_steps."""
    if not 0.0 < alpha < 1.0:
        raise NeurospikeError(f"alpha={alpha!r}: the exponential sum is for orders in (0, 1)")
    if not 1e-15 <= tolerance < 1e-2:
        raise NeurospikeError(f"tolerance={tolerance!r} must lie in [1e-15, 1e-2)")
    if first > n_steps:
        return 0, np.zeros(0), np.zeros(0), 0.0
    check = np.unique(np.concatenate([np.arange(first, min(first + 2000, n_steps) + 1),
                                      np.round(np.geomspace(first, n_steps, 8000))])).astype(float)
    exact = check ** (1.0 - alpha) * np.expm1((1.0 - alpha) * np.log1p(1.0 / check))  # no cancellation
    for per_interval in range(4, 40):
        jacobi = roots_jacobi(per_interval, 0.0, alpha - 1.0)  # weight (1 + x)^{α−1} on [−1, 1]
        nodes, weights = exponential_sum_terms(alpha, n_steps, tolerance, per_interval, first, jacobi, np)
        error = np.max(np.abs(np.exp(-np.outer(check, nodes)) @ weights / exact - 1.0))
        if error <= tolerance:
            return per_interval, nodes, weights, float(error)
    raise NeurospikeError(f"tolerance={tolerance!r} not reached with 40 nodes per interval (alpha={alpha!r})")


def exponential_sum(alpha: float, n_steps: int, tolerance: float, first: int = LOCAL_TERMS + 1):
    """Nodes s_i and weights w_i with |Σ_i w_i e^{−j s_i} − b_j| ≤ tolerance · b_j for first ≤ j ≤ n_steps
    (:func:`exponential_sum_size`). Returns (nodes, weights, measured maximal relative error)."""
    return exponential_sum_size(alpha, n_steps, tolerance, first)[1:]


def piece_weight(alpha, lag, start, end):
    """The L1 weight of one linear piece of step m, [t_{m−1} + start·Δt, t_{m−1} + end·Δt] (0 ≤ start ≤ end ≤ 1),
    at the node t_{m+lag}, in units of Δt^−α/Γ(2 − α) per unit increment across the piece:

        ((lag + 1 − start)^{1−α} − (lag + 1 − end)^{1−α}) / (end − start)

    (the Caputo derivative of a linear function over a piece [a, b] is Δ/(b − a)·((t − a)^{1−α} − (t − b)^{1−α})/
    Γ(2 − α) at t ≥ b). Computed without cancellation (x^{1−α}·(−expm1((1−α) log1p(−ℓ/x)))); the whole step
    (0, 1) gives b_lag; a piece ending at the node itself (lag 0, end 1) gives (1 − start)^{−α}; an empty piece
    gives 0. jax.numpy arithmetic; broadcasts."""
    exponent = 1.0 - alpha
    length = end - start
    near = lag + 1.0 - start
    ratio = length / jnp.where(near > 0, near, 1.0)
    inside = ratio < 1.0
    difference = near ** exponent * jnp.where(inside, -jnp.expm1(exponent * jnp.log1p(-jnp.where(inside, ratio, 0.0))),
                                              1.0)
    return jnp.where(length > 0, difference / jnp.where(length > 0, length, 1.0), 0.0)


def direct_constants(alpha, n_steps, tolerance, traced_alpha=None):
    """window[:, p] = b_{N−1−p}, zero-padded: H_n reads a sliding window of it; and the orders (``traced_alpha``:
    jax values of the orders, of which the window is then a jax function; α = 1 states stay 1)."""
    n = alpha.shape[0]
    xp, orders = (np, alpha) if traced_alpha is None else (jnp, jnp.where(jnp.asarray(alpha) < 1.0, traced_alpha, 1.0))
    weights = l1_weights(orders, n_steps, xp)
    padded = -(-n_steps // HISTORY_BLOCK) * HISTORY_BLOCK
    return xp.concatenate([weights[n_steps - 1::-1], xp.zeros((padded, n))]).T, orders


def soe_constants(alpha, n_steps, tolerance, traced_alpha=None):
    """Exact weights b_1 … b_{j0−1} (n, LOCAL_TERMS) and, padded to the largest count over the states, the mode
    weights w_i, decays λ_i, inflows λ_i^{j0} and nodes s_i (n, N_exp); α = 1 states get zero modes (b_j = 0
    there); and the orders. ``traced_alpha`` (jax values, same shape as ``alpha``): the constants as jax
    functions of those orders, with the node counts that ``alpha`` needs (so they are smooth in the order; the
    orders of α = 1 states stay 1)."""
    n = alpha.shape[0]
    sizes = [exponential_sum_size(a, n_steps, tolerance) if a < 1.0 else (0, np.zeros(0), np.zeros(0), 0.0)
             for a in alpha]
    count = max(1, max(len(size[1]) for size in sizes))
    if traced_alpha is None:
        sums = [size[1:3] for size in sizes]
        orders, xp = alpha, np
    else:
        orders = jnp.where(jnp.asarray(alpha) < 1.0, traced_alpha, 1.0)
        sums = [exponential_sum_terms(orders[i], n_steps, tolerance, size[0]) if size[0] else size[1:3]
                for i, size in enumerate(sizes)]
        xp = jnp
    local = l1_weights(orders, LOCAL_TERMS, xp)[1:].T
    pad = lambda a, value: xp.concatenate([xp.asarray(a), xp.full(count - len(a), value)])  # noqa: E731
    nodes = xp.stack([pad(s, 0.0) for s, _ in sums])
    weights = xp.stack([pad(w, 0.0) for _, w in sums])
    real = xp.stack([pad(np.ones(len(s)), 0.0) for s, _ in sums])  # the padded modes have λ = 0, no inflow
    decay = real * xp.exp(-nodes)
    inflow = real * xp.exp(-(LOCAL_TERMS + 1) * nodes)
    return local, weights, decay, inflow, nodes, orders


def _direct_memory(n, n_steps, dtype):
    padded = -(-n_steps // HISTORY_BLOCK) * HISTORY_BLOCK
    return jnp.zeros((n, padded), dtype=dtype)  # state-major: each state's history is contiguous


def _direct_sum(step, increments, constants, n_steps):
    """H_n = Σ_{m ≤ n−2} b_{n−1−m} Δ_m (window[n_steps − n + m] = b_{n−1−m}), block by block."""
    window = constants[0]

    def add_block(block, total):
        weights = jax.lax.dynamic_slice_in_dim(window, n_steps - step + block * HISTORY_BLOCK, HISTORY_BLOCK, 1)
        done = jax.lax.dynamic_slice_in_dim(increments, block * HISTORY_BLOCK, HISTORY_BLOCK, 1)
        return total + jnp.sum(weights * done, axis=1)

    blocks = (step - 1 + HISTORY_BLOCK - 1) // HISTORY_BLOCK
    return jax.lax.fori_loop(0, blocks, add_block, jnp.zeros((increments.shape[0],), dtype=increments.dtype))


def blockwise_update(arrays, first_block, count, update):
    """Apply ``update(columns, slices) -> new slices`` to the column blocks ``first_block`` … ``first_block + count
    − 1`` (of ``HISTORY_BLOCK`` columns) of each array in ``arrays`` (widths a multiple of the block; ``count``
    traced), in place: the split steps' O(N) corrections."""

    def body(i, arrays):
        start = (first_block + i) * HISTORY_BLOCK
        columns = start + jnp.arange(HISTORY_BLOCK)
        slices = [jax.lax.dynamic_slice_in_dim(a, start, HISTORY_BLOCK, 1) for a in arrays]
        return tuple(jax.lax.dynamic_update_slice_in_dim(a, new, start, 1)
                     for a, new in zip(arrays, update(columns, slices)))

    return jax.lax.fori_loop(0, count, body, tuple(arrays))


def blockwise_sum(count, term, shape, dtype):
    """Σ_{b < count} term(columns of block b) (each of ``shape``); ``count`` traced (0: zeros)."""
    return jax.lax.fori_loop(0, count, lambda b, total: total + term(b * HISTORY_BLOCK + jnp.arange(HISTORY_BLOCK)),
                             jnp.zeros(shape, dtype=dtype))


def _l1_direct_memory(n, n_steps, dtype):
    """(increments of every step, corrections of the split steps per node 0 … N, padded to whole blocks)."""
    padded = -(-(n_steps + 1) // HISTORY_BLOCK) * HISTORY_BLOCK
    return _direct_memory(n, n_steps, dtype), jnp.zeros((n, padded), dtype=dtype)


def _l1_direct_sum(step, memory, constants, n_steps):
    increments, pending = memory
    return _direct_sum(step, increments, constants, n_steps) + pending[:, step]


def _direct_push(step, memory, increment, constants):
    increments, pending = memory
    return jax.lax.dynamic_update_index_in_dim(increments, increment, step - 1, 1), pending


def _excess_weights(alpha, lag, geometry):
    """(w_A(lag) − b_lag, w_B(lag) − b_lag): how much more the two pieces of a split step weigh at lag ``lag`` than
    the whole uniform step with which the history counts their increments (module docstring)."""
    first, cross, _, resume, _ = geometry
    whole = piece_weight(alpha, lag, 0.0, 1.0)
    return piece_weight(alpha, lag, first, cross) - whole, piece_weight(alpha, lag, resume, 1.0) - whole


def _direct_correct(step, memory, geometry, constants, n_steps):
    """A split step m: add Σ_pieces (w_piece(n − m) − b_{n−m}) Δ_piece to the correction of every later node n."""
    increments, pending = memory
    alpha = constants[-1][:, None]
    _, _, rise, _, fall = geometry

    def update(columns, slices):
        lag = columns[None, :].astype(pending.dtype) - step
        excess_a, excess_b = _excess_weights(alpha, jnp.maximum(lag, 1.0), geometry)
        return [slices[0] + jnp.where(lag >= 1, excess_a * rise[:, None] + excess_b * fall[:, None], 0.0)]

    first = (step + 1) // HISTORY_BLOCK
    (pending,) = blockwise_update((pending,), first, pending.shape[1] // HISTORY_BLOCK - first, update)
    return increments, pending


def soe_memory(n, count):
    """(the LOCAL_TERMS latest increments, the modes S_i, corrections of the next LOCAL_TERMS nodes)."""
    return (jnp.zeros((n, LOCAL_TERMS), dtype=jnp.float64), jnp.zeros((n, count), dtype=jnp.float64),
            jnp.zeros((n, LOCAL_TERMS), dtype=jnp.float64))


def _soe_sum(step, memory, constants, n_steps):
    """H_n = Σ_{j<j0} b_j Δ_{n−j} (recent[:, j−1] = Δ_{n−j}) + Σ_i w_i S_i(n) + the correction due at node n."""
    recent, modes, pending = memory
    local, weights = constants[:2]
    return jnp.sum(local * recent, axis=1) + jnp.sum(weights * modes, axis=1) + pending[:, 0]


def _soe_push(step, memory, increment, constants):
    """S_i(n+1) = λ_i S_i(n) + λ_i^{j0} Δ_{n+1−j0}; Δ_n enters the shift register, Δ_{n+1−j0} leaves it; the
    corrections move one node on."""
    recent, modes, pending = memory
    decay, inflow = constants[2:4]
    modes = decay * modes + inflow * recent[:, -1:]
    return (jnp.concatenate([increment[:, None], recent[:, :-1]], axis=1), modes,
            jnp.concatenate([pending[:, 1:], jnp.zeros_like(pending[:, :1])], axis=1))


def mode_factors(nodes, start, end):
    """ρ_i = e^{−(1−end) s_i} (1 − e^{−ℓ s_i}) / (ℓ (1 − e^{−s_i})), ℓ = end − start: the factor by which a piece
    [start, end] of a step (module docstring) changes the inflow of mode s_i relative to the whole step (1 for
    (0, 1); 0 for an empty piece or a padded node s = 0)."""
    length = end - start
    safe_nodes = jnp.where(nodes > 0, nodes, 1.0)
    safe_length = jnp.where(length > 0, length, 1.0)
    factor = (jnp.exp(-(1.0 - end) * safe_nodes) * jnp.expm1(-safe_length * safe_nodes)
              / (safe_length * jnp.expm1(-safe_nodes)))
    return jnp.where((length > 0) & (nodes > 0), factor, 0.0)


def _soe_correct(step, memory, geometry, constants, n_steps):
    """A split step: each mode takes the pieces' increments with the factors ρ_i in place of the whole increment
    (S_i += λ_i Σ_pieces (ρ_i − 1) Δ_piece, from the next node on); the lags 1 … j0 − 1, which the local sum
    counts, get the exact excess weights minus what the modes now add there."""
    recent, modes, pending = memory
    _, weights, decay, _, nodes, alpha = constants
    first, cross, rise, resume, fall = geometry
    excess = ((mode_factors(nodes, first, cross) - 1.0) * rise[:, None]
              + (mode_factors(nodes, resume, 1.0) - 1.0) * fall[:, None])  # (n, N_exp)
    lag = jnp.arange(1, LOCAL_TERMS + 1, dtype=modes.dtype)
    excess_a, excess_b = _excess_weights(alpha[:, None], lag[None, :], geometry)
    exact = excess_a * rise[:, None] + excess_b * fall[:, None]  # (n, LOCAL_TERMS)
    through_modes = jnp.sum(weights[:, None, :] * jnp.exp(-lag[None, :, None] * nodes[:, None, :])
                            * excess[:, None, :], axis=2)  # Σ_i w_i e^{−j s_i} (excess inflow)_i, j < j0
    return recent, modes + decay * excess, pending + exact - through_modes


def l1_step(model, n_steps, implicit, located, history, t0, dt):
    """One neuron's L1 step, shared by the one-neuron loop and the population loop: returns (``advance``,
    ``splits``) with ``advance(params, current, constants, scale, step, state, split_mode) -> (state, (t_spike,
    before, after), split)``, ``state`` = (y at the previous node, history memory, halt time, refractory end);
    ``splits``: whether steps can split at t* or a refractory release (then a step that reports ``split`` is
    redone from its start with ``split_mode=True``, :func:`run_split_steps`)."""
    n = model.n_states
    rule = model.spike
    k = model.state_index(rule.state) if rule else None
    if history == "direct":
        history_sum, push, correct = _l1_direct_sum, _direct_push, _direct_correct
    else:
        history_sum, push, correct = _soe_sum, _soe_push, _soe_correct
    split_resets = rule is not None and rule.reset is not None and located
    splits = rule is not None and (rule.reset is not None or rule.refractory is not None)  # steps split at t*/release

    def advance(params, current, constants, scale, step, state, split_mode=False):
        y_prev, memory, halt_time, refractory_end = state
        alpha = constants[-1]
        halted = ~jnp.isnan(halt_time)
        t_prev = t0 + (step - 1) * dt
        t_now = t0 + step * dt
        held = refractory_hold(t_now, refractory_end, dt)
        # the step's free part [t_prev + first·dt, t_now]: all of it, or from the end of a refractory period
        first = 0.0  # models without a refractory period: the plain L1 step, same arithmetic as before issue 11
        if rule is not None and rule.refractory is not None:
            first = jnp.where(held, 1.0, jnp.clip((refractory_end - t_prev) / dt, 0.0, 1.0))
        field = VectorField(model.derivatives, params, current, t_prev + dt / 2)
        history = history_sum(step, memory, constants, n_steps)

        def solve(y_from, offset, extra):
            """The L1 equation on the piece [t_prev + offset·dt, t_now] of ℓ = 1 − offset steps from y_from:
            ℓ^−α (z − y_from) + H + extra = Δt^α Γ(2 − α) f (implicit: at t_now; explicit: at the piece's start)."""
            short = 1.0 if isinstance(offset, float) and offset == 0.0 else (1.0 - offset) ** alpha
            memory_term = short * (history + extra)
            explicit = y_from - memory_term + short * scale * field(t_prev + offset * dt, y_from)
            if not implicit:
                return explicit
            return newton(lambda z: z - y_from + memory_term - short * scale * field(t_now, z), explicit)

        y_new = solve(y_prev, first, 0.0)
        zero = jnp.zeros((n,), dtype=y_prev.dtype)
        y_store = y_new
        # the step's geometry: (piece A start, end, its increment, piece B start, its increment), offsets in steps
        geometry = (first, first, zero, first, y_new - y_prev)
        t_spike, before, after = jnp.nan, jnp.full((n,), jnp.nan), jnp.full((n,), jnp.nan)
        if rule is not None:
            crossed, t_spike, y_cross, y_reset, before, after = spike_event(
                rule, params, k, located, y_prev, y_new, t_prev + first * dt, (1.0 - first) * dt, held)
            refractory_end = refractory_start(rule, params, t_spike, refractory_end)
            if split_resets:  # module docstring: piece A up to t*, the reset there, piece B on from it
                cross = jnp.where(crossed, (t_spike - t_prev) / dt, first)
                restart = jnp.clip((jnp.maximum(t_spike, refractory_end) - t_prev) / dt, cross, 1.0)
                restart = jnp.where(refractory_hold(t_now, refractory_end, dt), 1.0, restart)
                rise = y_cross - y_prev
                extra = piece_weight(alpha, 0.0, first, cross) * rise
                if split_mode:  # only in the step redone after a plain attempt found the split
                    y_store = jnp.where(crossed, solve(y_reset, restart, extra), y_new)
                geometry = tuple(jnp.where(crossed, a, b) for a, b in zip(
                    (first, cross, rise, restart, y_store - y_reset), geometry))
            elif rule.reset is not None:  # events="step": the reset replaces the node value
                y_store = jnp.where(crossed, y_reset, y_new)
        y_store = jnp.where(held, y_prev, y_store)
        finite = jnp.all(jnp.isfinite(y_store))
        halt_time = jnp.where(~halted & ~finite, t_now, halt_time)
        keep = halted | ~finite | held
        y_store = jnp.where(halted | ~finite, y_prev, y_store)
        first, cross, rise, restart, fall = geometry
        rise, fall = jnp.where(keep, 0.0, rise), jnp.where(keep, 0.0, fall)
        geometry = (first, cross, rise, restart, fall)
        t_spike = jnp.where(halted | ~finite, jnp.nan, t_spike)
        split = jnp.asarray(False)
        if splits:
            split = ~keep & ((cross > first) | (restart > 0.0))
        if splits and not split_mode:  # a plain attempt that found a split stores nothing its redo would read
            rise, fall = jnp.where(split, 0.0, rise), jnp.where(split, 0.0, fall)
        memory = push(step, memory, rise + fall, constants)
        if split_mode:
            memory = correct(step, memory, geometry, constants, n_steps)
        return (y_store, memory, halt_time, refractory_end), (t_spike, before, after), split

    return advance, splits


def l1_loop(model, n_steps, implicit, located, history, params, current, y0, constants, scale, t0, dt, resume=None,
            steps=None):
    """The compiled time loop; returns the trace, the per-step spike records (NaN where none) and the halt time.
    ``resume`` = (history memory, refractory end) is where the soe history starts (None for direct). ``steps``:
    None (all ``n_steps``), or a traced count: only steps 1 … ``steps`` run (the later rows stay 0), so one
    compiled size serves every shorter run (the live app's frames)."""
    last = n_steps if steps is None else steps
    n = y0.shape[0]
    advance, splits = l1_step(model, n_steps, implicit, located, history, t0, dt)

    def body(step, carry, split_mode=False):
        trace, y_prev, memory, spike_time, before_all, after_all, halt_time, refractory_end = carry
        (y_store, memory, halt_time, refractory_end), (t_spike, before, after), split = advance(
            params, current, constants, scale, step, (y_prev, memory, halt_time, refractory_end), split_mode)
        # y_prev rides in the carry: reading it back from the trace made XLA copy the whole trace every step
        return (jax.lax.dynamic_update_index_in_dim(trace, y_store, step, 0), y_store, memory,
                spike_time.at[step - 1].set(t_spike),
                jax.lax.dynamic_update_index_in_dim(before_all, before, step - 1, 0),
                jax.lax.dynamic_update_index_in_dim(after_all, after, step - 1, 0),
                halt_time, refractory_end), split

    refractory_end = jnp.asarray(-jnp.inf, dtype=y0.dtype)
    if resume is not None:
        memory, refractory_end = resume
    if history == "direct":
        memory = _l1_direct_memory(n, n_steps, y0.dtype)
    trace = jnp.zeros((n_steps + 1, n), dtype=y0.dtype).at[0].set(y0)
    carry = (trace, y0, memory, jnp.full((n_steps,), jnp.nan), jnp.full((n_steps, n), jnp.nan),
             jnp.full((n_steps, n), jnp.nan), jnp.asarray(jnp.nan), refractory_end)
    if not splits:
        return jax.lax.fori_loop(1, last + 1, lambda step, carry: body(step, carry)[0], carry)
    # y_prev, the soe memory (a plain attempt shifts it; the direct memory's write is overwritten), halt time and
    # refractory end are restored when an attempt finds a split
    return run_split_steps(body, last, carry, {1, 6, 7} | ({2} if history == "soe" else set()))


def run_split_steps(body, n_steps, carry, kept):
    """Steps 1 … n_steps with ``body(step, carry, split_mode) -> (carry, split)``: plain steps in a loop until one
    reports a split (a located reset at t* or a refractory release inside the step), which is then redone with
    ``split_mode=True`` outside that loop. The carry entries in ``kept`` are restored after the plain attempt of a
    split step; the others must be overwritten by its redo (writes at the step's index). Control flow inside every
    step, even a lax.cond or a loop that does nothing, cost 2–6 µs a step (or copied the history), as much as the
    step itself; here it costs once per split."""

    def attempt(state):
        step, carry, _ = state
        new, split = body(step, carry, False)
        carry = tuple(jax.tree_util.tree_map(lambda a, b: jnp.where(split, a, b), old, fresh) if i in kept else fresh
                      for i, (old, fresh) in enumerate(zip(carry, new)))
        return step + jnp.where(split, 0, 1), carry, split

    def stretch(state):
        step, carry, _ = jax.lax.while_loop(lambda s: (s[0] <= n_steps) & ~s[2], attempt,
                                            (state[0], state[1], jnp.asarray(False)))

        def redo(operands):
            step, carry = operands
            return step + 1, body(step, carry, True)[0]

        step, carry = jax.lax.cond(step <= n_steps, redo, lambda operands: operands, (step, carry))
        return step, carry, jnp.asarray(False)

    return jax.lax.while_loop(lambda s: s[0] <= n_steps, stretch, (jnp.asarray(1), carry, jnp.asarray(False)))[1]


def refractory_hold(t_now, refractory_end, dt):
    """Whether the node ``t_now`` lies inside a refractory period (ending at ``refractory_end``; −inf: none). The
    state is held there; the step in which the period ends is split at its end and integrates from the held state
    over the rest of the step (module docstrings)."""
    return t_now <= refractory_end + 1e-9 * dt


def refractory_start(rule, params, t_spike, refractory_end):
    """The end of the refractory period a spike at ``t_spike`` (NaN: no spike) opens, else ``refractory_end``
    (also when the period is 0)."""
    if rule.refractory is None:
        return refractory_end
    period = params[rule.refractory]
    return jnp.where(jnp.isnan(t_spike) | (period <= 0), refractory_end, t_spike + period)


def spike_event(rule, params, k, located, y_prev, y_new, t_prev, dt, held=False):
    """A threshold crossing in the step from ``y_prev`` (at ``t_prev``) to ``y_new``: whether it happened, its
    time (NaN if not), the state at the crossing and after the reset, and both as NaN-padded records (``k``: the
    index of the spiking state). The crossing test, its location and the reset are :mod:`.events`' (located: on
    the straight line between the nodes, the scheme's own interpolant, :func:`.events.locate_on_line`; step
    events: at the step's end). No spike while ``held`` (refractory)."""
    n = y_prev.shape[0]
    level = params[rule.level]
    event_rule = events.EventRule(k, rule.level, rule.reset, rule.refractory, located)
    crossed = events.crossing(event_rule, level, y_prev[k], y_new[k]) & ~held
    if located:
        theta, y_cross = events.locate_on_line(y_prev, y_new, k, level, crossed)
        t_cross = t_prev + theta * dt
    else:
        y_cross, t_cross = y_new, t_prev + dt
    y_reset = events.reset_state(event_rule, params, y_cross)
    nothing = jnp.full((n,), jnp.nan)
    return (crossed, jnp.where(crossed, t_cross, jnp.nan), y_cross, y_reset, jnp.where(crossed, y_cross, nothing),
            jnp.where(crossed, y_reset, nothing))


def check_run(scheme, model, params, y0, alpha, dt, n_steps, events, size=None):
    """Validate a fractional run's inputs (one-line errors); returns (y0, alpha per state, n_steps). One neuron
    (``size`` None): scalar parameters, y0 (n,), alpha (n,); a population of ``size`` neurons: parameters
    scalars or (size,), y0 (n, size), alpha (n,) or (n, size)."""
    n = model.n_states
    y0 = np.asarray(y0, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    if size is None and alpha.ndim == 2:
        raise NeurospikeError(f"alpha per neuron ({alpha.shape[1]} neurons): the {scheme} run here integrates one "
                              f"neuron; give one order per state")
    alpha = np.broadcast_to(alpha, (n, size) if size is not None and alpha.ndim == 2 else (n,)).copy()
    shape = (n,) if size is None else (n, size)
    if y0.shape != shape or not np.all(np.isfinite(y0)):
        raise NeurospikeError(f"y0={y0!r} must be {n} finite numbers (states {', '.join(model.states)})"
                              f"{'' if size is None else f' for each of {size} neurons'}")
    bad = alpha[~((alpha > 0) & (alpha <= 1))]
    if bad.size:
        raise NeurospikeError(f"fractional order alpha={float(bad[0]):g} is outside (0, 1]")
    if not (np.isfinite(dt) and dt > 0):
        raise NeurospikeError(f"dt={dt!r} must be a positive finite step (ms)")
    if int(n_steps) != n_steps or n_steps < 1:
        raise NeurospikeError(f"n_steps={n_steps!r} must be a positive integer")
    if events not in ("located", "step"):
        raise NeurospikeError(f"events={events!r}: use 'located' or 'step'")
    for name, value in params.items():
        if size is None and np.ndim(value) != 0:
            raise NeurospikeError(f"parameter {name}={value!r}: the {scheme} scheme integrates one neuron; "
                                  f"give scalars")
        if size is not None and np.shape(value) not in ((), (size,)):
            raise NeurospikeError(f"parameter {name} has shape {np.shape(value)}: give a scalar or {size} values")
    rule = model.spike
    if rule is not None and rule.refractory is not None and not np.all(np.asarray(params[rule.refractory]) >= 0):
        raise NeurospikeError(f"{rule.refractory}={params[rule.refractory]!r}: a refractory period must be >= 0 ms")
    return y0, alpha, int(n_steps)


def run_l1(model, params, current, y0, alpha, t0, dt, n_steps, *, implicit=True, events="located",
           history="direct", tolerance=FAST_L1_TOLERANCE, horizon=None, resume=None):
    """Integrate D^α y = f(t, y) (Caputo, order ``alpha[i]`` ∈ (0, 1] for state i; 1 = integer order) with the L1
    scheme over ``n_steps`` uniform steps of ``dt`` from ``t0``; see the module docstring for the scheme and the
    treatment of resets. ``params`` maps every parameter of ``model`` to a scalar; ``current`` is a
    :mod:`neurospike.currents` current. ``history="direct"`` sums the full history (O(N²) work, O(N) memory);
    ``history="soe"`` approximates the weights b_j, j > ``LOCAL_TERMS``, by a sum of exponentials with relative
    error ≤ ``tolerance`` (O(N·N_exp) work, O(N_exp) memory; the ``fast-l1`` method). Compiled once per (model,
    n_steps, options, N_exp); parameters, orders, dt and input are traced.

    Continuing a run (``history="soe"`` only; the live app advances a neuron in short chunks): ``horizon`` is the
    number of steps the exponential sum must fit (default ``n_steps``; fix it so every chunk has the same
    weights), and ``resume`` the ``resume`` entry of the previous chunk's result (its history memory: recent
    increments, modes and the pending split-step corrections; and its refractory end), with ``y0`` and ``t0`` its
    last node and the same orders, ``dt`` and ``horizon``.

    Returns numpy arrays: ``t`` (n_steps + 1,), ``y`` (n_steps + 1, n) on the grid (at a spiking step's node the
    state reached from the reset at t*), ``spike_times``, ``before``/``after`` (the states just before and after
    each reset), ``status`` ("success" or "non-finite"), ``halt_time`` (NaN unless halted), ``compile_time_s``,
    ``run_time_s``.
    """
    if history not in HISTORIES:
        raise NeurospikeError(f"history={history!r}: use {' or '.join(map(repr, HISTORIES))}")
    if history == "soe" and not (isinstance(tolerance, float) and 1e-15 <= tolerance < 1e-2):
        raise NeurospikeError(f"tolerance={tolerance!r} must be a float in [1e-15, 1e-2)")
    y0, alpha, n_steps = check_run("L1", model, params, y0, alpha, dt, n_steps, events)
    horizon = n_steps if horizon is None else horizon
    if (horizon != n_steps or resume is not None) and history != "soe":
        raise NeurospikeError("horizon and resume continue a run with the soe (fast-l1) history only")
    if int(horizon) != horizon or horizon < n_steps:
        raise NeurospikeError(f"horizon={horizon!r} must be an integer >= n_steps={n_steps}")

    args = l1_arguments(params, current, y0, alpha, t0, dt, history, tolerance, int(horizon), resume)
    loop = lambda *a: l1_loop(model, n_steps, bool(implicit), events == "located", history, *a)  # noqa: E731
    outputs, compile_time, run_time = run_compiled(
        loop, (model.derivatives, model.spike, model.states, n_steps, bool(implicit), events, history), args)
    trace, _, memory, spike_time, before, after, halt_time, refractory_end = outputs
    result = run_result(t0, dt, n_steps, trace, spike_time, before, after, halt_time, compile_time, run_time)
    return dict(result, resume=(memory, refractory_end) if history == "soe" else None)


def l1_arguments(params, current, y0, alpha, t0, dt, history, tolerance, horizon, resume=None):
    """The traced arguments of :func:`l1_loop` after its static ones (checked inputs; ``alpha`` per state): the
    history constants fitted to ``horizon`` steps, Δt^α Γ(2 − α), and for the soe history ``resume`` or an empty
    memory (a fresh run and a continued one share one compiled form)."""
    constants = (direct_constants if history == "direct" else soe_constants)(alpha, horizon, tolerance)
    if history == "soe" and resume is None:
        resume = (soe_memory(len(alpha), constants[1].shape[1]), jnp.asarray(-jnp.inf, dtype=jnp.float64))
    scale = dt ** alpha * gamma(2.0 - alpha)
    # numpy arguments: the compiled call takes them as they are (jnp.asarray would dispatch one op each)
    return ({k: np.float64(v) for k, v in params.items()}, current, np.asarray(y0, dtype=float),
            tuple(np.asarray(c, dtype=float) for c in constants), np.asarray(scale, dtype=float), np.float64(t0),
            np.float64(dt), resume)


def run_result(t0, dt, n_steps, trace, spike_time, before, after, halt_time, compile_time, run_time):
    """The result dict of a fractional run (see :func:`run_l1`) from its loop's outputs."""
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


def population_constants(history, orders, horizon, tolerance):
    """The history constants (:func:`direct_constants` or :func:`soe_constants`) of a population whose orders
    ``orders`` (n, N) may differ per neuron: computed once per distinct column of orders, the soe mode count
    padded to the largest (padded modes weigh 0 and decay at once, as for states of one neuron), and one row per
    neuron (leading axis N). Returns (constants, scale Δt^α Γ(2 − α) per neuron (N, n)) without the dt factor
    (``scale_exponent``: the orders (N, n))."""
    distinct, inverse = np.unique(orders.T, axis=0, return_inverse=True)
    builder = direct_constants if history == "direct" else soe_constants
    each = [builder(column, horizon, tolerance) for column in distinct]
    if history == "soe":
        count = max(c[1].shape[1] for c in each)
        pad = lambda a: np.pad(a, ((0, 0), (0, count - a.shape[1])))  # noqa: E731
        each = [(c[0], *map(pad, c[1:5]), c[5]) for c in each]
    return tuple(np.stack(parts)[np.ravel(inverse)] for parts in zip(*each))


def l1_population_loop(model, n_steps, implicit, located, history, spike_capacity, params, current, y0, constants,
                       scale, t0, dt, record_index):
    """The compiled loop of a population (module docstring of :func:`run_l1_population`): y0 (N, n); constants
    and scale with a leading N axis or shared; returns the states at ``record_index`` (len, N, n), the spike
    count per neuron, the spike buffer (times, neurons, offered) and the halt time per neuron."""
    size, n = y0.shape
    advance, splits = l1_step(model, n_steps, implicit, located, history, t0, dt)
    param_axes = {name: (0 if jnp.ndim(value) else None) for name, value in params.items()}
    current_axes = current.population_axes()
    neuron_axis = 0 if jnp.ndim(scale) == 2 else None  # orders per neuron: constants and scale have an N axis

    def advance_all(split_mode):
        return jax.vmap(lambda p, i, c, s, step, state: advance(p, i, c, s, step, state, split_mode),
                        in_axes=(param_axes, current_axes, neuron_axis, neuron_axis, None, 0))

    plain, redo_split = advance_all(False), advance_all(True)
    # the state entries a split step's redo starts from: y, halt time and refractory end as before the plain
    # attempt (and the soe memory, which it shifted); the direct memory as the plain attempt left it (its write
    # at the step's column is overwritten), as in the one-neuron loop (:func:`run_split_steps`)
    kept = {0, 2, 3} | ({1} if history == "soe" else set())
    neurons = jnp.arange(size)
    # every slot of a batch is computed: about 1.5x the splits of a step at 50 Hz and dt 0.1 ms (a spike and a
    # release each); fast-l1 LIF, 1000 neurons, 200 ms at dt 0.1: 15 slots 1.7 s, 64 slots 3.0 s
    batch_size = min(EVENT_BATCH, max(8, size // 64))

    def step_all(step, carry):
        state, counts, buffer = carry
        new, record, split = plain(params, current, constants, scale, step, state)
        if splits:  # the split neurons redone in batches of EVENT_BATCH, each from its own start of step
            def batch(loop):
                pending, new, record = loop
                index = jnp.nonzero(pending, size=batch_size, fill_value=size)[0]
                safe = jnp.minimum(index, size - 1)
                start = tuple(jax.tree_util.tree_map(lambda a: a[safe], (state if i in kept else new)[i])
                              for i in range(4))
                done, done_record, _ = redo_split(
                    gather_neurons(params, param_axes, safe), gather_neurons(current, current_axes, safe),
                    *(a if neuron_axis is None else jax.tree_util.tree_map(lambda c: c[safe], a)
                      for a in (constants, scale)), step, start)
                put = lambda a, b: a.at[index].set(b, mode="drop")  # noqa: E731
                return (pending.at[index].set(False, mode="drop"), jax.tree_util.tree_map(put, new, done),
                        jax.tree_util.tree_map(put, record, done_record))

            new, record = jax.lax.cond(
                jnp.any(split), lambda loop: jax.lax.while_loop(lambda s: jnp.any(s[0]), batch, loop)[1:],
                lambda loop: loop[1:], (split, new, record))
        t_spike = jnp.broadcast_to(record[0], (size,))
        spiked = ~jnp.isnan(t_spike)
        buffer = jax.lax.cond(jnp.any(spiked),
                              lambda b: append_spikes(b, t_spike, neurons, spiked, spike_capacity),
                              lambda b: b, buffer)
        return new, counts + spiked, buffer

    def segment(carry, bounds):
        carry = jax.lax.fori_loop(bounds[0] + 1, bounds[1] + 1, step_all, carry)
        return carry, carry[0][0]

    if history == "direct":
        memory = _l1_direct_memory(n, n_steps, y0.dtype)
    else:
        memory = soe_memory(n, constants[1].shape[-1])
    memory = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (size, *a.shape)), memory)
    state = (y0, memory, jnp.full((size,), jnp.nan), jnp.full((size,), -jnp.inf))
    buffer = (jnp.full((spike_capacity,), jnp.nan), jnp.zeros((spike_capacity,), jnp.int32), jnp.asarray(0))
    carry = (state, jnp.zeros((size,), jnp.int32), buffer)
    (state, counts, buffer), saved = jax.lax.scan(segment, carry, jnp.stack([record_index[:-1], record_index[1:]], 1))
    return jnp.concatenate([y0[None], saved]), counts, buffer, state[2]


def run_l1_population(model, params, current, y0, alpha, t0, dt, n_steps, *, record_index, spike_capacity,
                      implicit=True, events="located", history="direct", tolerance=FAST_L1_TOLERANCE):
    """N neurons at once with the L1 scheme of :func:`run_l1`: each neuron takes exactly the one-neuron step
    (:func:`l1_step`, ``jax.vmap``-ed over neurons; the steps split at a located reset or a refractory release
    are redone, like the one-neuron loop's, for just those neurons, in batches of up to ``EVENT_BATCH``) on the shared
    grid t0 + k·dt. ``params``: scalars or arrays (N,); ``current``: a current with per-neuron leaves or not;
    ``y0`` (n, N); ``alpha`` (n,) or (n, N) (orders per neuron: the history constants are computed per distinct
    order, :func:`population_constants`).

    Records the states at the nodes ``record_index`` (increasing, from 0 to n_steps), the spike count of every
    neuron and the first ``spike_capacity`` (time, neuron) pairs (at most one spike per neuron and step).
    Returns numpy arrays: ``t`` (len(record_index),), ``y`` (len, n, N), ``counts`` (N,), ``spike_times``,
    ``spike_neurons`` (sorted by time, then neuron), ``offered`` (spikes seen; more than recorded when the buffer
    filled), ``halt_time`` (N,: NaN, or the first node where the neuron's state was non-finite; it is held
    there), ``compile_time_s``, ``run_time_s``."""
    if history not in HISTORIES:
        raise NeurospikeError(f"history={history!r}: use {' or '.join(map(repr, HISTORIES))}")
    size = np.shape(y0)[1]
    y0, alpha, n_steps = check_run("L1", model, params, y0, alpha, dt, n_steps, events, size)
    if alpha.ndim == 2 and np.all(alpha == alpha[:, :1]):
        alpha = alpha[:, 0]  # one order for every neuron: shared constants
    if alpha.ndim == 2:
        constants = population_constants(history, alpha, n_steps, tolerance)
        scale = dt ** alpha.T * gamma(2.0 - alpha.T)
    else:
        constants = (direct_constants if history == "direct" else soe_constants)(alpha, n_steps, tolerance)
        scale = dt ** alpha * gamma(2.0 - alpha)
    record_index = np.asarray(record_index, dtype=np.int32)
    args = ({k: np.asarray(v, dtype=float) for k, v in params.items()}, current, np.ascontiguousarray(y0.T),
            tuple(np.asarray(c, dtype=float) for c in constants), np.asarray(scale, dtype=float), np.float64(t0),
            np.float64(dt), record_index)
    loop = lambda *a: l1_population_loop(model, n_steps, bool(implicit), events == "located", history,  # noqa: E731
                                         int(spike_capacity), *a)
    outputs, compile_time, run_time = run_compiled(
        loop, (model.derivatives, model.spike, model.states, n_steps, bool(implicit), events, history,
               int(spike_capacity)), args)
    saved, counts, (times, neurons, offered), halt_time = outputs
    taken = min(int(offered), int(spike_capacity))
    times, neurons = np.asarray(times)[:taken], np.asarray(neurons)[:taken]
    order = np.lexsort((neurons, times))
    return {"t": t0 + dt * record_index, "y": np.moveaxis(np.asarray(saved), 1, 2), "counts": np.asarray(counts),
            "spike_times": times[order], "spike_neurons": neurons[order], "offered": int(offered),
            "halt_time": np.asarray(halt_time), "compile_time_s": compile_time, "run_time_s": run_time}

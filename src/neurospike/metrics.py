"""Spike-train metrics for fitting models to recordings (issue 12): the van Rossum distance (jax.numpy,
differentiable in the spike times and in tau), the Victor–Purpura distance and the coincidence factor Γ (numpy).

A spike train is a 1-D array of spike times in ms; NaN entries are no spike (the NaN padding of a fixed-size
traced run, :func:`neurospike.differentiable`) and are ignored everywhere. Other entries must be finite.

>>> import jax, jax.numpy as jnp
>>> from neurospike import metrics
>>> data, model = jnp.array([10.0, 20.0, 30.0]), jnp.array([12.0, 24.0, jnp.nan])
>>> metrics.van_rossum_distance(data, model, 10.0)                # as elephant's, time_constant=10 ms
>>> jax.grad(metrics.van_rossum_squared, argnums=1)(data, model, 10.0)   # the loss: the square (finite, 0 at NaN)
>>> metrics.victor_purpura_distance(data, model, q=0.1)           # cost 0.1 per ms of shift
>>> metrics.coincidence_factor(data, model, delta=4.0, duration=40.0)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .errors import NeurospikeError

__all__ = ["van_rossum_squared", "van_rossum_distance", "victor_purpura_distance", "coincidence_factor"]


# ---------------------------------------------------------------------------------------------------- van Rossum


def _as_train(times, which: str):
    times = jnp.asarray(times, dtype=float)
    if times.ndim > 1:
        raise NeurospikeError(f"spike train {which} must be 1-D; got shape {times.shape}")
    return jnp.atleast_1d(times)


def _real(times):
    """(times with NaN replaced by 0, mask of real spikes): the first half of the double-where trick, so no NaN
    enters any arithmetic and the cotangent of a padded entry is exactly 0."""
    real = ~jnp.isnan(times)
    return jnp.where(real, times, 0.0), real


def _kernel_sum(x, x_real, y, y_real, tau):
    """Σ_ij exp(−|x_i − y_j| / tau) over the real spikes (the second where drops the padded pairs). |d| is
    written d·sign(d) so that its derivative at d = 0 is 0 (jnp.abs takes 1 there)."""
    gaps = x[:, None] - y[None, :]
    terms = jnp.exp(-(gaps * jnp.sign(gaps)) / tau)
    return jnp.sum(jnp.where(x_real[:, None] & y_real[None, :], terms, 0.0))


def _check_tau(tau) -> None:
    if isinstance(tau, (int, float, np.number)) and not tau > 0:  # a traced tau is not checked
        raise NeurospikeError(f"van Rossum time constant tau={tau!r} must be a positive number of ms (inf allowed)")


def van_rossum_squared(a, b, tau):
    """The squared van Rossum distance (van Rossum 2001, Neural Comput 13:751), elephant's normalisation:

        D² = Σ_ij e^(−|a_i − a_j|/τ) + Σ_ij e^(−|b_i − b_j|/τ) − 2 Σ_ij e^(−|a_i − b_j|/τ)
           = (2/τ) ∫ (f_a − f_b)² dt,   f_x(t) = Σ_i H(t − x_i) e^(−(t − x_i)/τ),

    so an empty train and a one-spike train are at distance 1 (the paper's D² = (1/τ)∫(f_a − f_b)² dt is half
    of this). Closed form from pairwise sums (Houghton & Kreuz 2012), O(len(a)·len(b)) memory; times and
    ``tau`` in ms, τ = inf gives (N_a − N_b)². Smooth in the spike times and τ except where a spike of ``a``
    coincides with one of ``b`` (a |·| kink; the derivative there is 0): use it, not the distance, as a loss.
    Works under jax.jit, jax.grad, jax.jacfwd; NaN entries are ignored and get a zero derivative.
    """
    _check_tau(tau)
    return _squared(_as_train(a, "a"), _as_train(b, "b"), tau)


@jax.jit  # one compiled program per pair of train lengths (op-by-op dispatch compiles every primitive: ~2 s)
def _squared(a, b, tau):
    (a, a_real), (b, b_real) = _real(a), _real(b)
    return (_kernel_sum(a, a_real, a, a_real, tau) + _kernel_sum(b, b_real, b, b_real, tau)
            - 2.0 * _kernel_sum(a, a_real, b, b_real, tau))


def van_rossum_distance(a, b, tau):
    """The van Rossum distance √D² of :func:`van_rossum_squared` (equal to elephant's
    ``van_rossum_distance([a, b], time_constant=tau*pq.ms)[0, 1]``; divide by √2 for the paper's).

    Rounding can make D² slightly negative for nearly equal trains: it is clipped at 0. √ has an infinite
    derivative at 0 (this function's derivative is set to 0 there): fit with :func:`van_rossum_squared`.
    """
    return _root(van_rossum_squared(a, b, tau))


@jax.jit
def _root(squared):
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


# ------------------------------------------------------------------------------------- numpy metrics (no grad)


def _train(times, which: str) -> np.ndarray:
    """The real spikes of a train, sorted (NaN entries dropped)."""
    array = np.asarray(times, dtype=float)
    if array.ndim > 1:
        raise NeurospikeError(f"spike train {which} must be 1-D; got shape {array.shape}")
    array = np.atleast_1d(array)
    array = array[~np.isnan(array)]
    if not np.all(np.isfinite(array)):
        bad = array[~np.isfinite(array)][0]
        raise NeurospikeError(f"spike times of {which} must be finite or NaN (no spike); got {bad!r}")
    return np.sort(array)


def victor_purpura_distance(a, b, q) -> float:
    """The Victor–Purpura distance D^spike[q] (Victor & Purpura 1996, J Neurophysiol 76:1310): the least cost
    of turning ``a`` into ``b`` by deleting or inserting a spike (cost 1 each) and shifting one by Δt ms (cost
    q·|Δt|; ``q`` per ms). Elephant's convention (``victor_purpura_distance([a, b], cost_factor=q/pq.ms)``):
    q = 0 gives |N_a − N_b|, q = inf gives N_a + N_b. Dynamic program over the N_a × N_b grid (numpy, not
    differentiable); NaN entries are ignored, the trains need not be sorted.
    """
    a, b = _train(a, "a"), _train(b, "b")
    q = float(q)
    if not q >= 0:
        raise NeurospikeError(f"Victor-Purpura cost q={q!r} must be a non-negative number per ms (inf allowed)")
    n, m = a.size, b.size
    if q == 0:
        return float(abs(n - m))
    if math.isinf(q) or n == 0 or m == 0:
        return float(n + m)
    shift = q * np.abs(a[:, None] - b[None, :])
    steps = np.arange(m + 1, dtype=float)
    row = steps.copy()  # G[0, j] = j: insert j spikes
    for i in range(1, n + 1):
        # best[j] = min(delete a_i: G[i-1, j] + 1, shift a_i to b_j: G[i-1, j-1] + q|a_i - b_j|); then
        # G[i, j] = min_k≤j best[k] + (j - k) (insert b_k+1..b_j), a running minimum.
        best = np.empty(m + 1)
        best[0] = i
        best[1:] = np.minimum(row[1:] + 1.0, row[:-1] + shift[i - 1])
        row = np.minimum.accumulate(best - steps) + steps
    return float(row[-1])


def count_coincidences(data, model, delta: float = 4.0) -> int:
    """The most pairs (data spike, model spike) with |t_model − t_data| ≤ delta ms, each spike in at most one
    pair. Greedy in time order (each data spike takes the earliest free model spike in its window), which is a
    maximum matching because all windows have the same width."""
    data, model = _train(data, "data"), _train(model, "model")
    count, j = 0, 0
    for spike in data:
        while j < model.size and model[j] < spike - delta:
            j += 1
        if j < model.size and model[j] <= spike + delta:
            count += 1
            j += 1
    return count


def coincidence_factor(data, model, delta: float = 4.0, duration: float | None = None) -> float:
    """The coincidence factor Γ (Kistler et al. 1997, Neural Comput 9:1015; Jolivet et al. 2008, J Neurosci
    Methods 169:417, the score of the 2009 single-neuron modelling competition, Δ = 4 ms):

        Γ = (N_coinc − ⟨N_coinc⟩) / (½ (N_data + N_model)) · 1/𝒩,
        ⟨N_coinc⟩ = 2 ν Δ N_data,   𝒩 = 1 − 2 ν Δ,   ν = N_model / duration (the model's rate),

    ⟨N_coinc⟩ being the coincidences expected of a Poisson train of the model's rate. N_coinc is
    :func:`count_coincidences` (one-to-one pairs within ±Δ ms). Γ = 1 for identical trains, ≈ 0 for independent
    ones (slightly below: independent trains make fewer one-to-one pairs than 2νΔN_data; mean −0.03 for two
    20 Hz Poisson trains, Δ = 4 ms), 0 when either train is empty, 1 when both are. Not divided by the data's
    intrinsic reliability (Jolivet's Γ/R).
    ``duration`` (ms) is the recording's length; default: the last spike time of either train (trains starting
    at 0). NaN when 2νΔ ≥ 1 (Γ undefined: a train that fast coincides by chance everywhere). Numpy, no gradient.
    """
    data, model = _train(data, "data"), _train(model, "model")
    delta = float(delta)
    if not (math.isfinite(delta) and delta > 0):
        raise NeurospikeError(f"coincidence window delta={delta!r} must be a positive finite number of ms")
    if duration is None:
        both = np.concatenate([data, model])
        duration = float(both.max()) if both.size else 1.0
    duration = float(duration)
    if not (math.isfinite(duration) and duration > 0):
        raise NeurospikeError(f"duration={duration!r} must be a positive finite number of ms")
    n_data, n_model = data.size, model.size
    if n_data == 0 and n_model == 0:
        return 1.0
    rate = n_model / duration
    norm = 1.0 - 2.0 * rate * delta
    if norm <= 0:
        return float("nan")
    expected = 2.0 * rate * delta * n_data
    return float((count_coincidences(data, model, delta) - expected) / (0.5 * (n_data + n_model)) / norm)

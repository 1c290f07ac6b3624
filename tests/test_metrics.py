"""Spike-train metrics (neurospike.metrics) against elephant, and the coincidence factor's properties."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurospike import metrics
from neurospike.errors import NeurospikeError

neo = pytest.importorskip("neo")
pq = pytest.importorskip("quantities")
dissimilarity = pytest.importorskip("elephant.spike_train_dissimilarity")

T_STOP = 1000.0


def _elephant(train):
    return neo.SpikeTrain(np.asarray(train, dtype=float) * pq.ms, t_stop=T_STOP * pq.ms)


def _elephant_van_rossum(a, b, tau):
    return dissimilarity.van_rossum_distance([_elephant(a), _elephant(b)], time_constant=tau * pq.ms)[0, 1]


def _elephant_victor_purpura(a, b, q):
    return dissimilarity.victor_purpura_distance([_elephant(a), _elephant(b)], cost_factor=q / pq.ms)[0, 1]


def _pairs():
    """Random train pairs of different lengths (unsorted too), an empty train, a one-spike train."""
    rng = np.random.default_rng(12)
    pairs = [(rng.uniform(0, T_STOP, n), rng.uniform(0, T_STOP, m)) for n, m in [(20, 20), (35, 12), (3, 50), (1, 1)]]
    close = np.sort(rng.uniform(10, T_STOP - 10, 25))
    pairs.append((close, close + rng.normal(0, 2.0, close.size)))  # nearly equal: cancellation
    pairs += [(np.zeros(0), rng.uniform(0, T_STOP, 7)), (np.array([500.0]), np.zeros(0)), (np.zeros(0), np.zeros(0))]
    return pairs


def _pad(train, size=64):
    return np.concatenate([train, np.full(size - train.size, np.nan)])


# one compiled program for every pair: the trains are NaN-padded to one size (the unpadded calls are checked too)
_distance = jax.jit(metrics.van_rossum_distance)
_squared = jax.jit(metrics.van_rossum_squared)


@pytest.mark.parametrize("tau", [0.5, 5.0, 20.0, 300.0])
def test_van_rossum_equals_elephant(tau):
    for a, b in _pairs():
        theirs = _elephant_van_rossum(a, b, tau)
        ours = float(_distance(_pad(a), _pad(b), tau))
        assert ours == pytest.approx(theirs, rel=1e-10, abs=1e-12), (a.size, b.size, tau)
        assert float(_squared(_pad(b), _pad(a), tau)) == pytest.approx(theirs**2, rel=1e-10, abs=1e-12)
    a, b = _pairs()[1]
    assert float(metrics.van_rossum_distance(a, b, tau)) == pytest.approx(_elephant_van_rossum(a, b, tau), rel=1e-10)


def test_van_rossum_conventions():
    a = np.array([12.0, 40.0, 41.5, 300.0])
    assert float(metrics.van_rossum_distance(a, a, 7.0)) == 0.0
    assert float(metrics.van_rossum_distance(a[::-1], a, 7.0)) == pytest.approx(0.0, abs=1e-7)
    assert float(metrics.van_rossum_distance([], [250.0], 7.0)) == pytest.approx(1.0)  # elephant's normalisation
    # tau = inf counts spikes only, as elephant
    assert float(metrics.van_rossum_distance(a, a[:1], np.inf)) == pytest.approx(3.0)
    assert float(metrics.van_rossum_distance(a, a[:1], np.inf)) == _elephant_van_rossum(a, a[:1], np.inf)
    with pytest.raises(NeurospikeError, match="tau"):
        metrics.van_rossum_distance(a, a, 0.0)
    with pytest.raises(NeurospikeError, match="1-D"):
        metrics.van_rossum_squared(np.ones((2, 2)), a, 1.0)


def test_van_rossum_nan_padding_jit_and_gradient():
    rng = np.random.default_rng(3)
    a, b = np.sort(rng.uniform(0, 200, 9)), np.sort(rng.uniform(0, 200, 6))
    padded_a = np.concatenate([a, np.full(4, np.nan)])
    padded_b = np.concatenate([b, np.full(7, np.nan)])
    tau = 10.0
    value = float(metrics.van_rossum_squared(a, b, tau))
    assert float(metrics.van_rossum_squared(padded_a, padded_b, tau)) == pytest.approx(value, rel=1e-14)
    assert float(metrics.van_rossum_distance(padded_a, b, tau)) == pytest.approx(np.sqrt(value), rel=1e-14)
    all_padding = np.full(5, np.nan)
    assert float(metrics.van_rossum_squared(all_padding, b, tau)) == pytest.approx(
        float(metrics.van_rossum_squared([], b, tau)), rel=1e-14)

    jitted = jax.jit(metrics.van_rossum_distance)
    assert float(jitted(padded_a, padded_b, tau)) == pytest.approx(np.sqrt(value), rel=1e-14)
    assert float(jax.jit(metrics.van_rossum_squared)(padded_a, padded_b, jnp.asarray(tau))) == pytest.approx(value)

    # d D² / d spike times (and tau) against central differences
    grad_a, grad_b, grad_tau = jax.jit(jax.grad(metrics.van_rossum_squared, argnums=(0, 1, 2)))(a, b, tau)
    h = 1e-5

    def central(f, x):
        out = np.empty(x.size)
        for i in range(x.size):
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            out[i] = (f(up) - f(down)) / (2 * h)
        return out

    fd_a = central(lambda x: float(_squared(x, b, tau)), a)
    fd_b = central(lambda x: float(_squared(a, x, tau)), b)
    fd_tau = central(lambda x: float(_squared(a, b, float(x[0]))), np.array([tau]))[0]
    scale = max(np.max(np.abs(fd_a)), np.max(np.abs(fd_b)))
    np.testing.assert_allclose(grad_a, fd_a, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(grad_b, fd_b, rtol=1e-6, atol=1e-6 * scale)
    assert float(grad_tau) == pytest.approx(fd_tau, rel=1e-6)

    # padded: finite, equal on the real spikes, 0 on the padding; jit(grad) and jacfwd alike
    padded_grad_a, padded_grad_b = jax.jit(jax.grad(metrics.van_rossum_squared, argnums=(0, 1)))(
        padded_a, padded_b, tau)
    assert np.all(np.isfinite(padded_grad_a)) and np.all(np.isfinite(padded_grad_b))
    np.testing.assert_allclose(padded_grad_a[:a.size], grad_a, rtol=1e-12)
    np.testing.assert_allclose(padded_grad_b[:b.size], grad_b, rtol=1e-12)
    assert np.all(padded_grad_a[a.size:] == 0) and np.all(padded_grad_b[b.size:] == 0)
    forward = jax.jacfwd(metrics.van_rossum_squared, argnums=1)(padded_a, padded_b, tau)
    np.testing.assert_allclose(forward, padded_grad_b, rtol=1e-12, atol=1e-15)
    # the distance: finite gradient even at distance 0 (identical trains) and with padding
    at_zero = jax.grad(metrics.van_rossum_distance)(padded_a, padded_a, tau)
    assert np.all(np.isfinite(at_zero))
    # at coinciding spikes (a |.| kink) the derivative is 0: identical trains are a minimum
    assert np.all(np.asarray(jax.grad(metrics.van_rossum_squared)(padded_a, padded_a, tau)) == 0)


@pytest.mark.parametrize("q", [0.0, 0.01, 0.1, 0.5, 3.0, np.inf])
def test_victor_purpura_equals_elephant(q):
    for a, b in _pairs():
        ours = metrics.victor_purpura_distance(a, b, q)
        assert ours == pytest.approx(_elephant_victor_purpura(a, b, q), rel=1e-12, abs=1e-12), (a.size, b.size, q)
        padded = np.concatenate([a, [np.nan, np.nan]])
        assert metrics.victor_purpura_distance(padded, b, q) == ours


def test_victor_purpura_limits():
    rng = np.random.default_rng(5)
    a = np.sort(rng.uniform(0, 100, 13))
    b = np.sort(rng.uniform(200, 300, 8))  # disjoint from a
    assert metrics.victor_purpura_distance(a, b, 0.0) == 5.0  # |N_a - N_b|
    assert metrics.victor_purpura_distance(a, b, 0.5) == 21.0  # N_a + N_b: every shift costs more than 2
    assert metrics.victor_purpura_distance(a, a, 1.0) == 0.0
    assert metrics.victor_purpura_distance([10.0], [11.0], 0.25) == pytest.approx(0.25)
    with pytest.raises(NeurospikeError, match="cost"):
        metrics.victor_purpura_distance(a, b, -1.0)


def test_coincidence_factor_properties():
    rng = np.random.default_rng(2009)
    duration = 100_000.0  # 100 s in ms
    data = np.sort(rng.uniform(0, duration, rng.poisson(20 * 100)))  # 20 Hz Poisson
    assert metrics.coincidence_factor(data, data, duration=duration) == pytest.approx(1.0, rel=1e-12)
    assert metrics.coincidence_factor(data, data + 3.9, duration=duration) == pytest.approx(1.0, rel=1e-12)
    assert metrics.coincidence_factor(data, data - 3.9, duration=duration) == pytest.approx(1.0, rel=1e-12)
    assert metrics.coincidence_factor(data, data + 4.1, duration=duration) < 0.2  # out of the window
    independent = np.sort(rng.uniform(0, duration, rng.poisson(20 * 100)))
    assert abs(metrics.coincidence_factor(data, independent, duration=duration)) < 0.1

    # half the spikes removed from the model: N_coinc = N/2, by hand
    half = data[::2]
    n_data, n_model, delta = data.size, half.size, 4.0
    rate = n_model / duration
    expected = (n_model - 2 * rate * delta * n_data) / (0.5 * (n_data + n_model)) / (1 - 2 * rate * delta)
    assert metrics.count_coincidences(data, half, delta) == n_model
    assert metrics.coincidence_factor(data, half, delta, duration) == pytest.approx(expected, rel=1e-12)
    assert 0.6 < expected < 0.7

    # NaN padding ignored; empty trains; the default duration is the last spike
    padded = np.concatenate([half, np.full(10, np.nan)])
    assert metrics.coincidence_factor(data, padded, delta, duration) == pytest.approx(expected, rel=1e-12)
    assert metrics.coincidence_factor(data, [], duration=duration) == 0.0
    assert metrics.coincidence_factor([], data, duration=duration) == 0.0
    assert metrics.coincidence_factor([], [np.nan]) == 1.0
    assert metrics.coincidence_factor(data, half, delta) == metrics.coincidence_factor(data, half, delta, data[-1])
    assert np.isnan(metrics.coincidence_factor([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], delta=4.0, duration=10.0))
    with pytest.raises(NeurospikeError, match="delta"):
        metrics.coincidence_factor(data, data, delta=0.0)


def test_coincidences_are_one_to_one():
    # two model spikes in one data spike's window count once; a model spike serves one data spike only
    assert metrics.count_coincidences([10.0], [8.0, 12.0], 4.0) == 1
    assert metrics.count_coincidences([10.0, 13.0], [11.0], 4.0) == 1
    # the greedy order-preserving matching finds the maximum: 10<->7 and 15<->12, not 10<->12
    assert metrics.count_coincidences([10.0, 15.0], [7.0, 12.0], 4.0) == 2
    assert metrics.count_coincidences([10.0], [14.0], 4.0) == 1  # |Δt| ≤ Δ inclusive


def test_import_neurospike_loads_no_elephant():
    code = ("import sys, neurospike, neurospike.metrics; "
            "print([m for m in ('elephant', 'neo', 'quantities') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Populations: N neurons with per-neuron parameters in one call agree neuron by neuron with the exact reference."""

import numpy as np
import pytest

import neurospike as ns
from neurospike.errors import NeurospikeError, SimulationError

A = np.array([0.02, 0.02, 0.02, 0.1, 0.02])
B = np.array([0.2, 0.2, 0.25, 0.2, 0.2])
C = np.array([-65.0, -55.0, -65.0, -65.0, -50.0])
D = np.array([6.0, 4.0, 6.0, 2.0, 2.0])


def run(**kwargs):
    settings = dict(preset="tonic_spiking", method="rk4", dt=0.01, t_end=120.0,
                    params=dict(a=A, b=B, c=C, d=D), current=14.0)
    settings.update(kwargs)
    return ns.simulate("izhikevich", **settings)


def test_each_neuron_matches_the_reference_solution():
    population = run(save_at=[30.0, 60.0, 120.0])
    assert population["v"].shape == (3, 5) and population.spike_counts.shape == (5,)
    for i in range(5):
        exact = ns.simulate("izhikevich", preset="tonic_spiking", method="reference", t_end=120.0, current=14.0,
                            params=dict(a=A[i], b=B[i], c=C[i], d=D[i]))
        mine = population.spikes[population.spike_neurons == i]
        assert population.spike_counts[i] == len(exact.spikes) == len(mine) > 2
        np.testing.assert_allclose(mine, exact.spikes, atol=1e-6)
        np.testing.assert_allclose(population["u"][:, i], exact.at([30.0, 60.0, 120.0])["u"], atol=1e-6)
        np.testing.assert_allclose(population["v"][:, i], exact.at([30.0, 60.0, 120.0])["v"], atol=1e-3)
    assert np.all(np.diff(population.spikes) >= 0)


def test_step_events_reset_after_the_step_on_the_grid():
    population = run(dt=0.1, events="step", save_at=[120.0])
    assert np.allclose(population.spikes / 0.1, np.round(population.spikes / 0.1))
    assert population.spike_counts.sum() == len(population.spikes)


def test_runaway_neuron_is_stopped_where_it_stops_alone_and_the_others_go_on():
    # neuron 1 resets just below its threshold (c = 29 < v_peak = 30): it fires again 0.003 ms later, faster
    # than max_rate = 2000 Hz. Alone it stops there with rate-exceeded (the single-neuron loop is the
    # independent path); in the population it is stopped at the same spike and the others run to the end.
    c = np.array([-65.0, 29.0, -65.0, -65.0, -50.0])
    population = run(params=dict(a=A, b=B, c=c, d=D), max_rate=2000.0, save_at=[120.0])
    alone = ns.simulate("izhikevich", preset="tonic_spiking", method="rk4", dt=0.01, t_end=120.0, current=14.0,
                        params=dict(a=A[1], b=B[1], c=c[1], d=D[1]), max_rate=2000.0)
    assert alone.status == "rate-exceeded" and len(alone.spikes) == 2
    assert population.status == "rate-exceeded" and "neuron 1 at t=" in population.message
    stop = float(population.message.split("neuron 1 at t=")[1].split(" ms")[0])
    assert abs(stop - alone.spikes[-1]) < 1e-5  # the message prints 6 digits
    np.testing.assert_allclose(population.spikes[population.spike_neurons == 1], alone.spikes, rtol=0, atol=1e-12)
    assert np.isnan(population["v"][-1, 1]) and np.all(np.isfinite(np.delete(population["v"][-1], 1)))
    assert population.spike_counts[0] > 2


def test_population_arrays_must_share_one_length():
    with pytest.raises(NeurospikeError, match="different lengths"):
        run(params=dict(a=A, b=B[:3]))


def test_output_that_would_not_fit_is_refused_before_running():
    with pytest.raises(NeurospikeError, match="GiB"):
        run(dt=0.001, t_end=1000.0, memory_limit=2**20)


def test_per_neuron_input_current():
    amplitudes = np.array([0.0, 5.0, 10.0, 20.0, 40.0])
    population = run(params=dict(a=0.02, b=0.2, c=-65.0, d=6.0), current=amplitudes, save_at=[120.0])
    counts = [len(ns.simulate("izhikevich", preset="tonic_spiking", method="reference", t_end=120.0,
                              current=float(I), params=dict(a=0.02, b=0.2, c=-65.0, d=6.0)).spikes)
              for I in amplitudes]
    assert population.spike_counts.tolist() == counts and counts[0] == 0 and counts[-1] > counts[2]


def test_non_finite_neuron_is_reported():
    # with its threshold out of reach, neuron 4's quadratic v escapes to infinity in finite time
    with pytest.raises(SimulationError, match=r"neuron 4: izhikevich/rk4: the state became non-finite at t="):
        run(params=dict(a=A, b=B, c=C, d=D, v_peak=np.array([30.0] * 4 + [1e308])), t_end=40.0)

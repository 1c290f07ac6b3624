"""Fractional populations: l1 / fast-l1 on N neurons at once, each neuron (its own order α, input, parameters)
equal to the same neuron run alone by the one-neuron loop."""

import numpy as np
import pytest

import neurospike as ns
from neurospike import currents
from neurospike.errors import NeurospikeError
from neurospike.simulate import fractional_orders, population_size, resolve
from neurospike.solvers import fractional

ALPHAS = np.array([0.6, 0.75, 0.9, 1.0])

CASES = {  # model, per-neuron settings, amplitudes of the constant input, dt, t_end
    # located resets, refractory periods per neuron (0 included), every state fractional with its own α
    "lif": ("lif", dict(alpha=ALPHAS, params={"t_ref": np.array([0.0, 2.0, 3.3, 1.234])}),
            np.array([3.0, 4.5, 5.0, 6.0]), 0.1, 200.0),
    # Izhikevich 2003: the reset jumps both states; α per neuron on v, one shared α on u
    "izhikevich": ("izhikevich", dict(alpha={"v": np.array([0.8, 0.9, 0.95, 1.0]), "u": 0.9}),
                   np.array([10.0, 14.0, 20.0, 30.0]), 0.05, 100.0),
    # Hodgkin–Huxley: level crossings without reset; only v fractional
    "hh": ("hh", dict(alpha={"v": np.array([0.85, 0.9, 0.95, 1.0])}), np.array([8.0, 10.0, 12.0, 15.0]), 0.02,
           60.0),
}


def neuron_settings(settings, i):
    """Neuron ``i``'s scalars of the per-neuron ``settings``."""
    one = lambda value: float(value[i]) if np.ndim(value) else value  # noqa: E731
    alpha = settings["alpha"]
    alpha = {k: one(v) for k, v in alpha.items()} if isinstance(alpha, dict) else one(alpha)
    return dict(alpha=alpha, params={k: one(v) for k, v in settings.get("params", {}).items()})


@pytest.mark.parametrize("method", ["l1", "fast-l1"])
@pytest.mark.parametrize("case", list(CASES))
def test_each_neuron_of_a_population_is_the_neuron_run_alone(case, method):
    model, settings, amplitudes, dt, t_end = CASES[case]
    population = ns.simulate(model, method=method, dt=dt, t_end=t_end, current=currents.constant(amplitudes),
                             **settings)
    n_nodes = int(round(t_end / dt)) + 1
    assert population.t.shape == (n_nodes,) and population["v"].shape == (n_nodes, len(amplitudes))
    assert np.all(np.diff(population.spikes) >= 0) and population.status == "success"
    for i, amplitude in enumerate(amplitudes):
        alone = ns.simulate(model, method=method, dt=dt, t_end=t_end, current=float(amplitude),
                            **neuron_settings(settings, i))
        mine = population.spikes[population.spike_neurons == i]
        assert population.spike_counts[i] == len(alone.spikes) == len(mine)
        np.testing.assert_allclose(mine, alone.spikes, rtol=1e-12, atol=0)
        at_nodes = alone.at(population.t)  # the nodes of the one-neuron trace (its spike points lie between)
        for state in population.states:
            scale = np.max(np.abs(at_nodes[state]))
            np.testing.assert_allclose(population[state][:, i], at_nodes[state], rtol=0, atol=1e-12 * scale)
    assert population.spike_counts.sum() >= 2 * len(amplitudes)  # every case spikes (HH: 4 neurons, >= 8)


def test_per_neuron_orders_and_one_order_for_all_give_the_same_neurons():
    """α given once (shared constants) or as an array of equal values (the per-neuron path) is the same run;
    l1-explicit takes populations too."""
    amplitudes = np.array([4.0, 5.0, 6.0])
    runs = [ns.simulate("lif", method="l1-explicit", dt=0.1, t_end=100.0, current=currents.constant(amplitudes),
                        alpha=alpha) for alpha in (0.8, np.full(3, 0.8), {"v": np.full(3, 0.8)})]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.spike_counts, runs[0].spike_counts)
        np.testing.assert_allclose(run["v"], runs[0]["v"], rtol=0, atol=1e-12)
    assert runs[0].spike_counts.sum() > 3 and runs[1].alpha == {"v": [0.8, 0.8, 0.8]}


def test_orders_per_neuron_make_the_population():
    model = ns.models.get("izhikevich")
    orders = fractional_orders(model, {"v": [0.7, 0.8, 0.9]})
    assert orders.shape == (2, 3) and np.all(orders[1] == 1.0) and list(orders[0]) == [0.7, 0.8, 0.9]
    assert fractional_orders(model, 0.5).shape == (2,)
    assert population_size(model.defaults(), {}, None, orders) == 3
    problem = resolve("lif", alpha=np.array([0.6, 0.7]), t_end=10.0)
    assert problem.n_neurons == 2 and problem.neuron(1).orders.tolist() == [0.7]


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=np.array([0.7, 0.8]), params={"g_L": np.array([0.1, 0.2, 0.3])}),
     "alpha has 2 values per state but the population has 3 neurons"),
    (dict(alpha={"v": np.array([0.7, 1.2])}), r"alpha v=1.2 is outside \(0, 1\]"),
    (dict(alpha=np.ones((2, 2))), r"alpha v has shape \(2, 2\): give a number or one number per neuron"),
    (dict(alpha=np.array([0.7, 0.8]), method="pece"), "integrates one neuron"),
    (dict(alpha=np.array([0.7, 0.8]), save_at=[10.0, 10.05]), "save-at time 10.05 is not a node"),
    (dict(alpha=0.7, params={"g_L": np.full(100_000, 0.1)}, dt=0.01, t_end=1000.0),
     "fast-l1 keeps no per-step history"),
])
def test_bad_population_input_is_one_clear_error(kwargs, message):
    settings = dict(method="l1", dt=0.1, t_end=20.0)
    settings.update(kwargs)
    with pytest.raises(NeurospikeError, match=message) as error:
        ns.simulate("lif", **settings)
    assert "\n" not in str(error.value)


def test_the_differentiable_l1_run_refuses_orders_per_neuron_in_one_line():
    with pytest.raises(NeurospikeError, match="alpha per neuron") as error:
        ns.differentiable("lif", method="l1", dt=0.1, t_end=10.0, save_at=[5.0], max_spikes=4,
                          alpha=np.array([0.7, 0.8]))
    assert "\n" not in str(error.value)


def test_save_at_records_only_those_nodes():
    amplitudes = np.array([4.0, 6.0])
    full = ns.simulate("lif", method="fast-l1", dt=0.1, t_end=100.0, alpha=np.array([0.7, 0.9]),
                       current=currents.constant(amplitudes))
    saved = ns.simulate("lif", method="fast-l1", dt=0.1, t_end=100.0, alpha=np.array([0.7, 0.9]),
                        current=currents.constant(amplitudes), save_at=[0.0, 25.0, 50.3, 100.0])
    assert saved["v"].shape == (4, 2)
    np.testing.assert_allclose(saved["v"], full.at([0.0, 25.0, 50.3, 100.0])["v"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(saved.spike_counts, full.spike_counts)
    np.testing.assert_array_equal(saved.spikes, full.spikes)


def test_counts_stay_exact_when_the_spike_buffer_fills():
    amplitudes = np.full(5, 6.0)
    run = ns.simulate("lif", method="fast-l1", dt=0.1, t_end=100.0, alpha=np.linspace(0.6, 1.0, 5),
                      current=currents.constant(amplitudes), max_recorded_spikes=7)
    full = ns.simulate("lif", method="fast-l1", dt=0.1, t_end=100.0, alpha=np.linspace(0.6, 1.0, 5),
                       current=currents.constant(amplitudes))
    np.testing.assert_array_equal(run.spike_counts, full.spike_counts)
    assert len(run.spikes) == 7 < full.spike_counts.sum() and "counts are exact" in run.message
    np.testing.assert_array_equal(run.spikes, full.spikes[:7])


def test_population_constants_give_each_neuron_its_own_history_weights():
    orders = np.array([[0.5, 0.8, 0.5, 1.0]])
    constants = fractional.population_constants("soe", orders, 5000, fractional.FAST_L1_TOLERANCE)
    for i in range(4):
        alone = fractional.soe_constants(orders[:, i], 5000, fractional.FAST_L1_TOLERANCE)
        for padded, exact in zip(constants, alone):
            count = np.shape(exact)[-1]
            np.testing.assert_array_equal(padded[i][..., :count], exact)
            assert not np.any(padded[i][..., count:]) or padded is constants[-1]

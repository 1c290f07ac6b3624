"""A neuron in a population does exactly what the same neuron does alone (issue 11).

The independent path is the single-neuron loop: ``ns.simulate`` with scalar parameters. Both loops now share
one in-step event function (``solvers.events.step_events``), but everything around it differs: the population
runs blocks of ``NEURON_BLOCK`` neurons (the last one padded), shares the blocks over the XLA host devices with
``shard_map``, packs two states into one complex array, steps explicit Runge–Kutta on rows, gathers the
neurons that crossed into batches of ``EVENT_BATCH`` and settles each step's events at the start of the next
one; the single-neuron loop runs blocks of ``BLOCK`` steps fast and redoes the flagged ones with events.

The network: Izhikevich's 2003 excitatory population (a = 0.02, b = 0.2, c = −65 + 15 r², d = 8 − 6 r²,
I ~ U(0, 15)), and every 50th neuron a fast burster (c = −40, d = 0.5, I = 100) that fires up to several times
in one step: alone it fires 280 spikes in 200 ms with euler at dt = 1 ms, which the population used to stop
after 3 (a second crossing in one step froze a neuron and reported rate-exceeded).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurospike as ns

N = 2500
BURSTERS = np.arange(0, N, 50)


def network(seed=11):
    """Per-neuron a, b, c, d and I of the network above."""
    rng = np.random.default_rng(seed)
    r = rng.random(N)
    params = dict(a=np.full(N, 0.02), b=np.full(N, 0.2), c=-65.0 + 15.0 * r**2, d=8.0 - 6.0 * r**2)
    current = rng.uniform(0.0, 15.0, N)
    params["c"][BURSTERS], params["d"][BURSTERS], current[BURSTERS] = -40.0, 0.5, 100.0
    return params, current


def alone(i, params, current, **options):
    """Neuron ``i`` simulated on its own (scalar parameters: the single-neuron loop)."""
    return ns.simulate("izhikevich", params={k: float(v[i]) for k, v in params.items()}, current=float(current[i]),
                       **options)


def sample(seed=3, size=25):
    """Neurons to compare one by one: the first and last of every block of 1024 (the last block is padded), the
    last neuron, and a random sample; the bursters are compared separately."""
    rng = np.random.default_rng(seed)
    edges = [0, 1, 1023, 1024, 2047, 2048, N - 2, N - 1]
    return sorted(set(edges) | set(rng.choice(N, size, replace=False).tolist()))


def check_spikes(population, i, single):
    mine = population.spikes[population.spike_neurons == i]
    assert population.spike_counts[i] == len(single.spikes) == len(mine), i
    np.testing.assert_allclose(mine, single.spikes, rtol=0, atol=1e-12, err_msg=f"neuron {i}")


@pytest.mark.slow
def test_bursters_fire_several_times_per_step_in_a_population_as_alone():
    params, current = network()
    options = dict(method="euler", dt=1.0, t_end=200.0)
    population = ns.simulate("izhikevich", params=params, current=current, save_at=[100.0, 200.0], **options)
    assert population.status == "success", population.message
    burster = alone(BURSTERS[0], params, current, **options)
    assert burster.status == "success" and len(burster.spikes) == 280
    assert np.max(np.bincount(np.floor(burster.spikes).astype(int))) >= 2  # several spikes in one step
    assert len(population.spikes) == int(np.sum(population.spike_counts))  # every spike time recorded
    for i in BURSTERS:  # identical parameters: one single-neuron run is the truth for all 50
        check_spikes(population, i, burster)
        np.testing.assert_allclose(population["v"][:, i], burster.at([100.0, 200.0])["v"], rtol=0, atol=1e-12)
    for i in sample():
        if i not in BURSTERS:
            single = alone(i, params, current, **options)
            assert single.status == "success"
            check_spikes(population, i, single)
            for name in ("v", "u"):
                np.testing.assert_allclose(population[name][:, i], single.at([100.0, 200.0])[name], rtol=0,
                                           atol=1e-12)


# Runs the population in a fresh process with 2 XLA host devices (the test process has one: conftest imports
# jax before neurospike could set the flag), so that the blocks are shared over devices with shard_map.
TWO_DEVICES = textwrap.dedent("""
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import json
    import numpy as np
    import jax
    import neurospike as ns
    from neurospike.solvers import population
    assert jax.device_count() == 2, jax.device_count()
    data = np.load(sys.argv[1])
    RUNS = json.loads(sys.argv[2])
    params = {k: data[k] for k in "abcd"}
    out = {}
    for method, dt, events in RUNS:
        run = ns.simulate("izhikevich", method=method, dt=dt, t_end=200.0, events=events, params=params,
                          current=data["I"], save_at=data["save_at"])
        out[f"{method} {dt} {events}"] = dict(status=run.status, message=run.message, t=run.t.tolist(), v=run["v"].tolist(),
                           u=run["u"].tolist(), spikes=run.spikes.tolist(), neurons=run.spike_neurons.tolist(),
                           counts=run.spike_counts.tolist())
    out["devices"] = jax.device_count()
    out["block"] = population.NEURON_BLOCK
    print(json.dumps(out))
""")
# (method, dt, events): rk4 both ways, and euler at 1 ms where the bursters fire several times in one step
RUNS = [("rk4", 0.5, "located"), ("rk4", 0.5, "step"), ("euler", 1.0, "located")]


@pytest.mark.slow
def test_population_on_two_devices_equals_each_neuron_alone(tmp_path):
    """N = 2 500 on 2 host devices: blocks of 1024, the third block padded, a fourth all padding (whole blocks
    per device), shard_map; rk4 with located and with step events, neuron by neuron against the single-neuron
    runs (states at save_at, spike times, counts)."""
    params, current = network()
    save_at = np.array([50.0, 123.0, 200.0])  # grid nodes, so the single run's dense output there is a node
    np.savez(tmp_path / "network.npz", I=current, save_at=save_at, **params)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES, str(tmp_path / "network.npz"), json.dumps(RUNS)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["devices"] == 2 and N % runs["block"] and N // runs["block"] == 2
    neurons = sorted(set(sample()) | set(BURSTERS[[0, 20, 21, 40, -1]].tolist()))
    for method, dt, events in RUNS:
        run = runs[f"{method} {dt} {events}"]
        assert run["status"] == "success", run["message"]
        spikes, owners, counts = (np.asarray(run[key]) for key in ("spikes", "neurons", "counts"))
        assert len(spikes) == counts.sum()
        states = {name: np.asarray(run[name]) for name in ("v", "u")}
        np.testing.assert_array_equal(run["t"], save_at)
        for i in neurons:
            single = alone(i, params, current, method=method, dt=dt, t_end=200.0, events=events)
            assert single.status == "success"
            mine = spikes[owners == i]
            assert counts[i] == len(single.spikes) == len(mine), (method, events, i)
            np.testing.assert_allclose(mine, single.spikes, rtol=0, atol=1e-12, err_msg=f"{method} {events} {i}")
            expected = single.at(save_at)
            for name in ("v", "u"):
                np.testing.assert_allclose(states[name][:, i], expected[name], rtol=1e-12, atol=1e-12,
                                           err_msg=f"{method} {events} neuron {i} {name}")
        if method == "euler":  # the bursters fire several times in one step
            burst = spikes[owners == BURSTERS[0]]
            assert np.max(np.bincount(np.floor(burst / dt).astype(int))) >= 2


@pytest.mark.parametrize("events", ["located", "step"])
def test_lif_refractory_population_equals_each_neuron_alone(events):
    """LIF (rk4, dt = 0.5 ms) with per-neuron refractory periods and resets near threshold: up to 5 spikes in one
    step, refractory holds that end inside a step or span several; every spike time and the states at 50 and
    100 ms equal the neuron's own run."""
    t_ref = np.array([0.0, 0.02, 0.05, 0.3, 2.0, 0.0])
    v_reset = np.array([-52.0, -52.0, -60.0, -52.0, -65.0, -70.0])
    current = np.array([20.0, 20.0, 30.0, 15.0, 2.5, 2.1])
    options = dict(method="rk4", dt=0.5, t_end=100.0, events=events)
    population = ns.simulate("lif", params={"t_ref": t_ref, "v_reset": v_reset}, current=current,
                             save_at=[50.0, 100.0], max_recorded_spikes=10_000, **options)
    assert population.status == "success", population.message
    most = 0
    for i in range(len(t_ref)):
        single = ns.simulate("lif", params={"t_ref": t_ref[i], "v_reset": v_reset[i]}, current=current[i], **options)
        assert single.status == "success"
        check_spikes(population, i, single)
        np.testing.assert_allclose(population["v"][:, i], single.at([50.0, 100.0])["v"], rtol=0, atol=1e-12)
        most = max(most, np.max(np.bincount(np.floor(single.spikes / 0.5).astype(int))))
    assert most == (5 if events == "located" else 1)


CASES = [  # model, method, dt, per-neuron parameters, per-neuron input, t_end
    ("hh", "rk4", 0.02, {"g_Na": [100.0, 120.0, 140.0]}, [5.0, 10.0, 20.0], 60.0),  # crossings only, no reset
    ("izhikevich", "backward-euler", 0.25, {"d": [2.0, 6.0, 8.0]}, [5.0, 14.0, 40.0], 100.0),
    ("izhikevich", "euler-sequential", 0.25, {"d": [2.0, 6.0, 8.0]}, [5.0, 14.0, 40.0], 100.0),
    ("izhikevich2007", "exp-euler", 0.1, {"d": [50.0, 100.0, 150.0]}, [60.0, 70.0, 200.0], 300.0),
    ("lif", "strang", 0.5, {"t_ref": [0.0, 0.1, 1.0]}, [3.0, 20.0, 30.0], 100.0),
]


@pytest.mark.slow
@pytest.mark.parametrize("events", ["located", "step"])
@pytest.mark.parametrize("model, method, dt, params, current, t_end", CASES)
def test_every_kind_of_method_in_a_population_equals_each_neuron_alone(model, method, dt, params, current, t_end,
                                                                         events):
    """The vmapped one-neuron step (every method but explicit Runge–Kutta on one or two states) and the models
    without reset or with several split groups: counts exact, spike times and states within 1e-10 (measured:
    backward-euler 9e-12, its Newton iteration runs vectorised over the block; the others 3e-13 or exact)."""
    params = {k: np.asarray(v) for k, v in params.items()}
    save_at = [t_end / 2, t_end]
    options = dict(method=method, dt=dt, t_end=t_end, events=events)
    population = ns.simulate(model, params=params, current=np.asarray(current), save_at=save_at,
                             max_recorded_spikes=100_000, **options)
    assert population.status == "success", population.message
    for i in range(3):
        single = ns.simulate(model, params={k: float(v[i]) for k, v in params.items()}, current=current[i], **options)
        mine = population.spikes[population.spike_neurons == i]
        assert population.spike_counts[i] == len(single.spikes) == len(mine), i
        np.testing.assert_allclose(mine, single.spikes, rtol=0, atol=1e-10)
        expected = single.at(save_at)
        for name in single.states:
            np.testing.assert_allclose(population[name][:, i], expected[name], rtol=0, atol=1e-10, err_msg=name)


def test_a_population_with_per_neuron_noise_equals_each_neuron_alone():
    """A current whose neuron axis is not its first (OU samples of shape (n_samples, N)) in a population that
    spikes: the event pass takes each neuron's own column (it took rows before, and vmap refused the sizes)."""
    from neurospike.currents import OrnsteinUhlenbeck

    rng = np.random.default_rng(3)
    times = np.arange(0.0, 100.1, 0.1)
    samples = 3.0 + 0.8 * rng.standard_normal((times.size, 3)).cumsum(axis=0) / 30.0
    together = ns.simulate("lif", method="rk4", dt=0.1, t_end=100.0, current=OrnsteinUhlenbeck(times, samples),
                           params={"C": np.array([1.0, 1.1, 0.9])})
    for i, C in enumerate([1.0, 1.1, 0.9]):
        alone = ns.simulate("lif", method="rk4", dt=0.1, t_end=100.0, params={"C": C},
                            current=OrnsteinUhlenbeck(times, samples[:, i]))
        assert len(alone.spikes) > 2
        np.testing.assert_allclose(together.spikes[together.spike_neurons == i], alone.spikes, rtol=0, atol=1e-12)

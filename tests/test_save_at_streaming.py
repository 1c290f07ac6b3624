"""save_at runs of one neuron stream: the grid made and the trace dropped a segment at a time, only the saved
states and the spikes kept; the results equal the whole run's sampled at save_at to the last bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurospike as ns
from neurospike import methods
from neurospike.errors import NeurospikeError, SimulationError
from neurospike.simulate import resolve
from neurospike.solvers import fixed_step
from neurospike.solvers.methods import VectorField

SEGMENT = 2 * fixed_step.BLOCK  # a few segments in a short run


@pytest.fixture
def short_segments(monkeypatch):
    monkeypatch.setattr(methods, "SEGMENT_STEPS", SEGMENT)


def whole_run(method, save_at, **call):
    """Today's path: the whole grid and trace, then the dense output at save_at (as ``simulate`` samples it)."""
    problem = resolve(call.pop("model"), save_at=save_at, **call)
    trajectory = methods._one_neuron(methods.get(method), problem)
    times = problem.save_at
    if trajectory.status != "success":
        times = times[times <= trajectory.t[-1]]
    return trajectory.at(times)


def assert_identical(streamed, whole):
    np.testing.assert_array_equal(streamed.t, whole.t)
    assert list(streamed.states) == list(whole.states)
    for name in whole.states:
        np.testing.assert_array_equal(streamed.states[name], whole.states[name], err_msg=name)
    for field in ("spikes", "spike_states_before", "spike_states_after"):
        np.testing.assert_array_equal(getattr(streamed, field), getattr(whole, field), err_msg=field)
    for field in ("model", "method", "params", "dt", "events", "state_units", "status", "message", "alpha",
                  "spike_neurons", "spike_counts"):
        assert getattr(streamed, field) == getattr(whole, field), field


def spread(t_end, count, *extra):
    """``count`` times over the run, the run's ends and ``extra`` (sorted, unique)."""
    return np.unique(np.concatenate([np.linspace(0.0, t_end, count), [0.0, t_end], extra]))


CASES = {
    "izhikevich2007 rs rk4": dict(model="izhikevich2007", preset="rs", method="rk4", dt=0.01, t_end=300.0),
    "lif refractory rk4": dict(model="lif", preset="tonic", method="rk4", dt=0.01, t_end=80.0,
                               params={"t_ref": 2.0}),
    "lif refractory euler, step events": dict(model="lif", preset="tonic", method="euler", dt=0.01, t_end=80.0,
                                              params={"t_ref": 2.0}, events="step"),
    "hh rk4": dict(model="hh", method="rk4", dt=0.01, t_end=40.0, current="constant:amplitude=10"),
    "hh strang": dict(model="hh", method="strang", dt=0.02, t_end=40.0, current="constant:amplitude=10"),
    "izhikevich backward-euler": dict(model="izhikevich", method="backward-euler", dt=0.05, t_end=100.0),
    "izhikevich euler-sequential": dict(model="izhikevich", method="euler-sequential", dt=0.1, t_end=200.0,
                                        current="step:start=37.05,amplitude=10"),
    # the step's start inserted as a node inside a segment, and landing exactly on a segment boundary (node
    # SEGMENT, with and without the start being a uniform node)
    "step inside a segment": dict(model="izhikevich2007", preset="rs", method="rk4", dt=0.01, t_end=30.0,
                                  current="step:start=7.123456,amplitude=400"),
    "step on a boundary (uniform node)": dict(model="izhikevich2007", preset="rs", method="rk4", dt=0.01,
                                              t_end=30.0, current=f"step:start={SEGMENT * 0.01},amplitude=400"),
    "step on a boundary (inserted node)": dict(model="izhikevich2007", preset="rs", method="heun", dt=0.01,
                                               t_end=30.0, current=f"step:start={(SEGMENT - 0.5) * 0.01},"
                                                                   f"amplitude=400"),
}


@pytest.mark.parametrize("name", CASES)
def test_a_streamed_run_equals_the_whole_run_at_save_at_to_the_last_bit(name, short_segments):
    call = dict(CASES[name])
    method = call.pop("method")
    boundaries = np.arange(1, 40) * SEGMENT * call["dt"]  # the segment boundaries (uniform grid)
    whole_spikes = whole_run(method, [call["t_end"]], **call).spikes
    # save at many times, at segment boundaries, at every spike and just after it (inside a refractory hold)
    save_at = spread(call["t_end"], 997, *boundaries[boundaries < call["t_end"]], *whole_spikes,
                     *(whole_spikes + 0.5 * call["dt"]), *(whole_spikes + 2.0))
    save_at = save_at[save_at <= call["t_end"]]
    whole = whole_run(method, save_at, **call)
    streamed = ns.simulate(**call, method=method, save_at=save_at)
    assert len(streamed.spikes) >= 1 and len(streamed.t) == len(save_at)
    assert_identical(streamed, whole)
    assert streamed.t[-1] == call["t_end"] and streamed.status == "success"


def test_a_run_halted_by_the_rate_guard_stops_where_the_whole_run_stops(short_segments):
    call = dict(model="lif", preset="tonic", dt=0.01, t_end=80.0, max_rate=60.0)
    save_at = spread(80.0, 301)
    whole = whole_run("rk4", save_at, **call)
    streamed = ns.simulate(**call, method="rk4", save_at=save_at)
    assert streamed.status == "rate-exceeded" and "max_rate=60" in streamed.message
    assert 0 < streamed.t[-1] < 80.0 and int(streamed.t[-1] / 0.01) > SEGMENT  # halted in a later segment
    assert_identical(streamed, whole)


def test_a_run_turning_non_finite_raises_the_whole_runs_message(short_segments):
    call = dict(model="hh", dt=0.1, t_end=100.0, current="step:start=60,amplitude=50")  # non-finite at step 618
    with pytest.raises(SimulationError) as whole:
        whole_run("euler", [100.0], **call)
    with pytest.raises(SimulationError) as streamed:
        ns.simulate(**call, method="euler", save_at=[50.0, 100.0])
    assert str(streamed.value) == str(whole.value) and "non-finite at t=61.8 ms" in str(whole.value)


@pytest.mark.parametrize("method", methods.names(family="fixed-step"))
def test_a_zero_length_step_leaves_the_state_as_it_is(method):
    """The padding of a streamed run's last segment: nodes repeated, steps of length 0."""
    for model, y in (("izhikevich2007", [-50.0, 20.0]), ("lif", [-60.0]), ("hh", [-50.0, 0.2, 0.5, 0.4])):
        model = ns.models.get(model)
        if methods.get(method).needs and not getattr(model, methods.get(method).needs):
            continue
        params = {k: jnp.asarray(v) for k, v in model.defaults().items()}
        field = VectorField(model.derivatives, params, ns.currents.constant(3.0), 5.0,
                            tuple(tuple(model.state_index(s) for s in g) for g in model.split) if model.split else None)
        y = jnp.asarray(y)
        step = jax.jit(lambda y: methods.get(method).scheme.step(field, 5.0, y, 0.0))  # noqa: B023
        np.testing.assert_array_equal(step(y), y)


def _sorted_grid(t0, t_end, dt, breaks):
    """The grid the plain way: uniform nodes, breaks and t_end sorted together, nodes closer than 1e-9·dt
    merged, t_end last, the nearest node moved onto each break."""
    nodes = t0 + dt * np.arange(int(np.floor((t_end - t0) / dt + 1e-9)) + 1)
    breaks = np.asarray([b for b in breaks if t0 < b < t_end], dtype=float)
    nodes = np.sort(np.concatenate([nodes, breaks, [t_end]]))
    nodes = nodes[np.concatenate([[True], np.diff(nodes) > 1e-9 * dt])]
    nodes[-1] = t_end
    for b in breaks:
        nodes[np.argmin(np.abs(nodes - b))] = b
    return nodes


def test_the_step_grid_slices_join_to_the_whole_grid():
    rng = np.random.default_rng(1)
    for _ in range(300):
        t0, dt = rng.choice([0.0, -5.0, 1.3]), rng.choice([0.01, 0.025, 0.3])
        n = int(rng.integers(1, 300))
        t_end = t0 + rng.choice([n * dt, n * dt * (1 + 1e-12), n * dt + 1e-10 * dt, rng.uniform(0.001, 5.0)])
        nodes = int((t_end - t0) / dt)
        breaks = [t0 + dt * k + rng.choice([0.0, 1e-12, -1e-12, 5e-10 * dt, 2e-9 * dt, 0.5 * dt])
                  for k in rng.integers(-2, nodes + 3, size=rng.integers(0, 6))]
        whole = _sorted_grid(t0, t_end, dt, breaks)
        grid = fixed_step.StepGrid(t0, t_end, dt, breaks)
        assert len(grid) == len(whole)
        np.testing.assert_array_equal(grid.nodes(), whole)
        cuts = np.unique(np.concatenate([[0, len(whole)], rng.integers(0, len(whole) + 1, size=4)]))
        np.testing.assert_array_equal(np.concatenate([grid.nodes(a, b) for a, b in zip(cuts[:-1], cuts[1:])]), whole)


def test_a_run_whose_whole_grid_would_not_fit_runs_with_save_at(short_segments):
    """The issue's ``--dt 1e-9 --t-end 1000 --save-at 500,1000``, scaled to a small memory limit: without
    save_at it is refused, with save_at only the saved states, the spikes and one segment are kept."""
    call = dict(model="izhikevich", method="rk4", dt=0.01, t_end=200.0, memory_limit=400_000)
    with pytest.raises(NeurospikeError, match="use a larger dt, a shorter t_end or --save-at"):
        ns.simulate(**call)
    run = ns.simulate(**call, save_at=[100.0, 200.0])
    np.testing.assert_array_equal(run.t, [100.0, 200.0])
    whole = ns.simulate(**dict(call, memory_limit=2**30), save_at=[100.0, 200.0])
    np.testing.assert_array_equal(run.y, whole.y)
    np.testing.assert_array_equal(run.spikes, whole.spikes)
    with pytest.raises(NeurospikeError, match=r"20001 saved times x 2 states .* save fewer times or lower max_rate"):
        ns.simulate(**call, save_at=np.linspace(0.0, 200.0, 20001))


def test_a_streamed_run_reports_its_progress_after_each_segment(short_segments):
    reached = []
    ns.simulate("izhikevich2007", preset="rs", dt=0.01, t_end=30.0, save_at=[30.0],
                progress=lambda t, loss: reached.append((t, loss)))
    steps = 3000
    assert len(reached) == -(-steps // SEGMENT)
    assert [t for t, _ in reached] == pytest.approx([min((k + 1) * SEGMENT, steps) * 0.01 for k in range(len(reached))])
    assert all(np.isnan(loss) for _, loss in reached)

"""The PINN methods (``pinn``, ``pinn-data``, ``pinn-marching``, ``pinn-reset``, ``splitting-pinn``) and the
operator-splitting machinery, against independent truth: closed-form solutions (exponential decay, the harmonic
oscillator, the leaky integrate-and-fire membrane and its spike times), the closed-form compositions of exact
sub-flows, and scipy's DOP853 at rtol = atol = 1e-12 (Hodgkin–Huxley).

Every run uses small networks and few optimiser steps so the file stays fast on a 2-core CPU; the errors quoted
in the comments were measured with exactly these settings (x64, CPU), and each bound is ~3-10x the measurement.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import neurospike as ns
from neurospike import currents
from neurospike.errors import NeurospikeError
from neurospike.models import Model, Parameter, Preset
from neurospike.pinn import load_checkpoint
from neurospike.solvers import splitting
from neurospike.solvers.methods import VectorField, exact_subflow

pytestmark = pytest.mark.slow  # PINN training: `make check` leaves it out, `make test` runs it

# --------------------------------------------------------------------------------------------- small models

TAU = 2.0  # ms, decay time constant
OMEGA = 2.0  # rad/ms, oscillator frequency


def decay_model() -> Model:
    """dy/dt = -y/tau, y(0) = 1: y = exp(-t/tau). No spike rule."""
    return Model(
        name="decay", title="exponential decay", states=("y",), state_units=("1",),
        params={"tau": Parameter(TAU, "ms", "time constant")},
        derivatives=lambda t, s, p, I, xp: (-s[0] / p["tau"],),
        initial_state=lambda p, xp: (1.0,), spike=None,
        presets={"base": Preset(name="base", description="decay from 1", current=currents.constant(0.0),
                                t_end=2.0)},
        default_preset="base", state_scales=(1.0,))


def oscillator_model(split=(("x",), ("v",))) -> Model:
    """x' = v, v' = -omega^2 x: x = A cos(omega t + phi), v = -A omega sin(omega t + phi)."""
    return Model(
        name="oscillator", title="harmonic oscillator", states=("x", "v"), state_units=("1", "1/ms"),
        params={"omega": Parameter(OMEGA, "rad/ms", "angular frequency")},
        derivatives=lambda t, s, p, I, xp: (s[1], -p["omega"] ** 2 * s[0]),
        initial_state=lambda p, xp: (1.0, 0.0), spike=None,
        presets={"base": Preset(name="base", description="from x=1, v=0", current=currents.constant(0.0),
                                t_end=1.0)},
        default_preset="base", state_scales=(1.0, OMEGA), split=split)


def oscillator_error(trajectory, phase=0.0) -> float:
    """max over the output of |x - cos(wt + phase)| and |v + w sin(wt + phase)| (amplitude 1)."""
    arg = OMEGA * trajectory.t + phase
    return max(np.max(np.abs(trajectory["x"] - np.cos(arg))),
               np.max(np.abs(trajectory["v"] + OMEGA * np.sin(arg))))


def oscillator_start(phase):
    return {"x": math.cos(phase), "v": -OMEGA * math.sin(phase)}


# LIF defaults: C = 1 nF, g_L = 0.1 uS, E_L = -70 mV, v_th = -50, v_reset = -70; tau = C/g_L = 10 ms
LIF_TAU = 10.0


def lif_exact(t, current, start_time=0.0):
    """v(t) from E_L at start_time under a constant current: E_L + (I/g_L)(1 - exp(-g_L (t - start)/C))."""
    return -70.0 + (current / 0.1) * (1.0 - np.exp(-(np.asarray(t) - start_time) / LIF_TAU))


# A small marching network: the settings used by most runs below
SMALL_MARCH = dict(widths=(16,), adam_steps=50, lbfgs_steps=50, warmup=(200, 100), eval_points=11)
SMALL_WHOLE = dict(widths=(16, 16), fourier=0, collocation=64, adam_steps=300, lbfgs_steps=200, eval_points=201)


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message, message
    return message


# ------------------------------------------------------------------------------ 1a. exponential decay


def test_pinn_whole_interval_exponential_decay():
    """One network over [0, 2] ms (residual loss only) against exp(-t/tau). Measured max error 6.2e-7."""
    trajectory = ns.simulate(decay_model(), method="pinn", t_end=2.0, pinn=SMALL_WHOLE)
    assert trajectory.t[0] == 0.0 and trajectory.t[-1] == pytest.approx(2.0, abs=1e-12)
    assert len(trajectory.t) == 201
    error = np.max(np.abs(trajectory["y"] - np.exp(-trajectory.t / TAU)))
    assert error < 5e-6
    assert trajectory.training["windows"] == 1
    assert trajectory.training["method"] == "pinn"


@pytest.fixture(scope="module")
def decay_marching(tmp_path_factory):
    """pinn-marching on the decay, 4 windows of 0.5 ms, seed 0, saved to a checkpoint."""
    path = tmp_path_factory.mktemp("pinn") / "run.npz"
    trajectory = ns.simulate(decay_model(), method="pinn-marching", t_end=2.0, checkpoint=path,
                             pinn=dict(SMALL_MARCH, window=0.5, seed=0))
    return trajectory, path


def test_pinn_marching_exponential_decay(decay_marching):
    """Windows of 0.5 ms, each warm-started from the previous one. Measured max error 3.0e-6."""
    trajectory, _ = decay_marching
    assert trajectory.training["windows"] == 4
    # each window contributes its 10 eval intervals; the shared window ends appear once
    assert len(trajectory.t) == 41 and np.all(np.diff(trajectory.t) > 0)
    np.testing.assert_allclose(trajectory.t, np.linspace(0.0, 2.0, 41), atol=1e-12)
    error = np.max(np.abs(trajectory["y"] - np.exp(-trajectory.t / TAU)))
    assert error < 2e-5


# --------------------------------------------------------------------------- 1b. harmonic oscillator

PHASE = 0.6  # x = cos(2t + 0.6): with windows of 0.2 ms no state is at a turning point near a window start


def test_pinn_marching_harmonic_oscillator():
    """x = cos(wt + 0.6), v = -w sin(wt + 0.6) over [0, 1] ms in windows of 0.2 ms.
    Measured max error 2.5e-4 (over x and v; the largest window loss is in the window holding v's
    extremum)."""
    trajectory = ns.simulate(oscillator_model(), method="pinn-marching", t_end=1.0,
                             initial=oscillator_start(PHASE), pinn=dict(SMALL_MARCH, window=0.2))
    assert trajectory.training["windows"] == 5
    assert oscillator_error(trajectory, PHASE) < 1e-3


def test_pinn_marching_harmonic_oscillator_from_turning_point():
    """The canonical start x = 1, v = 0: x = cos(wt). With a scale that also looks at the slope at the end of
    an Euler predictor over the window the error is 1.5e-4 with these settings; the package gives 1.1."""
    trajectory = ns.simulate(oscillator_model(), method="pinn-marching", t_end=1.0,
                             pinn=dict(SMALL_MARCH, window=0.25))
    assert oscillator_error(trajectory) < 1e-3


def splitting_exact_composition(splitting_name, h, steps):
    """The oscillator advanced by the splitting of exact sub-flows (each sub-flow is a linear drift or kick):
    Lie (x group first) = drift then kick (symplectic Euler); Strang = half kick, drift, half kick (Verlet)."""
    x, v = 1.0, 0.0
    for _ in range(steps):
        if splitting_name == "lie":
            x = x + h * v
            v = v - h * OMEGA**2 * x
        else:
            v = v - 0.5 * h * OMEGA**2 * x
            x = x + h * v
            v = v - 0.5 * h * OMEGA**2 * x
    return np.array([x, v])


@pytest.mark.parametrize("splitting_name, expected_ratio, bounds", [
    # measured errors at windows 0.1, 0.05: strang 1.190e-2, 2.969e-3 (ratio 4.01); lie 9.777e-2, 4.937e-2 (1.98)
    ("strang", 4.0, (3e-2, 8e-3)),
    ("lie", 2.0, (2e-1, 1e-1)),
])
def test_splitting_pinn_harmonic_oscillator_order(splitting_name, expected_ratio, bounds, tmp_path):
    """splitting-pinn (a PINN per sub-flow and window) on x' = v | v' = -w^2 x over [0, 1] ms against cos/sin:
    the error shrinks ~4x (Strang) / ~2x (Lie) when the window halves, and the window-end states match the
    closed-form composition of the exact sub-flows (measured within 7.9e-7, 5.9e-7 (Strang), 3.0e-6, 7.6e-7
    (Lie) with 60 L-BFGS steps per sub-flow), i.e. the PINN sub-solves are accurate and the remaining error
    is the splitting error."""
    errors = []
    for window, bound in zip((0.1, 0.05), bounds):
        steps = round(1.0 / window)
        checkpoint = tmp_path / f"split{steps}.npz"
        trajectory = ns.simulate(oscillator_model(), method="splitting-pinn", t_end=1.0, checkpoint=checkpoint,
                                 pinn=dict(splitting=splitting_name, window=window, warmup=(0, 0),
                                           lbfgs_steps=60))
        assert len(trajectory.t) == steps + 1
        np.testing.assert_allclose(trajectory.t, np.linspace(0.0, 1.0, steps + 1), atol=1e-12)
        assert trajectory.training["stages"] == [list(s) for s in splitting.stages(splitting_name, 2)]
        error = oscillator_error(trajectory)
        assert error < bound
        errors.append(error)
        composed = splitting_exact_composition(splitting_name, window, steps)
        np.testing.assert_allclose(trajectory.y[-1], composed, rtol=0, atol=1e-5)
        # the splitting-pinn checkpoint holds the window-end trajectory
        meta, t, y = load_checkpoint(checkpoint)
        assert meta["method"] == "splitting-pinn" and meta["options"]["splitting"] == splitting_name
        np.testing.assert_array_equal(t, trajectory.t)
        np.testing.assert_array_equal(y, trajectory.y)
    ratio = errors[0] / errors[1]
    assert 0.75 * expected_ratio < ratio < 1.25 * expected_ratio


# ------------------------------------------------------------------------------------- 1c. LIF


@pytest.mark.parametrize("method, bound", [
    ("pinn", 3e-3),       # measured max error 4.9e-4 mV
    ("pinn-data", 3e-3),  # measured max error 4.1e-4 mV
])
def test_whole_interval_lif_subthreshold(method, bound):
    """LIF at 1.5 nA from E_L over [0, 20] ms, one network: v = E_L + (I/g_L)(1 - exp(-t/10)); no spikes."""
    trajectory = ns.simulate("lif", preset="subthreshold", method=method, t_end=20.0, dt=0.1, pinn=SMALL_WHOLE)
    error = np.max(np.abs(trajectory["v"] - lif_exact(trajectory.t, 1.5)))
    assert error < bound
    assert trajectory.spikes.size == 0


def test_pinn_data_uses_its_data():
    """pinn-data with a heavily weighted, deliberately coarse data set (forward Euler, dt = 2 ms, whose nodes
    are v_n = -55 - 15 (1 - 0.2)^n, up to 0.6 mV above the exact curve) follows the data rather than the
    physics: at the data nodes it is within 3e-3 mV of the Euler values (measured 5.1e-4 mV) and 0.6 mV off
    the exact curve, unlike plain pinn above (5e-4 mV)."""
    trajectory = ns.simulate("lif", preset="subthreshold", method="pinn-data", t_end=20.0, dt=2.0,
                             pinn=dict(SMALL_WHOLE, data_method="euler", data_weight=1e6))
    nodes = np.arange(11) * 2.0
    euler = -55.0 - 15.0 * 0.8 ** np.arange(11)
    on_grid = np.isclose(trajectory.t[:, None], nodes[None, :], rtol=0, atol=1e-9)
    assert np.all(on_grid.sum(axis=0) == 1)  # the data nodes are output times (every 0.1 ms)
    at_nodes = trajectory["v"][on_grid.argmax(axis=0)]
    assert np.max(np.abs(at_nodes - euler)) < 3e-3
    assert np.max(np.abs(at_nodes - lif_exact(nodes, 1.5))) > 0.3


def test_pinn_reset_lif_subthreshold():
    """pinn-reset in windows of 2 ms, no threshold crossing. Measured max error 4.1e-5 mV."""
    trajectory = ns.simulate("lif", preset="subthreshold", method="pinn-reset", t_end=20.0,
                             pinn=dict(SMALL_MARCH, window=2.0))
    assert trajectory.training["windows"] == 10
    assert np.max(np.abs(trajectory["v"] - lif_exact(trajectory.t, 1.5))) < 3e-4
    assert trajectory.spikes.size == 0


def test_pinn_reset_lif_spike_times():
    """LIF at 2.5 nA (v_inf = -45 mV above v_th = -50): spikes at t_k = k tau ln((v_inf - v_reset)/(v_inf - v_th))
    = k 10 ln 5 = 16.094 k ms. pinn-reset over [0, 50] ms, windows of 2 ms: three spikes, each within 3e-4 ms
    (measured 4.4e-5 ms); the states at a spike are v_th before and v_reset after; between spikes the trace
    follows the closed form restarted at each exact spike time (measured within 1.1e-4 mV; bound 1e-3).
    The last point (t_end = 50, cut out of a window reaching 50.08) is left out: it is a linear interpolation
    between eval points, 9.3e-4 mV off (see test_checkpoint_agrees_at_a_cut_last_window)."""
    trajectory = ns.simulate("lif", preset="tonic", method="pinn-reset", t_end=50.0,
                             pinn=dict(SMALL_MARCH, window=2.0))
    assert trajectory.status == "success"
    exact_spikes = np.arange(1, 4) * LIF_TAU * math.log(5.0)
    assert trajectory.spikes.shape == (3,)
    np.testing.assert_allclose(trajectory.spikes, exact_spikes, rtol=0, atol=3e-4)
    np.testing.assert_allclose(trajectory.spike_states_before[:, 0], -50.0, atol=1e-6)
    np.testing.assert_allclose(trajectory.spike_states_after[:, 0], -70.0, atol=0)
    # the trace: each spike appears twice in t (before, then after the reset); compare segment by segment
    t, v = trajectory.t, trajectory["v"]
    assert np.all(np.diff(t) >= 0)
    jumps = np.flatnonzero(np.diff(v) < -10.0)  # index of the pre-reset point of each spike
    assert len(jumps) == 3
    np.testing.assert_allclose(t[jumps], t[jumps + 1], atol=0)
    np.testing.assert_allclose(t[jumps], exact_spikes, rtol=0, atol=3e-4)
    starts = np.concatenate([[0.0], exact_spikes])
    assert t[-1] == pytest.approx(50.0, abs=1e-12)
    bounds = np.concatenate([[0], jumps + 1, [len(t) - 1]])
    for k in range(4):
        segment = slice(bounds[k], bounds[k + 1])
        assert np.max(np.abs(v[segment] - lif_exact(t[segment], 2.5, starts[k]))) < 1e-3


# ------------------------------------------------------ 2. splitting with exact sub-flows (Hodgkin–Huxley)


@pytest.fixture(scope="module")
def hh_problem():
    model = ns.models.get("hh")
    params = model.defaults()
    current = 10.0
    y0 = np.array(model.initial_state(params, np), dtype=float)

    def rhs(t, y):  # numpy right-hand side from the model's own equations
        return np.array(model.derivatives(t, tuple(y), params, current, np))

    truth = solve_ivp(rhs, (0.0, 3.0), y0, method="DOP853", rtol=1e-12, atol=1e-12)
    assert truth.success
    return model, params, current, y0, truth.y[:, -1]


def split_hh(model, params, current, y0, splitting_name, h, t_end):
    """Hodgkin–Huxley advanced by ``splitting.compose`` of exact sub-flows (v | m, h, n) with step h."""
    groups = tuple(tuple(model.state_index(s) for s in g) for g in model.split)
    field = VectorField(model.derivatives, {k: jnp.asarray(v) for k, v in params.items()},
                        currents.constant(current), 0.0, groups)
    plan = splitting.stages(splitting_name, len(groups))
    steps = round(t_end / h)

    def solve(number, group, start, length, y):
        return exact_subflow(field, start + length / 2, y, length, groups[group]), None

    def body(i, y):
        return splitting.compose(plan, y, i * h, h, solve)[0]

    return np.asarray(jax.jit(lambda y: jax.lax.fori_loop(0, steps, body, y))(jnp.asarray(y0)))


def test_splitting_stages_layout():
    """Lie: every group over the whole step in order; Strang: later groups h/2, first group h, later groups
    (reversed) h/2."""
    assert splitting.stages("lie", 3) == ((0, 0.0, 1.0), (1, 0.0, 1.0), (2, 0.0, 1.0))
    assert splitting.stages("strang", 3) == ((1, 0.0, 0.5), (2, 0.0, 0.5), (0, 0.0, 1.0), (2, 0.5, 0.5),
                                             (1, 0.5, 0.5))
    with pytest.raises(ValueError):
        splitting.stages("yoshida", 2)


@pytest.mark.parametrize("splitting_name, order, finest_bound", [
    # measured max scaled errors (|v|/100, gates) at h = 0.02, 0.01, 0.005:
    # lie 1.32e-3, 6.86e-4, 3.49e-4 (orders 0.95, 0.97); strang 7.48e-4, 1.87e-4, 4.68e-5 (orders 2.00, 2.00)
    ("lie", 1.0, 2e-3),
    ("strang", 2.0, 2e-4),
])
def test_exact_subflow_splitting_order_hh(hh_problem, splitting_name, order, finest_bound):
    """HH at 10 uA/cm^2 over [0, 3] ms (the upstroke of the first spike), split v | m, h, n with exact
    conditionally linear sub-flows, against DOP853 (rtol = atol = 1e-12): the observed order when h halves."""
    model, params, current, y0, truth = hh_problem
    scales = np.array(model.state_scales)
    errors = [np.max(np.abs(split_hh(model, params, current, y0, splitting_name, h, 3.0) - truth) / scales)
              for h in (0.02, 0.01, 0.005)]
    assert errors[-1] < finest_bound
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(observed - order) < 0.2), observed


# --------------------------------------------------------------------------------------- 3. checkpoints


def test_checkpoint_round_trip(decay_marching):
    """The reloaded networks give the Trajectory's states at its own times (within 1e-9) and the exact solution
    anywhere in the run (measured 3.0e-6 at 997 random times; bound 2e-5)."""
    trajectory, path = decay_marching
    solution = load_checkpoint(path)
    assert solution.meta["method"] == "pinn-marching" and solution.meta["model"] == "decay"
    assert solution.meta["options"]["window"] == 0.5
    np.testing.assert_allclose(solution.evaluate(trajectory.t)[:, 0], trajectory["y"], rtol=0, atol=1e-9)
    times = np.sort(np.random.default_rng(1).uniform(0.0, 2.0, 997))
    assert np.max(np.abs(solution.evaluate(times)[:, 0] - np.exp(-times / TAU))) < 2e-5


def test_checkpoint_agrees_at_a_cut_last_window(tmp_path):
    """t_end = 2 with windows of 0.3 ms: the 7th window ends at 2.1 and is cut at t_end."""
    path = tmp_path / "cut.npz"
    trajectory = ns.simulate(decay_model(), method="pinn-marching", t_end=2.0, checkpoint=path,
                             pinn=dict(SMALL_MARCH, window=0.3))
    assert trajectory.t[-1] == pytest.approx(2.0, abs=1e-12)
    evaluated = load_checkpoint(path).evaluate(trajectory.t)[:, 0]
    np.testing.assert_allclose(evaluated, trajectory["y"], rtol=0, atol=1e-9)


def test_load_checkpoint_rejects_other_files(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not a checkpoint\n")
    plain = tmp_path / "plain.npz"
    np.savez(plain, t=np.arange(3.0), y=np.zeros((3, 1)))
    old = tmp_path / "old.npz"
    np.savez(old, meta=np.array(json.dumps({"version": 999})), t=np.arange(3.0), y=np.zeros((3, 1)))
    for path in (text, plain, old, tmp_path / "missing.npz"):
        with pytest.raises(NeurospikeError) as excinfo:
            load_checkpoint(path)
        assert str(path.name) in one_line_error(excinfo)


# --------------------------------------------------------------------------------------- 4. bad input


@pytest.mark.parametrize("model, method, kwargs, match", [
    ("lif", "pinn-marching", dict(pinn={"widht": (8,)}), "unknown PINN option 'widht'"),
    ("lif", "pinn-marching", dict(pinn={"window": 0.0}), "window=0.0"),
    ("lif", "pinn-reset", dict(pinn={"window": -1.0}), "window=-1.0"),
    ("osc", "splitting-pinn", dict(pinn={"splitting": "yoshida"}), "splitting='yoshida'"),
    ("osc", "splitting-pinn", dict(pinn={"splitting": "none"}), "needs splitting .lie. or .strang."),
    ("lif", "pinn", dict(pinn={"adam_steps": 0, "lbfgs_steps": 0}), "adam_steps \\+ lbfgs_steps"),
    ("lif", "pinn-marching", dict(params={"C": [1.0, 2.0]}), "one neuron"),
    ("lif", "pinn-reset", dict(initial={"v": [-70.0, -60.0]}), "one neuron"),
    ("lif", "splitting-pinn", dict(), "one state"),
    ("lif", "rk4", dict(pinn={"window": 0.5}), "PINN options"),
    ("lif", "rk4", dict(checkpoint="run.npz"), "PINN options"),
    ("lif", "pinn-reset", dict(params={"t_ref": 2.0}), "t_ref=2"),
    ("lif", "pinn-marching", dict(params={"t_ref": 0.5}), "t_ref=0.5"),
])
def test_bad_input_one_line_errors(model, method, kwargs, match):
    chosen = oscillator_model() if model == "osc" else model
    with pytest.raises(NeurospikeError, match=match) as excinfo:
        ns.simulate(chosen, method=method, t_end=1.0, **kwargs)
    one_line_error(excinfo)


def test_split_naming_an_unknown_state_is_refused():
    """Model itself does not check ``split`` (a frozen dataclass without validation); the use does:
    splitting-pinn looks every split name up with Model.state_index, before any training. (Either place is
    fine: the model is built inside the ``raises`` block.)"""
    with pytest.raises(NeurospikeError, match="unknown state 'bogus'") as excinfo:
        ns.simulate(oscillator_model(split=(("x",), ("bogus",))), method="splitting-pinn", t_end=0.2,
                    pinn=dict(window=0.1, warmup=(0, 0)))
    one_line_error(excinfo)


@pytest.mark.parametrize("split", [(("x",),), (("x", "v"), ("v",))])
def test_split_must_partition_the_states(split):
    """Refused when the model is built or when splitting-pinn is asked for, with a one-line error."""
    with pytest.raises(NeurospikeError, match="split") as excinfo:
        ns.simulate(oscillator_model(split=split), method="splitting-pinn", t_end=0.2,
                    pinn=dict(window=0.1, warmup=(0, 0)))
    one_line_error(excinfo)


# -------------------------------------------------------------------------------------- 5. reproducibility


def test_same_seed_same_result_other_seed_other_result(decay_marching):
    """The decay_marching run (seed 0) again with seed 0: identical to the last bit; with seed 1: different
    networks, so (slightly) different states, still accurate (measured max |difference| 6.5e-6, seed-1 error
    3.9e-6)."""
    first, _ = decay_marching
    options = dict(SMALL_MARCH, window=0.5)
    again = ns.simulate(decay_model(), method="pinn-marching", t_end=2.0, pinn=dict(options, seed=0))
    other = ns.simulate(decay_model(), method="pinn-marching", t_end=2.0, pinn=dict(options, seed=1))
    np.testing.assert_array_equal(again.t, first.t)
    np.testing.assert_array_equal(again["y"], first["y"])
    assert again.training["loss"] == first.training["loss"]
    np.testing.assert_array_equal(other.t, first.t)
    assert not np.array_equal(other["y"], first["y"])
    assert other.training["loss"] != first.training["loss"]
    assert np.max(np.abs(other["y"] - np.exp(-other.t / TAU))) < 2e-5


def test_splitting_pinn_seed_reproducible():
    """splitting-pinn draws its networks from the seed too: same seed identical, other seed different (measured
    max |difference| 2.2e-6)."""
    run = lambda seed: ns.simulate(oscillator_model(), method="splitting-pinn", t_end=0.2,  # noqa: E731
                                   pinn=dict(window=0.1, warmup=(0, 0), lbfgs_steps=60, seed=seed))
    first, again, other = run(3), run(3), run(4)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.array_equal(first.y, other.y)
    np.testing.assert_allclose(other.y, first.y, atol=1e-5)

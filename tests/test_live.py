"""The live neuron (:mod:`neurospike.live`) advanced frame by frame, against independent truth.

Proved: LIF spike times across uneven frames match the closed form (refractory periods held at v_reset, also
across frame joins); frames add up to the uniform grid with the rounding carried; integer-order frames equal one
``simulate()`` run (Izhikevich; Hodgkin-Huxley at dt 0.01 with spikes across frame joins); fractional fast-l1 in
frames equals one fast-l1 run, the direct L1 sum (``simulate(method="l1")``) and, after slider moves, a direct L1
sum written here in numpy; a frame is one compiled call, frame sizes within a bucket and sliders (I, parameters,
alpha, dt within its class) never recompile and take effect exactly (LIF interspike intervals in closed form); the
page's thinned frames are the min/max rows of each bucket (numpy here) and keep every spike peak; bad values
raise with the value named; a non-finite state halts until reset; the firing rate counts the last second; spike
memory is bounded; the phase plane's curves are the models' own formulas.

LIF (C = 1 nF, g_L = 0.1 µS, E_L = v_reset = −70 mV, v_th = −50 mV): for constant I, v_∞ = E_L + I/g_L and
τ = C/g_L, and from v_a the membrane reaches v_b after τ ln((v_∞ − v_a)/(v_∞ − v_b)).
"""

import math
import re

import numpy as np
import pytest
from scipy.special import gamma

import neurospike as ns
from neurospike import compiled as compiled_module
from neurospike import currents, live
from neurospike.solvers import fractional
from neurospike.errors import NeurospikeError
from neurospike.live import LiveSimulation

FRAME = 33.3  # ms per frame: 333 steps at dt 0.1, 133.2 at dt 0.25
LIF = {"C": 1.0, "g_L": 0.1, "E_L": -70.0, "v_th": -50.0, "v_reset": -70.0, "t_ref": 0.0}


def lif_time_to(v_from, v_to, current, C=1.0, g_L=0.1, E_L=-70.0, **_):
    v_inf = E_L + current / g_L
    return C / g_L * math.log((v_inf - v_from) / (v_inf - v_to))


def lif_interval(current, p):
    return p["t_ref"] + lif_time_to(p["v_reset"], p["v_th"], current, **p)


def run_frames(simulation, count, length=FRAME):
    """``count`` frames of ``length`` ms; the concatenated t, y, spikes and the outputs of each frame."""
    outputs = [simulation.advance(length) for _ in range(count)]
    t = np.concatenate([o["t"] for o in outputs])
    y = np.concatenate([o["y"] for o in outputs])
    spikes = np.concatenate([o["spikes"] for o in outputs])
    return t, y, spikes, outputs


def nodes(t, y, spikes):
    """The grid rows of an output: without the two rows (states before and after the reset) at each spike."""
    grid = ~np.isin(t, spikes)
    return t[grid], y[grid]


def frame_nodes(out):
    return nodes(out["t"], out["y"], out["spikes"])


# 1. LIF against the closed form, across frames

def test_lif_live_rk4_spike_times_match_the_closed_form_across_frames():
    simulation = LiveSimulation(model="lif")  # preset tonic: I = 2.5 nA, v_∞ = −45 mV, τ = 10 ms
    assert (simulation.method, simulation.dt, simulation.amplitude) == ("rk4", 0.1, 2.5)
    simulation.set_value("t_ref", 2.0)
    rise = 10.0 * math.log(5.0)  # τ ln((v_∞ − v_reset)/(v_∞ − v_th))
    exact = rise + np.arange(22) * (2.0 + rise)
    joins = np.round(exact[1::2] + 1.0, 1)  # 12 uneven frames, each join 1 ms into a refractory period
    outputs = [simulation.advance(length) for length in np.diff(np.concatenate([[0.0], joins, [399.6]]))]
    t, y, spikes = (np.concatenate([o[key] for o in outputs]) for key in ("t", "y", "spikes"))
    assert exact[-1] < t[-1] < exact[-1] + 2.0 + rise
    assert len(spikes) == len(exact)
    np.testing.assert_allclose(spikes, exact, rtol=0, atol=1e-6)  # measured 2.7e-8 ms
    # at each spike two rows: the state reaching v_th, then the reset
    assert np.all(np.diff(t) >= 0)
    at_spike = np.isin(t, spikes)
    np.testing.assert_array_equal(t[at_spike], np.repeat(spikes, 2))
    np.testing.assert_allclose(y[at_spike, 0][0::2], -50.0, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(y[at_spike, 0][1::2], -70.0)
    # every grid sample inside a refractory period holds v_reset exactly
    t, y = nodes(t, y, spikes)
    np.testing.assert_allclose(t, 0.1 * np.arange(1, 3997), rtol=0, atol=1e-9)
    held = np.any([(t > s + 1e-9) & (t < s + 2.0 - 1e-9) for s in exact], axis=0)
    assert held.sum() == 22 * 20  # 2 ms windows not starting on a node: 20 nodes each
    np.testing.assert_array_equal(y[held, 0], -70.0)
    assert sum(np.any((joins > s) & (joins < s + 2.0)) for s in exact) == 11  # the joins split refractory periods


# 2. frames add up to the grid

def test_frames_add_up_to_the_uniform_grid_and_the_rounding_carries():
    simulation = LiveSimulation(model="izhikevich", preset="tonic_spiking")
    dt = simulation.dt
    assert dt == 0.25  # 33.3 ms is 133.2 steps: frames of 133 and 134 steps
    # frames shorter than a step: nothing until the carried remainder rounds to a step (0.1 ms = 0.4 steps)
    assert [len(frame_nodes(simulation.advance(0.1))[0]) for _ in range(4)] == [0, 1, 0, 1]
    assert simulation.t == 0.5
    simulation.reset()
    lengths = []
    for frame in range(1, 13):
        out = simulation.advance(FRAME)
        lengths.append(len(frame_nodes(out)[0]))
        assert simulation.t == pytest.approx(dt * round(frame * FRAME / dt), abs=1e-9)
    assert set(lengths) == {133, 134} and sum(lengths) == round(12 * FRAME / dt)
    simulation.reset()
    t, y, spikes, _ = run_frames(simulation, 12)
    assert len(spikes) > 10 and np.all(np.diff(t) >= 0)
    t, _ = nodes(t, y, spikes)
    assert len(t) == sum(lengths)
    np.testing.assert_allclose(t, dt * np.arange(1, len(t) + 1), rtol=0, atol=1e-9)
    assert np.all(np.abs(np.diff(t) - dt) < 1e-9)


# 3. integer-order live frames equal one simulate() run

@pytest.mark.parametrize("method", ["euler", "rk4", "backward-euler"])
def test_live_frames_equal_one_simulate_run(method):
    simulation = LiveSimulation(model="izhikevich", preset="tonic_spiking", method=method)
    t, y, spikes, _ = run_frames(simulation, 10)
    run = ns.simulate("izhikevich", preset="tonic_spiking", method=method, dt=simulation.dt, t_end=simulation.t,
                      current=currents.constant(simulation.amplitude), events="located")
    assert run.status == "success" and len(run.spikes) >= 10
    # the same rows: the grid nodes after t = 0 and, at each spike, the states before and after the reset
    assert len(t) == len(run.t) - 1
    np.testing.assert_allclose(t, run.t[1:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, run.y[1:], rtol=0, atol=1e-9)  # measured: identical
    assert len(spikes) == len(run.spikes)
    np.testing.assert_allclose(spikes, run.spikes, rtol=0, atol=1e-9)


# 4. fractional: fast-l1 in frames against the direct L1 sum

def test_fractional_live_fast_l1_matches_the_direct_l1_sum():
    simulation = LiveSimulation(model="lif", fractional=True)
    assert simulation.method == "fast-l1"
    simulation.set_value("alpha", 0.7)
    simulation.set_value("I", 5.0)
    simulation.set_value("t_ref", 2.0)  # the refractory end rides across frames too
    outputs = []
    for frame in range(1, 10):
        outputs.append(simulation.advance(FRAME))
        assert simulation.t == pytest.approx(0.1 * round(frame * FRAME / 0.1), abs=1e-9)
    t = np.concatenate([o["t"] for o in outputs])
    y = np.concatenate([o["y"] for o in outputs])
    spikes = np.concatenate([o["spikes"] for o in outputs])
    run = ns.simulate("lif", method="l1", alpha=0.7, dt=0.1, t_end=simulation.t, current=5.0,
                      params={"t_ref": 2.0}, events="located")
    assert len(run.spikes) >= 8
    assert len(t) == len(run.t) - 1  # the grid nodes after t = 0 and two rows at each spike
    np.testing.assert_allclose(t, run.t[1:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, run.y[1:], rtol=1e-8, atol=0)  # measured 4e-13 relative
    assert len(spikes) == len(run.spikes)
    np.testing.assert_allclose(spikes, run.spikes, rtol=0, atol=1e-8)  # measured 1e-10 ms


def direct_l1_lif(schedule, dt, t_ref=0.0):
    """Fractional LIF by the implicit L1 scheme with the full history sum, written out here: ``schedule`` gives
    (alpha, I, parameters) for each step, so a slider move changes the weights and the equation, never the stored
    increments. The history is a list of linear pieces (a, b, Δ) in time, each weighing
    Δ/(b − a)·((t − a)^{1−α} − (t − b)^{1−α})/Γ(2 − α) at t. Resets as in :mod:`neurospike.solvers.fractional`:
    the crossing t* by linear interpolation, a piece up to it (increment v_th − v_{n−1}), the reset at t*, the step
    finished from v_reset (or from the end of the refractory period t* + t_ref; nodes inside it hold v_reset).
    Returns v at the nodes after t = 0 and the spike times."""
    pieces = np.zeros((2 * len(schedule) + 2, 3))
    v, count, spikes, refractory_end = [schedule[0][2]["E_L"]], 0, [], -np.inf

    def solve(alpha, current, p, start, value, now):  # the L1 equation at `now` for the piece [start, now]
        a, b, rise = pieces[:count].T
        history = np.sum(rise / (b - a) * ((now - a) ** (1 - alpha) - (now - b) ** (1 - alpha))) / gamma(2 - alpha)
        own = (now - start) ** -alpha / gamma(2 - alpha)
        return (own * value - history + (p["g_L"] * p["E_L"] + current) / p["C"]) / (own + p["g_L"] / p["C"])

    for n, (alpha, current, p) in enumerate(schedule, start=1):
        previous, now = v[-1], n * dt
        if now <= refractory_end + 1e-9 * dt:
            v.append(previous)
            continue
        start = max((n - 1) * dt, refractory_end)
        new = solve(alpha, current, p, start, previous, now)
        if previous < p["v_th"] <= new:
            spikes.append(start + (p["v_th"] - previous) / (new - previous) * (now - start))
            pieces[count], count = (start, spikes[-1], p["v_th"] - previous), count + 1
            refractory_end = spikes[-1] + t_ref if t_ref > 0 else refractory_end
            start, new = max(spikes[-1], refractory_end), p["v_reset"]
            if now > refractory_end + 1e-9 * dt:
                new = solve(alpha, current, p, start, p["v_reset"], now)
                pieces[count], count = (start, now, new - p["v_reset"]), count + 1
        else:
            pieces[count], count = (start, now, new - previous), count + 1
        v.append(new)
    return np.asarray(v[1:]), np.asarray(spikes)


# 5. sliders never recompile, and take effect

def test_integer_order_sliders_never_recompile_and_take_effect_exactly(monkeypatch):
    monkeypatch.setattr(compiled_module, "CACHE", {})  # far below MAX_EXECUTABLES: a new compile grows it
    simulation = LiveSimulation(model="lif")
    before = run_frames(simulation, 15)[2]  # 499.5 ms at I = 2.5 nA
    compiled = len(compiled_module.CACHE)
    simulation.set_value("I", 5.0)
    simulation.set_value("g_L", 0.2)  # v_∞ = −45 mV, τ = 5 ms: interval 5 ln 5
    simulation.set_value("t_ref", 1.5)
    simulation.configure(dt=0.075)  # dt is traced too (444 steps a frame: the same frame size)
    _, _, after, _ = run_frames(simulation, 15)  # the next 499.5 ms
    assert len(compiled_module.CACHE) == compiled
    assert len(after) > len(before) + 15  # the larger input fires more over the same time: 52 against 31
    np.testing.assert_allclose(np.diff(before), lif_interval(2.5, LIF), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.diff(after), lif_interval(5.0, dict(LIF, g_L=0.2, t_ref=1.5)), rtol=0, atol=1e-6)


def test_fractional_sliders_never_recompile_and_take_effect_as_in_the_direct_sum(monkeypatch):
    monkeypatch.setattr(compiled_module, "CACHE", {})
    simulation = LiveSimulation(model="lif", fractional=True)
    simulation.set_value("alpha", 0.7)
    simulation.set_value("I", 5.0)
    simulation.set_value("t_ref", 2.0)
    first = simulation.advance(150.0)
    compiled = len(compiled_module.CACHE)
    simulation.set_value("alpha", 0.55)
    simulation.set_value("I", 7.0)
    simulation.set_value("g_L", 0.12)
    second = simulation.advance(150.0)
    assert len(compiled_module.CACHE) == compiled
    moved = dict(LIF, g_L=0.12)
    first_nodes, second_nodes = frame_nodes(first), frame_nodes(second)
    schedule = [(0.7, 5.0, LIF)] * len(first_nodes[0]) + [(0.55, 7.0, moved)] * len(second_nodes[0])
    v, spikes = direct_l1_lif(schedule, 0.1, t_ref=2.0)
    assert len(first["spikes"]) >= 5 and len(second["spikes"]) >= 1
    # the sum-of-exponentials modes were built with α = 0.7's nodes: measured 1.4e-6 ms off the direct sum after
    # the move (1e-10 with α unchanged); the node after a spike is finished from t*, so it moves by that times
    # dv/dt ≈ 4 mV/ms: 5.6e-6 mV (4e-10 before the move)
    np.testing.assert_allclose(np.concatenate([first_nodes[1][:, 0], second_nodes[1][:, 0]]), v, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([first["spikes"], second["spikes"]]), spikes, rtol=0, atol=1e-5)
    # a run that kept the old values differs (the check above is not vacuous)
    kept = LiveSimulation(model="lif", fractional=True)
    for name, value in (("alpha", 0.7), ("I", 5.0), ("t_ref", 2.0)):
        kept.set_value(name, value)
    kept.advance(150.0)
    assert np.max(np.abs(frame_nodes(kept.advance(150.0))[1] - second_nodes[1])) > 1.0


def test_alpha_one_is_the_integer_order_model_and_the_top_of_the_slider_does_not_recompile(monkeypatch):
    monkeypatch.setattr(compiled_module, "CACHE", {})
    simulation = LiveSimulation(model="lif", fractional=True)
    with pytest.raises(NeurospikeError, match=r"alpha=1 is outside \[0.3, 0.99\]"):
        simulation.set_value("alpha", 1.0)
    simulation.set_value("alpha", 0.7)
    simulation.advance(20.0)
    assert len(compiled_module.CACHE) == 1
    simulation.set_value("alpha", live.ALPHA_RANGE[1])
    simulation.advance(20.0)
    assert len(compiled_module.CACHE) == 1


def test_the_history_survives_the_top_of_the_alpha_slider_and_back():
    simulation = LiveSimulation(model="lif", fractional=True)
    simulation.set_value("I", 5.0)
    simulation.set_value("t_ref", 2.0)
    schedule, v, spikes = [], [], []
    for alpha in (0.7, live.ALPHA_RANGE[1], 0.7):
        simulation.set_value("alpha", alpha)
        out = simulation.advance(100.0)
        grid_t, grid_y = frame_nodes(out)
        schedule += [(alpha, 5.0, LIF)] * len(grid_t)
        v.append(grid_y[:, 0])
        spikes.append(out["spikes"])
    exact_v, exact_spikes = direct_l1_lif(schedule, 0.1, t_ref=2.0)
    np.testing.assert_allclose(np.concatenate(spikes), exact_spikes, rtol=0, atol=1e-4)
    # the first Gauss-Jacobi interval's modes keep the decay of the alpha they were accumulated with
    np.testing.assert_allclose(np.concatenate(v), exact_v, rtol=0, atol=1e-5)


# 6. bad values

BAD_VALUES = [
    (lambda: LiveSimulation(), lambda s: s.set_value("I", 60.0), "I=60"),
    (lambda: LiveSimulation(), lambda s: s.set_value("I", math.nan), "I=nan"),
    (lambda: LiveSimulation(), lambda s: s.set_value("a", 5.0), "a=5"),
    (lambda: LiveSimulation(model="lif"), lambda s: s.set_value("t_ref", -1.0), "t_ref=-1"),
    (lambda: LiveSimulation(), lambda s: s.set_value("nope", 1.0), "'nope'"),
    (lambda: LiveSimulation(), lambda s: s.set_value("alpha", 0.5), "alpha"),
    (lambda: LiveSimulation(model="lif", fractional=True), lambda s: s.set_value("alpha", 0.2), "alpha=0.2"),
    (lambda: LiveSimulation(model="lif", fractional=True), lambda s: s.set_value("alpha", 1.1), "alpha=1.1"),
    (lambda: LiveSimulation(), lambda s: s.configure(method="fast-l1"), "'fast-l1'"),
    (lambda: LiveSimulation(), lambda s: s.configure(method="reference"), "'reference'"),
    (lambda: LiveSimulation(model="lif", fractional=True), lambda s: s.configure(method="rk4"), "'rk4'"),
    (lambda: LiveSimulation(), lambda s: s.configure(dt=0.6), "dt=0.6"),
    (lambda: LiveSimulation(), lambda s: s.configure(dt=0.0005), "dt=0.0005"),
    (lambda: LiveSimulation(), lambda s: s.configure(dt=math.nan), "dt=nan"),
    (lambda: None, lambda s: LiveSimulation(model="nope"), "'nope'"),
    (lambda: None, lambda s: LiveSimulation(model="lif", preset="nope"), "'nope'"),
    (lambda: None, lambda s: LiveSimulation(model="lif", dt=1.0), "dt=1"),
]


@pytest.mark.parametrize("make, act, fragment", BAD_VALUES, ids=[case[2] for case in BAD_VALUES])
def test_bad_values_raise_with_the_value_named_and_change_nothing(make, act, fragment):
    simulation = make()
    state = None if simulation is None else (simulation.amplitude, simulation.alpha, dict(simulation.params),
                                             simulation.method, simulation.dt)
    with pytest.raises(NeurospikeError, match=re.escape(fragment)):
        act(simulation)
    if simulation is not None:
        assert (simulation.amplitude, simulation.alpha, simulation.params, simulation.method,
                simulation.dt) == state


def test_a_refused_configure_changes_nothing():
    simulation = LiveSimulation()
    with pytest.raises(NeurospikeError, match="dt=0.6"):
        simulation.configure(method="euler", dt=0.6)
    assert simulation.method == "rk4"


# 7. halting

def test_a_non_finite_state_halts_until_reset():
    simulation = LiveSimulation(model="hh", method="euler", dt=0.5)  # forward Euler is unstable on HH at 0.5 ms
    out = simulation.advance(FRAME)
    assert out["halted"] is not None and "non-finite" in out["halted"] and "euler" in out["halted"]
    assert 0 < len(out["t"]) < FRAME / 0.5 and np.all(np.isfinite(out["y"]))
    stopped = simulation.t
    assert stopped == frame_nodes(out)[0][-1] and np.all(np.isfinite(simulation.y))
    again = simulation.advance(FRAME)
    assert len(again["t"]) == 0 and len(again["spikes"]) == 0 and again["halted"] == out["halted"]
    assert simulation.t == stopped
    simulation.reset()
    assert simulation.halted is None and simulation.t == 0.0
    fresh = simulation.advance(1.0)  # the blow-up comes later than 1 ms
    assert fresh["halted"] is None and len(frame_nodes(fresh)[0]) == 2 and simulation.t == 1.0


# 8. firing rate and bounded memory

def test_firing_rate_counts_the_spikes_of_the_last_second():
    simulation = LiveSimulation(model="lif")
    simulation.set_value("I", 10.0)  # v_∞ = 30 mV: interval 10 ln(100/80) = 2.23 ms, 448 Hz
    interval = lif_interval(10.0, LIF)
    _, _, spikes, _ = run_frames(simulation, 15)  # 499.5 ms: the rate over the time run so far
    assert simulation.firing_rate() == pytest.approx(1000.0 * len(spikes) / simulation.t, rel=1e-12)
    _, _, more, _ = run_frames(simulation, 30)  # 1498.5 ms
    spikes = np.concatenate([spikes, more])
    np.testing.assert_allclose(spikes, interval * np.arange(1, len(spikes) + 1), rtol=0, atol=1e-6)
    recent = np.sum(spikes > simulation.t - 1000.0)
    assert recent == math.floor(simulation.t / interval) - math.floor((simulation.t - 1000.0) / interval)
    assert simulation.firing_rate() == pytest.approx(recent, rel=1e-12)
    assert simulation.spike_count == len(spikes) and list(simulation.spike_times) == spikes.tolist()


def test_spike_memory_is_bounded_while_the_count_goes_on(monkeypatch):
    monkeypatch.setattr(live, "SPIKES_KEPT", 64)
    simulation = LiveSimulation(model="lif")  # __init__ resets: the deque takes the patched length
    simulation.set_value("I", 10.0)
    _, _, spikes, _ = run_frames(simulation, 15)
    assert len(spikes) > 200
    assert simulation.spike_count == len(spikes)
    assert list(simulation.spike_times) == spikes[-64:].tolist()


# LIF at 6.5 kHz, below the 10 kHz rate guard: C = 0.1 nF, g_L = 0.01 µS (τ = 10 ms, v_∞ = 930 mV at 10 nA),
# v_th = −35, v_reset = −50: interval 10 ln(980/965) = 0.154 ms
QUICK_LIF = dict(LIF, C=0.1, g_L=0.01, v_th=-35.0, v_reset=-50.0)


def quick_lif(dt=0.1, **changes):
    simulation = LiveSimulation(model="lif", dt=dt)
    for name, value in {**QUICK_LIF, **changes}.items():
        simulation.set_value(name, value)
    simulation.set_value("I", 10.0)
    return simulation


def test_firing_rate_is_right_at_kilohertz_rates():  # 6.5 kHz: more spikes in the window than the old 4096 kept
    simulation = quick_lif()
    interval = lif_interval(10.0, QUICK_LIF)
    _, _, spikes, outputs = run_frames(simulation, 33)  # 1098.9 ms
    assert all(o["halted"] is None for o in outputs)
    recent = np.sum(spikes > simulation.t - 1000.0)
    assert abs(recent - 1000.0 / interval) <= 1
    assert simulation.firing_rate() == pytest.approx(recent, rel=1e-12)


def test_fast_firing_below_the_rate_guard_runs_at_a_large_dt():
    simulation = quick_lif(dt=0.5, v_th=-30.0)  # interval 10 ln(980/960) = 0.206 ms
    p = dict(QUICK_LIF, v_th=-30.0)
    _, _, spikes, outputs = run_frames(simulation, 3)
    assert all(o["halted"] is None for o in outputs), outputs[-1]["halted"]
    np.testing.assert_allclose(np.diff(spikes), lif_interval(10.0, p), rtol=0, atol=1e-6)


# 9. phase plane

def test_phase_plane_curves_are_the_models_formulas():
    simulation = LiveSimulation(model="izhikevich", preset="tonic_spiking")
    p = simulation.params
    plane = simulation.phase_plane()
    assert (plane["x"], plane["y"]) == ("v", "u")
    v = np.asarray(plane["grid"])
    assert v[0] <= p["c"] and v[-1] >= p["v_peak"]
    curves = {c["name"]: np.asarray(c["y"], dtype=float) for c in plane["curves"]}
    assert set(curves) == {"v-nullcline", "u-nullcline"}
    np.testing.assert_allclose(curves["v-nullcline"], 0.04 * v**2 + 5.0 * v + 140.0 + 14.0, rtol=1e-14, atol=1e-12)
    np.testing.assert_allclose(curves["u-nullcline"], 0.2 * v, rtol=1e-14, atol=1e-12)
    simulation.set_value("I", 30.5)
    moved = {c["name"]: np.asarray(c["y"], dtype=float) for c in simulation.phase_plane()["curves"]}
    np.testing.assert_allclose(moved["v-nullcline"] - curves["v-nullcline"], 16.5, rtol=0, atol=1e-11)
    np.testing.assert_array_equal(moved["u-nullcline"], curves["u-nullcline"])

    lif = LiveSimulation(model="lif")
    lif.set_value("C", 2.0)
    lif.set_value("I", -1.5)
    plane = lif.phase_plane()
    assert (plane["x"], plane["y"]) == ("v", "dv/dt")
    v = np.asarray(plane["grid"])
    assert v[0] <= -70.0 and v[-1] >= -50.0
    slope = np.asarray(plane["curves"][0]["y"])
    np.testing.assert_allclose(slope, (-0.1 * (v + 70.0) - 1.5) / 2.0, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(lif.phase_y(v[:, None]), slope, rtol=1e-14, atol=1e-14)

    hh = LiveSimulation(model="hh").phase_plane()
    assert (hh["x"], hh["y"], hh["curves"]) == ("v", "n", [])


# 10. one compiled call per frame, thinned for the page inside it

def count_calls(monkeypatch):
    """Replace every compiled executable in the cache by one that counts its calls; returns the count list."""
    calls = []
    for key, executable in list(compiled_module.CACHE.items()):
        monkeypatch.setitem(compiled_module.CACHE, key, lambda *a, run=executable: calls.append(1) or run(*a))
    return calls


@pytest.mark.parametrize("fractional", [False, True], ids=["rk4", "fast-l1"])
def test_a_frame_is_one_compiled_call_and_frames_of_one_bucket_and_sliders_never_recompile(monkeypatch, fractional):
    monkeypatch.setattr(compiled_module, "CACHE", {})
    simulation = LiveSimulation(model="izhikevich", preset="tonic_spiking", dt=0.1, fractional=fractional)
    simulation.warm_up(26.0, 200)  # 260 steps: the frame size of 65 … 512 steps
    assert len(compiled_module.CACHE) == 1 and simulation.t == 0.0
    calls = count_calls(monkeypatch)
    for k, length in enumerate((26.0, 30.0, 40.0, 51.2, 25.7)):  # 260, 300, 400, 512 and 257 steps
        simulation.set_value("I", 10.0 + k)
        simulation.set_value("d", 6.0 + k)
        if fractional:
            simulation.set_value("alpha", 0.7 + 0.05 * k)
        out = simulation.advance(length, 200)
        assert len(calls) == k + 1 and len(compiled_module.CACHE) == 1
        assert 0 < len(out["t"]) <= 200
    assert simulation.t == pytest.approx(172.9, abs=1e-9)
    simulation.advance(60.0, 200)  # 600 steps: the next size (4096), compiled once
    simulation.advance(70.0, 200)
    assert len(compiled_module.CACHE) == 2


def decimated(t, v, points):
    """The page's rows by numpy: the first min and first max of v in each of points/2 buckets of ceil(m /
    (points/2)) rows, in time order (all rows when they fit)."""
    m = len(v)
    if m <= points:
        return np.arange(m)
    width = -(-m // (points // 2))
    keep = [start + f(v[start:start + width]) for start in range(0, m, width) for f in (np.argmin, np.argmax)]
    return np.unique(keep)


@pytest.mark.parametrize("model, preset, dt, length", [
    pytest.param("hh", "tonic", 0.01, 25.0, id="hh-1x"),
    pytest.param("izhikevich", "tonic_spiking", 0.1, 250.0, id="izhikevich-10x"),
    pytest.param("izhikevich", "tonic_spiking", 0.1, 10.0, id="izhikevich-fits")])
def test_thinned_frames_are_the_bucket_extremes_and_keep_every_spike_peak(model, preset, dt, length):
    full, thinned = (LiveSimulation(model=model, preset=preset, dt=dt) for _ in range(2))
    peaks = 0
    for _ in range(8):
        whole, page = full.advance(length), thinned.advance(length, 200)
        keep = decimated(whole["t"], whole["y"][:, 0], 200)
        np.testing.assert_array_equal(page["t"], whole["t"][keep])
        np.testing.assert_array_equal(page["y"], whole["y"][keep])
        np.testing.assert_array_equal(page["spikes"], whole["spikes"])
        for spike in whole["spikes"]:  # the top of each spike (HH: the action potential's peak) is drawn
            near = np.abs(whole["t"] - spike) < 1.0
            assert np.max(whole["y"][near, 0]) in page["y"][:, 0]
            peaks += 1
    assert peaks >= 4 and full.t == thinned.t
    if length == 10.0:
        assert len(page["t"]) == len(whole["t"]) < 200  # a frame that fits is sent whole


def test_hodgkin_huxley_frames_equal_one_simulate_run_with_spikes_across_frame_joins():
    simulation = LiveSimulation(model="hh", preset="tonic", method="rk4", dt=0.01)
    run = ns.simulate("hh", preset="tonic", method="rk4", dt=0.01, t_end=300.0,
                      current=currents.constant(simulation.amplitude), events="located")
    assert run.status == "success" and len(run.spikes) >= 15
    # uneven frames joined 0.05 ms after every other spike's crossing (on its upstroke) or 0.3 ms before it
    joins = np.round(np.sort(np.concatenate([run.spikes[1::4] + 0.05, run.spikes[3::4] - 0.3])), 2)
    outputs = [simulation.advance(length) for length in np.diff(np.concatenate([[0.0], joins, [300.0]]))]
    t, y, spikes = (np.concatenate([o[key] for o in outputs]) for key in ("t", "y", "spikes"))
    assert len(joins) >= 7 and len(spikes) == len(run.spikes)
    np.testing.assert_allclose(t, run.t[1:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, run.y[1:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(spikes, run.spikes, rtol=0, atol=1e-9)


def test_fast_l1_frames_equal_one_fast_l1_run():
    simulation = LiveSimulation(model="izhikevich", preset="tonic_spiking", fractional=True, dt=0.1)
    t, y, spikes, _ = run_frames(simulation, 9)
    steps = round(simulation.t / 0.1)
    params = simulation.params
    one = fractional.run_l1(simulation.model, params, currents.constant(simulation.amplitude),
                            simulation._start(), np.full(2, live.DEFAULT_ALPHA), 0.0, 0.1, steps, history="soe",
                            horizon=live.HORIZON_STEPS)
    assert len(spikes) == len(one["spike_times"]) >= 4
    np.testing.assert_allclose(nodes(t, y, spikes)[1], one["y"][1:], rtol=1e-12, atol=1e-12)  # measured: identical
    np.testing.assert_allclose(spikes, one["spike_times"], rtol=0, atol=1e-11)  # measured 3e-14 ms

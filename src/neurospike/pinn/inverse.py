"""The inverse PINN (``ns.fit(..., method="pinn")``): unknown parameters as trainable variables beside the
networks, fitted to a recorded membrane potential (Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 378 (2019)
686, the "data-driven discovery" of their section 4).

The recording [t_first, t_last] is cut into windows (one network per window, the forward engine's
:class:`~neurospike.pinn.engine.SubProblem` on all states): y(τ) = y0 + τ·S·N(τ), τ = (t − t0)/H, S the window's
output scale. The parameters are p = lo + (hi − lo)·σ(θ) (inside their bounds, as ``fitting.Space``), θ trained
with the weights. The loss of a window is

    L = mean_i |r(τ_i)|²  +  λ · mean_j ((v(τ_j) − v_j)/V)²,

r the forward engine's residual (dy/dτ − H·f(t, y; p))/S at Gauss–Legendre points τ_i (``jax.jvp`` in τ), the
data term over the samples v_j inside the window (V the model's typical range of v, λ ``data_weight``). Only the
``observed`` state has data; the hidden states (HH's gates, Izhikevich's w) are constrained by the residual and
by continuity alone.

Three phases:

1. **March** (as ``pinn-marching``): window after window, each network warm-started from the previous one's
   weights and started from its end state — hidden states included — (exact initial condition), trained by Adam
   then L-BFGS on that window's loss with θ held at the start values and the observed state's residual weighted
   down (``observed_weight``): the network follows the data, and the hidden states follow their own equations
   driven by it rather than bending to make up for wrong parameters (for HH the gates' equations do not hold
   g_Na, g_K, g_L at all). The first window starts from the model's initial state for the current parameters
   (``model.initial_state``) with ``initial`` on top; after a recorded spike a window starts from the reset map
   of the previous end, except the observed state, which starts from the window's first sample.
2. **Parameters**: θ alone, L-BFGS on the mean of the windows' losses, each weighted by its length (a mean
   over time; all residuals weighted 1), with the marched networks fixed: a least squares of the equations
   along the data-driven solution (the few variables converge in tens of steps).
3. **Joint**: every window's network, its start state and θ trained together (Adam, then L-BFGS) on that mean,
   each window's loss plus its continuity loss ((y0ₙ₊₁ − yₙ(1))/Sₙ₊₁)² (yₙ(1) through the reset map at a
   recorded spike; window 0's hidden states against the model's initial state): multiple shooting, each window
   tied to its neighbours only, so that a step on one window's network does not move every later window's start.

Windows: short (0.5 ms) around the data's spikes, long (4 ms) between them by default: a network on 0.5 ms of
σ = 1 mV data sees 10 samples and its slope there is noise (HH's g_L came out +29 % with 0.5 ms windows
everywhere). Without windows the fit fails: one network does not follow HH's spikes (docs/pinn.md).

Resets: ``spikes`` (recorded spike times) are window boundaries where the model's reset map is applied (v ← c,
w ← w + d for Izhikevich 2007, with the fitted c, d): a network never has to represent a discontinuity.
Measured results and where it fails: docs/pinn.md ("The inverse PINN"); ``benchmarks/fit_pinn.py``.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import NeurospikeError
from ..solvers import events
from .engine import PinnOptions, SubProblem, gauss_legendre, train
from .methods import events_of
from .network import apply_network, init_network

DEFAULTS = dict(widths=(32, 32), activation="tanh", fourier=0, collocation=32)


def fit_inverse(model, sample_times, sample_v, current, names, low, high, start, fixed, initial, *,  # noqa: C901
                observed="v", windows=None, spikes=None, steps=(200, 50), first_steps=(2000, 300),
                theta_steps=50, joint_steps=(100, 100), learning_rate=1e-3, data_weight=100.0,
                observed_weight=0.01, march_parameters=False, length_weighted=True, options=None, seed=0,
                progress=None):
    """Fit the parameters ``names`` of ``model`` to the samples ``sample_v`` of its state ``observed`` at
    ``sample_times`` (ms, increasing) under the input ``current`` (a current object, the recording's) with the
    inverse PINN (module docstring: the loss, the windows, the three phases).

    ``low``/``high``: the bounds of ``names`` (arrays; p = lo + (hi − lo)·σ(θ)); ``start``: their starting values;
    ``fixed``: the values of every other parameter; ``initial``: initial values of states (at least the observed
    one; the others default to ``model.initial_state`` of the parameters, e.g. HH's gates at their steady state).
    ``windows``: None (short windows around the spikes of the data, long ones between: the defaults of the
    mapping form), a mapping ``{"short": 0.5, "long": 4.0, "before": 2.0, "after": 3.0, "level": <the model's
    spike level>}`` (ms; windows of at most ``short`` from ``before`` ms before each upward crossing of ``level``
    by the data, or recorded spike, to ``after`` ms after it, of at most ``long`` elsewhere), a number (every
    window at most that long; ``math.inf``: one window) or a sequence of boundary times. ``spikes``: recorded
    spike times (a model with a reset): window boundaries where the reset map is applied. ``steps``: (Adam,
    L-BFGS) steps per window of the march, ``first_steps`` those of the first window (random weights);
    ``theta_steps``: L-BFGS steps on θ alone; ``joint_steps``: (Adam, L-BFGS) steps of the joint phase.
    ``data_weight`` λ; ``observed_weight``: the weight of the observed state's residual during the march (the
    network follows the data there, with the wrong start values the hidden states do not absorb their error);
    ``length_weighted``: the parameter and joint phases weigh each window's loss by its length (a mean over time;
    else every window alike); ``march_parameters``: train θ during the march too (measured worse: Adam moves θ by ~``learning_rate`` a
    step in every window, also where the data say nothing about it). ``options``: ``widths``, ``activation``,
    ``fourier``, ``collocation`` (a mapping or :class:`PinnOptions`). ``progress(iteration, loss)``: after each
    window and each phase or chunk of 50 joint steps.

    Returns ``dict(values={name: float}, history=[{"phase", "iteration", "loss", "values"}], evaluations=int,
    notes=[str], windows=[{"t0", "t1", "reset", "residual", "data", "continuity", "march_values"}],
    march_values={name: float}, times={"march_s", "total_s"})``: ``history`` has an entry per window of the march
    ("march"), one for the θ-alone phase ("parameters") and one per 50 joint steps ("joint"); ``windows`` the loss
    components of each window after the last phase; ``evaluations`` the loss-and-gradient evaluations."""
    began = time.perf_counter()
    names = list(names)
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if not (len(names) == len(low) == len(high)) or not np.all(low < high):
        raise NeurospikeError("fit_inverse: one (low, high) with low < high per fitted name")
    settings = dict(DEFAULTS)
    if isinstance(options, PinnOptions):
        options = {k: v for k, v in vars(options).items() if v is not None}
    settings.update({k: v for k, v in (options or {}).items() if k in DEFAULTS and v is not None})
    unknown = set(options or {}) - set(DEFAULTS)
    if unknown:
        raise NeurospikeError(f"fit_inverse options {sorted(unknown)}: only {', '.join(DEFAULTS)}")
    times, data = np.asarray(sample_times, dtype=float), np.asarray(sample_v, dtype=float)
    if times.ndim != 1 or times.shape != data.shape or times.size < 2 or np.any(np.diff(times) <= 0):
        raise NeurospikeError("fit_inverse: sample_times increasing, one sample_v each, two at least")
    n = model.n_states
    k = model.state_index(observed)
    rule = model.spike
    event_rule = events_of(model)
    resets_at = np.asarray(sorted(spikes if spikes is not None else ()), dtype=float)
    resets_at = resets_at[(resets_at > times[0]) & (resets_at < times[-1])]
    if resets_at.size and (rule is None or rule.reset is None):
        raise NeurospikeError(f"spikes given, but model {model.name!r} has no reset")
    level = float(fixed[rule.level]) if rule is not None and rule.level in fixed else 0.0
    bounds, reset_flags = _windows(times, data, windows, resets_at, level)
    count = len(bounds) - 1

    typical = model.state_scales or (1.0,) * n
    sub = SubProblem(model.derivatives, tuple(range(n)), tuple(float(s) for s in typical), settings["activation"],
                     int(settings["fourier"]), "exact", 0.0, float(data_weight))
    tau = jnp.asarray(gauss_legendre(int(settings["collocation"])))

    # the samples of each window (t0 <= t < t1; the last window keeps t_last), NaN-padded to one size
    index = np.searchsorted(times, bounds[:-1], side="left"), np.searchsorted(times, bounds[1:], side="left")
    index[1][-1] = times.size
    most = max(1, int(np.max(index[1] - index[0])))
    data_tau = np.zeros((count, most))
    data_y = np.full((count, most, n), np.nan)
    for w in range(count):
        a, b = index[0][w], index[1][w]
        data_tau[w, : b - a] = (times[a:b] - bounds[w]) / (bounds[w + 1] - bounds[w])
        data_y[w, : b - a, k] = data[a:b]

    space_low, space_high = jnp.asarray(low), jnp.asarray(high)
    fixed_values = {name: jnp.asarray(value, dtype=jnp.float64) for name, value in fixed.items()}

    def params_of(theta):
        p = space_low + (space_high - space_low) * jax.nn.sigmoid(theta)
        return {**fixed_values, **{name: p[i] for i, name in enumerate(names)}}

    def first_state(theta):
        values = params_of(theta)
        state = dict(zip(model.states, model.initial_state(values, jnp)))
        state.update({s: jnp.asarray(v, dtype=jnp.float64) for s, v in (initial or {}).items()})
        return jnp.stack([jnp.asarray(state[s], dtype=jnp.float64) + 0.0 * theta[0] for s in model.states])

    def start_state(theta, previous_end, first, reset, sample):
        """The march's window start: after a reset the reset map of the previous end, except the observed state,
        which starts from the window's first sample (the reset value, e.g. Izhikevich's c, is being fitted: the
        start value would pin the network to it, and the θ-alone phase could not move it)."""
        after = events.reset_state(event_rule, params_of(theta), previous_end) if resets_at.size else previous_end
        after = after.at[k].set(jnp.where(jnp.isfinite(sample), sample, after[k]))
        return jnp.where(first, first_state(theta), jnp.where(reset, after, previous_end))

    def loss_parts(q, current_, t0, length, previous_end, first, reset, scale, d_tau, d_y):
        net, theta = q
        y0 = start_state(theta, previous_end, first, reset, d_y[0, k])
        window = sub.window(params_of(theta), current_, t0, length, y0, d_tau, d_y)._replace(scale=scale,
                                                                                              weight=march_weight)
        total = sub.loss(net, params_of(theta), current_, window, tau)
        data_part = sub.data_loss(net, window)
        return total, (total - data_weight * data_part, data_part, sub.solution(net, window, 1.0))

    march_weight = jnp.where(jnp.arange(n) == k, observed_weight, 1.0)
    theta = jnp.asarray(_logit(np.asarray([start[name] for name in names], dtype=float), low, high))
    net = init_network(jax.random.PRNGKey(seed), n, tuple(settings["widths"]), int(settings["fourier"]))
    capacity = (max(steps[0], first_steps[0]), max(steps[1], first_steps[1]))

    def march_window(q, current_, t0, length, previous_end, first, reset, d_tau, d_y, adam, lbfgs):
        net, theta = q
        y0 = start_state(theta, previous_end, first, reset, d_y[0, k])
        scale = jax.lax.stop_gradient(sub.window(params_of(theta), current_, t0, length, y0).scale)

        def loss(q, points):
            if not march_parameters:  # θ held during the march (zero gradient: Adam and L-BFGS leave it)
                q = (q[0], jax.lax.stop_gradient(q[1]))
            return loss_parts(q, current_, t0, length, previous_end, first, reset, scale, d_tau, d_y)[0]

        trained, final, _ = train(loss, q, adam, lbfgs, learning_rate, tau, capacity=capacity)
        _, (residual, data_part, end) = loss_parts(trained, current_, t0, length, previous_end, first, reset,
                                                   scale, d_tau, d_y)
        return trained, final, residual, data_part, end, scale, y0

    compiled_march = jax.jit(march_window)
    history, notes, per_window = [], [], []
    evaluations = 0
    previous_end = jnp.zeros((n,))
    scales = np.zeros((count, n))
    nets, window_starts = [], []
    march_values = []
    q = (net, theta)
    for w in range(count):
        adam, lbfgs = first_steps if w == 0 else steps
        q, final, residual, data_part, previous_end, scale, y0 = compiled_march(
            q, current, jnp.asarray(bounds[w]), jnp.asarray(bounds[w + 1] - bounds[w]), previous_end,
            jnp.asarray(w == 0), jnp.asarray(bool(reset_flags[w])), jnp.asarray(data_tau[w]),
            jnp.asarray(data_y[w]), jnp.asarray(adam), jnp.asarray(lbfgs))
        evaluations += adam + lbfgs
        scales[w] = np.asarray(scale)
        nets.append(q[0])
        window_starts.append(np.asarray(y0))
        values = _values(params_of, q[1], names)
        march_values.append(values)
        history.append({"phase": "march", "iteration": w, "loss": float(final), "values": values,
                        "residual": float(residual), "data": float(data_part)})
        if progress is not None:
            progress(w, float(final))
    march_time = time.perf_counter() - began

    theta = q[1]
    if sum(joint_steps) or theta_steps:
        stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *nets)
        flags = jnp.asarray(reset_flags)
        hidden = jnp.arange(n) != k  # window 0: the hidden states start from the model's initial state, v free
        t0s, lengths = jnp.asarray(bounds[:-1]), jnp.asarray(np.diff(bounds))
        d_tau_all, d_y_all, scale_all = jnp.asarray(data_tau), jnp.asarray(data_y), jnp.asarray(scales)

        def joint_parts(q, current_):
            nets_, theta_, starts = q
            params_ = params_of(theta_)
            ends = starts + jax.vmap(lambda net_, s: s * _network_end(sub, net_))(nets_, scale_all)
            after = jax.vmap(lambda y: events.reset_state(event_rule, params_, y))(ends) if resets_at.size else ends
            joined = jnp.where(flags[1:, None], after[:-1], ends[:-1])  # what window n + 1 starts from
            gap = jnp.concatenate([jnp.where(hidden, starts[0] - first_state(theta_), 0.0)[None],
                                   starts[1:] - joined]) / scale_all

            def one(net_, t0, length, y0, scale, d_tau, d_y):
                window = sub.window(params_, current_, t0, length, y0, d_tau, d_y)._replace(scale=scale)
                total = sub.loss(net_, params_, current_, window, tau)
                data_part = sub.data_loss(net_, window)
                return total, total - data_weight * data_part, data_part

            totals, residuals_, datas_ = jax.vmap(one)(nets_, t0s, lengths, starts, scale_all, d_tau_all, d_y_all)
            continuity = jnp.sum(gap**2, axis=1)
            return totals + continuity, residuals_, datas_, continuity

        share = lengths / jnp.sum(lengths) if length_weighted else jnp.full((count,), 1.0 / count)

        def joint_loss(q, points):  # each window's loss by its share of the recording: the loss is a time mean
            return jnp.sum(share * joint_parts(q, current)[0])

        q = (stacked, theta, jnp.asarray(np.stack(window_starts)))
        done = 0
        if theta_steps:  # θ alone on the marched networks: few variables, L-BFGS converges in tens of steps
            solve_theta = jax.jit(lambda q: train(lambda t, points: joint_loss((q[0], t, q[2]), points), q[1], 0,
                                                  theta_steps, learning_rate, tau))
            theta_alone, final, _ = solve_theta(q)
            q = (q[0], theta_alone, q[2])
            done += theta_steps
            evaluations += theta_steps
            values = _values(params_of, q[1], names)
            history.append({"phase": "parameters", "iteration": count - 1 + done, "loss": float(final),
                            "values": values})
            if progress is not None:
                progress(count - 1 + done, float(final))
        chunks = _chunks(joint_steps, 50)
        runners = {}
        for adam, lbfgs in chunks:
            key = (adam, lbfgs)
            if key not in runners:
                runners[key] = jax.jit(lambda q, a=adam, b=lbfgs: train(joint_loss, q, a, b, learning_rate, tau))
            q, final, _ = runners[key](q)
            done += adam + lbfgs
            evaluations += adam + lbfgs
            values = _values(params_of, q[1], names)
            history.append({"phase": "joint", "iteration": count - 1 + done, "loss": float(final),
                            "values": values})
            if progress is not None:
                progress(count - 1 + done, float(final))
        totals, residuals, datas, gaps = (np.asarray(x) for x in jax.jit(joint_parts)(q, current))
        theta = q[1]
    else:
        gaps = np.zeros(count)
        residuals = np.array([h["residual"] for h in history])
        datas = np.array([h["data"] for h in history])
    values = _values(params_of, theta, names)
    for w in range(count):
        per_window.append({"t0": float(bounds[w]), "t1": float(bounds[w + 1]), "reset": bool(reset_flags[w]),
                           "residual": float(residuals[w]), "data": float(datas[w]), "continuity": float(gaps[w]),
                           "march_values": march_values[w]})
    edge = [name for i, name in enumerate(names)
            if min(values[name] - low[i], high[i] - values[name]) < 1e-3 * (high[i] - low[i])]
    if edge:
        notes.append(f"at a bound: {', '.join(edge)}")
    worst = int(np.argmax(residuals))
    notes.append(f"{count} windows; largest residual loss {residuals[worst]:.3g} in window {worst} "
                 f"[{bounds[worst]:g}, {bounds[worst + 1]:g}] ms; data loss median {np.median(datas):.3g}")
    return dict(values=values, history=history, evaluations=int(evaluations), notes=notes, windows=per_window,
                march_values=march_values[-1] if march_values else values,
                times={"march_s": march_time, "total_s": time.perf_counter() - began})


def _network_end(sub, net):
    return apply_network(net, jnp.asarray(1.0), sub.activation, sub.fourier)


def _values(params_of, theta, names):
    p = params_of(theta)
    return {name: float(p[name]) for name in names}


def _logit(values, low, high):
    fraction = np.clip((values - low) / (high - low), 1e-9, 1 - 1e-9)
    return np.log(fraction / (1.0 - fraction))


def _chunks(steps, size):
    adam, lbfgs = steps
    out = [(size, 0)] * (adam // size) + ([(adam % size, 0)] if adam % size else [])
    out += [(0, size)] * (lbfgs // size) + ([(0, lbfgs % size)] if lbfgs % size else [])
    return out


def _windows(times, data, windows, resets_at, level):
    """Window boundaries (sorted, first sample … last sample) and, per window, whether it starts with a reset."""
    t_first, t_last = float(times[0]), float(times[-1])
    hard = np.concatenate([[t_first], resets_at, [t_last]])

    def cut(a, b, longest):
        pieces = 1 if not math.isfinite(longest) else max(1, math.ceil((b - a) / longest - 1e-9))
        return list(a + (b - a) * np.arange(1, pieces + 1) / pieces)

    if windows is None:
        windows = {}
    if isinstance(windows, dict):
        unknown = set(windows) - {"short", "long", "before", "after", "level"}
        if unknown:
            raise NeurospikeError(f"windows {sorted(unknown)}: use short, long, before, after, level")
        short, longest = float(windows.get("short", 0.5)), float(windows.get("long", 4.0))
        before, after = float(windows.get("before", 2.0)), float(windows.get("after", 3.0))
        level = float(windows.get("level", level))
        if not (short > 0 and longest > 0 and before >= 0 and after >= 0):
            raise NeurospikeError(f"windows={windows!r}: short, long > 0 ms and before, after >= 0 ms")
        up = times[np.flatnonzero((data[:-1] < level) & (data[1:] >= level)) + 1]
        # a noisy trace crosses the level more than once per spike: a crossing within `after` ms of the one
        # before is the same spike (σ = 1 mV on HH's downstroke gave a second one 1.2 ms later, and short windows
        # on the slow afterhyperpolarisation, whose noisy slopes set g_L to +20 %)
        spikes_seen = [mark for i, mark in enumerate(up) if i == 0 or mark - up[i - 1] > after]
        marks = np.unique(np.concatenate([spikes_seen, resets_at]))
        spans = []  # the short-window spans around each spike, merged where they overlap
        for mark in marks:
            a, b = max(t_first, mark - before), min(t_last, mark + after)
            if spans and a <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], b)
            else:
                spans.append([a, b])
        edges, position = [t_first], t_first
        for a, b in spans:
            if a > position:
                edges += cut(position, a, longest)
            edges += cut(max(a, position), b, short)
            position = b
        if position < t_last:
            edges += cut(position, t_last, longest)
        bounds = np.unique(np.concatenate([edges, hard]))
    elif np.ndim(windows) == 0:
        longest = float(windows)
        if not longest > 0:
            raise NeurospikeError(f"windows={windows!r}: a positive length (ms)")
        bounds = [t_first]
        for a, b in zip(hard[:-1], hard[1:]):
            bounds.extend(cut(a, b, longest))
        bounds = np.asarray(bounds)
    else:
        inner = np.asarray(windows, dtype=float)
        bounds = np.unique(np.concatenate([hard, inner[(inner > t_first) & (inner < t_last)]]))
    bounds = bounds[np.concatenate([[True], np.diff(bounds) > 1e-9 * (t_last - t_first)])]
    return bounds, np.isin(bounds[:-1], resets_at)

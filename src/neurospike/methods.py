"""Every integration method as one object in one registry: ``methods.get("rk4")``, ``methods.METHODS``.

A :class:`Method` says what it is (name, family, order, one-line description) and what it supports
(populations, fractional orders, the events modes it honours, a model property it needs, whether it trains or
runs in the live app), and has ``check(problem)`` (refuse what it cannot do, with one line) and
``solve(problem) -> Trajectory``. :func:`neurospike.simulate` is ``resolve`` → ``check`` → ``solve`` →
``save_at``. As in ``scipy.integrate.solve_ivp``'s ``METHODS`` dict of ``OdeSolver`` classes and diffrax's
``AbstractSolver``, adding a method is one new object here (or in the file of its family) plus its tests: the
CLI, ``compare``, the live app and the README's method table read this registry.

Families: ``fixed-step`` (one-step schemes of :mod:`neurospike.solvers.methods` run by the one fixed-step loop,
one neuron or a population), ``reference`` (scipy DOP853 with exact events), ``fractional`` (Caputo L1,
fast L1, PECE), ``pinn`` and ``fractional-pinn`` (physics-informed networks, imported only when one runs).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import models as model_registry
from .compiled import COMPILER_OPTIONS, run_compiled
from .errors import MemoryLimitError, NeurospikeError, SimulationError, closest
from .solvers import events, fixed_step, fractional, pece, population, reference
from .solvers.methods import BackwardEuler, ExplicitRungeKutta, ExponentialEuler, SequentialEuler, Strang
from .solvers.tableaux import EULER, HEUN, MIDPOINT, RK4
from .trajectory import Trajectory, insert_points, merge_spikes

EVENTS_MODES = ("located", "step")


@dataclass(frozen=True, kw_only=True)
class Method:
    """What every method has: identity, capabilities, ``check`` and ``solve``.

    ``order`` is the convergence order as printed (``"4"``, ``"2 − α"``, ``"adaptive"``, ``"—"``);
    ``populations``: it integrates N neurons at once when a parameter, initial state or input is an array;
    ``fractional``: it integrates Caputo fractional-order models (and only those: it needs ``alpha``);
    ``trains``: a physics-informed network (takes PINN options and a checkpoint); ``live``: offered by the app;
    ``needs``: the name of a :class:`~neurospike.models.Model` property that must be true (``strang``:
    ``conditionally_linear``)."""

    name: str
    family: str
    order: str
    description: str
    populations: bool = False
    fractional: bool = False
    trains: bool = False
    live: bool = False
    needs: str | None = None

    def check(self, problem) -> None:
        """Refuse a problem this method cannot solve (one-line :class:`NeurospikeError`)."""
        if problem.orders is None and self.fractional:
            raise NeurospikeError(f"method {self.name!r} integrates a fractional-order model: give alpha "
                                  f"(--alpha 0.8, or per state --alpha v=0.8)")
        if problem.orders is not None and not self.fractional:
            raise NeurospikeError(f"alpha={problem.alpha!r} makes the model fractional: use a fractional method "
                                  f"({', '.join(names(fractional=True))}), not {self.name!r}")
        if not self.trains and (problem.options is not None or problem.checkpoint is not None):
            raise NeurospikeError(f"PINN options and checkpoints go with a PINN method "
                                  f"({', '.join(names(trains=True))}), not {self.name!r}")
        if problem.precision != "float64" and not (isinstance(self, FixedStep) and problem.n_neurons is not None):
            raise NeurospikeError(f"precision={problem.precision!r} is for populations of fixed-step methods; "
                                  f"{self.name!r} {'' if problem.n_neurons else 'on one neuron '}computes in float64")
        if problem.n_neurons is not None and not self.populations:
            verb = "trains on" if self.trains else "integrates"
            raise NeurospikeError(f"method {self.name!r} {verb} one neuron; give scalar parameters")
        if self.needs is not None and not getattr(problem.model, self.needs):
            having = [m for m in model_registry.REGISTRY.values() if getattr(m, self.needs)]
            raise NeurospikeError(f"method {self.name!r} needs a {self.needs.replace('_', ' ')} model "
                                  f"({', '.join(m.name for m in having)}); {problem.model.name!r} is not")

    def samples(self, problem) -> bool:
        """Whether ``solve`` returns the run already sampled at ``problem.save_at`` (else ``simulate`` samples it
        by the dense output)."""
        return False

    def solve(self, problem) -> Trajectory:
        raise NotImplementedError


# --- fixed step ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class FixedStep(Method):
    """A one-step scheme (``scheme.step(field, t, y, h)``) run by the one fixed-step loop
    (:func:`neurospike.solvers.fixed_step.run`, or :func:`neurospike.solvers.population.run` for N neurons)."""

    scheme: Any = None
    family: str = "fixed-step"
    populations: bool = True

    @property
    def interpolation(self) -> str:
        return self.scheme.interpolation

    @property
    def input_at_step_start(self) -> bool:
        return getattr(self.scheme, "input_at_step_start", False)

    def samples(self, problem) -> bool:
        return problem.save_at is not None and problem.n_neurons is None

    def solve(self, problem) -> Trajectory:
        if problem.n_neurons is not None:
            return _population(self, problem)
        if self.samples(problem):
            return _streamed(self, problem)
        return _one_neuron(self, problem)


def fixed_step_method(scheme, description, order=None, live=False, needs=None) -> FixedStep:
    """The fixed-step method of a one-step ``scheme`` (its order, as printed, from the scheme unless given)."""
    return FixedStep(name=scheme.name, order=str(scheme.order) if order is None else order, description=description,
                     scheme=scheme, live=live, needs=needs)


def run_loop(loop, config, args, *static):
    """Run ``loop(config, *args, *static)`` compiled once per (config, static, argument shapes); with the
    compile and run times (the loop's outputs, then the two times)."""
    outputs, compile_time, run_time = run_compiled(lambda *a: loop(config, *a, *static), (loop, config, static),
                                                   args, COMPILER_OPTIONS)
    return (*outputs, compile_time, run_time)


def _breaks(method: FixedStep, current):
    """Input discontinuities that become grid nodes (none for a method that reads the input at step starts)."""
    return np.zeros(0) if method.input_at_step_start else current.discontinuities()


def memory_check(estimate, memory_limit, detail, advice="use a larger dt, a shorter t_end or --save-at"):
    if estimate > memory_limit:
        raise MemoryLimitError(f"about {estimate / 2**30:.1f} GiB (limit {memory_limit / 2**30:.1f} GiB): {detail}",
                               advice)


def _grid(problem, breaks):
    """The step nodes, refused before they are built when the grid alone would not fit (~32 bytes a node)."""
    t0, t_end, dt = problem.t0, problem.t_end, problem.dt
    count = int(math.floor((t_end - t0) / dt + 1e-9)) + len(breaks) + 2
    memory_check(32.0 * count, problem.memory_limit, f"{count - 1} steps",
                 "use a larger dt or a shorter t_end (a population's step grid is built whole; --save-at does not "
                 "shorten it)")
    return fixed_step.StepGrid(t0, t_end, dt, breaks).nodes()


def status_message(model, method, code, halt_time, max_rate, last_state=None):
    """(status, message) of a run halted with ``code`` at ``halt_time``."""
    if code == fixed_step.RATE_EXCEEDED:
        return "rate-exceeded", (
            f"{model.name}/{method}: spiking faster than max_rate={max_rate:g} Hz at t={halt_time:.6g} ms "
            f"(runaway resets); stopped there, results kept up to that time")
    state = "" if last_state is None else " (last finite state " + ", ".join(
        f"{n}={x:.6g}" for n, x in zip(model.states, last_state)) + ")"
    advice = "a smaller dt" + ("" if method in ("backward-euler", "reference") else
                                " or an implicit method (backward-euler)")
    return "non-finite", (f"{model.name}/{method}: the state became non-finite at t={halt_time:.6g} ms{state}; "
                          f"use {advice}")


def _one_neuron(method: FixedStep, problem) -> Trajectory:
    """One neuron over the whole grid: every node's state, the spikes with their states before and after the
    reset, refractory holds, and the method's dense output."""
    model, values, current, dt = problem.model, problem.params, problem.current, problem.dt
    grid = fixed_step.StepGrid(problem.t0, problem.t_end, dt, _breaks(method, current))
    n_steps, n, capacity = len(grid) - 1, model.n_states, _spike_capacity(problem)
    n_blocks = -(-n_steps // fixed_step.BLOCK)
    memory_check(max(32.0 * len(grid), 8 * 3 * (len(grid) * n + n_blocks * capacity * (1 + 2 * n))),
                 problem.memory_limit, f"{n_steps} steps x {n} states")
    segment = next(_segments(method, problem, grid, n_steps))
    nodes, trace, (spike_times, before, after) = segment.nodes, segment.trace(), segment.spikes
    t, y = merge_spikes(nodes, trace, spike_times, before, after)
    holds = refractory_holds(model.spike, values, spike_times, after, nodes[-1])
    t, y = insert_points(t, y, holds[1], holds[2])
    return Trajectory(
        t=t, states={s: y[:, i] for i, s in enumerate(model.states)}, spikes=spike_times, model=model.name,
        method=method.name, params=values, dt=dt, events=problem.events,
        state_units=dict(zip(model.states, model.state_units)), spike_states_before=before,
        spike_states_after=after, compile_time_s=segment.compile_time, run_time_s=segment.run_time,
        status=segment.status, message=segment.message,
        dense=step_interpolant(model, method, values, current, t, y, holds))


def _spike_capacity(problem) -> int:
    """Spikes one block of ``fixed_step.BLOCK`` steps may hold at ``max_rate`` (0 for a model without spikes)."""
    if problem.model.spike is None:
        return 0
    return int(math.ceil(fixed_step.BLOCK * problem.dt * problem.max_rate / 1000.0)) + 2


@dataclass
class _Segment:
    """What one call of the fixed-step loop gave: its ``nodes`` (up to the halt of a halted run), its spikes
    (times, states before and after) and status; ``trace()`` copies out the state at every node."""

    nodes: np.ndarray
    trace: Any
    spikes: tuple
    status: str
    message: str
    final: bool
    compile_time: float
    run_time: float


def _segments(method: FixedStep, problem, grid: fixed_step.StepGrid, segment: int):
    """Run one neuron over ``grid`` in calls of ``segment`` steps (the last padded with zero-length steps, so
    every call has one compiled form), each continuing the last (state, refractory end, last spike time): the
    same steps, blocks and results as one call over the whole grid when ``segment`` is a multiple of
    ``fixed_step.BLOCK``. Yields a :class:`_Segment` per call, up to the end or a halt; raises
    :class:`SimulationError` where the state turns non-finite."""
    model, n_steps, capacity = problem.model, len(grid) - 1, _spike_capacity(problem)
    config = fixed_step.LoopConfig.for_model(model, method.scheme, problem.events, capacity)
    params = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in problem.params.items()}
    min_interval = jnp.asarray(problem.min_interval)
    y = np.asarray(problem.y0, dtype=float)
    carried = {"refractory_end": np.float64(-np.inf), "last": np.float64(-np.inf)}
    for first in range(0, n_steps, segment):
        stop = min(first + segment, n_steps)
        nodes = grid.nodes(first, stop + 1)
        padded = nodes if stop - first == segment else np.concatenate([nodes, np.full(first + segment - stop,
                                                                                      nodes[-1])])
        args = (params, problem.current, jnp.asarray(y), jnp.asarray(padded), min_interval, carried)
        steps, spikes, counts, end, compile_time, run_time = run_loop(fixed_step.run, config, args)
        code, halt_time = int(end["halt_code"]), float(end["halt_time"])
        counts = np.minimum(np.asarray(counts), capacity)
        taken = np.arange(spikes[0].shape[1])[None, :] < counts[:, None]
        spikes = tuple(np.asarray(buffer)[taken] for buffer in spikes)

        def trace(y=y, steps=steps, rows=stop - first):
            return np.concatenate([y[None], np.asarray(steps)[:rows]])

        if code == fixed_step.NON_FINITE:
            last = trace()[np.searchsorted(nodes, halt_time, side="right") - 1]
            raise SimulationError(status_message(model, method.name, code, halt_time, problem.max_rate, last)[1])
        status, message = "success", ""
        if code != fixed_step.OK:
            status, message = status_message(model, method.name, code, halt_time, problem.max_rate)
            inside = nodes <= halt_time
            nodes, halted_trace = nodes[inside], trace()[inside]
            spikes = tuple(part[spikes[0] <= halt_time] for part in spikes)
            trace = lambda: halted_trace  # noqa: E731
        final = stop == n_steps or code != fixed_step.OK
        yield _Segment(nodes, trace, spikes, status, message, final, compile_time, run_time)
        if final:
            return
        y = np.asarray(steps[stop - first - 1])
        carried = {"refractory_end": np.float64(end["refractory_end"]), "last": np.float64(end["last"])}


SEGMENT_STEPS = 2**17  # steps per compiled call of a streamed run (a multiple of fixed_step.BLOCK): ~5 MB a segment


def _streamed(method: FixedStep, problem) -> Trajectory:
    """One neuron with ``save_at``: the run in segments of ``SEGMENT_STEPS`` steps (:func:`_segments`), each
    segment's nodes made when it runs (:class:`~neurospike.solvers.fixed_step.StepGrid`) and its trace dropped
    once the save_at times inside it are evaluated, so memory holds one segment, the saved states and the
    spikes. The states at save_at (the same dense output) and the spikes equal :func:`_one_neuron`'s sampled at
    save_at to the last bit; ``progress(t, nan)`` after each segment."""
    model, n = problem.model, problem.model.n_states
    grid = fixed_step.StepGrid(problem.t0, problem.t_end, problem.dt, _breaks(method, problem.current))
    n_steps, capacity, save_at = len(grid) - 1, _spike_capacity(problem), problem.save_at
    segment = min(SEGMENT_STEPS, -(-n_steps // fixed_step.BLOCK) * fixed_step.BLOCK)
    most_spikes = int(math.ceil((problem.t_end - problem.t0) * problem.max_rate / 1000.0)) + 2 if capacity else 0
    segment_bytes = 8 * 3 * ((segment + 1) * (1 + n)
                             + segment // fixed_step.BLOCK * (capacity + fixed_step.MAX_EVENTS_PER_STEP) * (1 + 2 * n))
    memory_check(segment_bytes + 8 * 2 * (len(save_at) * (1 + n) + most_spikes * (1 + 2 * n)), problem.memory_limit,
                 f"{len(save_at)} saved times x {n} states and up to {most_spikes} spikes (max_rate)",
                 advice="save fewer times or lower max_rate")
    saved, kept = np.full((len(save_at), n), np.nan), np.ones(len(save_at), dtype=bool)
    spikes, compile_time, run_time = [(np.zeros(0), np.zeros((0, n)), np.zeros((0, n)))], 0.0, 0.0
    for part in _segments(method, problem, grid, segment):
        compile_time, run_time = compile_time + part.compile_time, run_time + part.run_time
        nodes, times = part.nodes, part.spikes[0]
        spikes.append(part.spikes)
        if part.status != "success":  # the times the run reached
            kept = save_at <= max(nodes[-1], times[-1] if len(times) else -np.inf)
        here = kept & (save_at >= nodes[0]) & ((save_at < nodes[-1]) | part.final)
        if np.any(here):
            so_far = [np.concatenate(column) for column in zip(*spikes)]
            saved[here] = _sample(method, problem, part, so_far[0], so_far[2], save_at[here])
        if problem.progress is not None:
            problem.progress(float(nodes[-1]), float("nan"))
    spike_times, before, after = (np.concatenate(column) for column in zip(*spikes))
    return Trajectory(
        t=save_at[kept], states={s: saved[kept, i] for i, s in enumerate(model.states)}, spikes=spike_times,
        model=model.name, method=method.name, params=problem.params, dt=problem.dt, events=problem.events,
        state_units=dict(zip(model.states, model.state_units)), spike_states_before=before,
        spike_states_after=after, compile_time_s=compile_time, run_time_s=run_time, status=part.status,
        message=part.message)


def _sample(method: FixedStep, problem, segment: _Segment, spike_times, after, times):
    """The dense output at ``times`` of one ``segment``, as :func:`_one_neuron`'s over the whole run: the
    segment's trace points are the whole run's from its first node to its last (a refractory hold ending there
    belongs to the next segment, unless this one is final); ``spike_times``/``after``: every spike so far,
    whose refractory holds may reach into it."""
    nodes = segment.nodes
    t, y = merge_spikes(nodes, segment.trace(), *segment.spikes)
    starts, ends, held = refractory_holds(problem.model.spike, problem.params, spike_times, after, nodes[-1])
    inside = (ends >= nodes[0]) & ((ends < nodes[-1]) | segment.final)
    t, y = insert_points(t, y, ends[inside], held[inside])
    reaching = (starts < times.max()) & (ends > times.min())
    holds = starts[reaching], ends[reaching], held[reaching]
    return step_interpolant(problem.model, method, problem.params, problem.current, t, y, holds)(times)


def recorded_spike_capacity(problem) -> int:
    """How many (time, neuron) pairs a population run records: ``max_recorded_spikes``, by default room for
    100 Hz per neuron plus 1000 (0 for a model without spikes); the counts are exact either way."""
    if problem.max_recorded_spikes is not None:
        return problem.max_recorded_spikes
    if problem.model.spike is None:
        return 0
    return int(math.ceil(problem.n_neurons * (problem.t_end - problem.t0) * 100.0 / 1000.0)) + 1000


def _population(method: FixedStep, problem) -> Trajectory:
    """N neurons at once (see :mod:`neurospike.solvers.population`): states recorded at every node, or only at
    ``save_at`` (inserted into the grid as nodes, so exact), spike counts and (time, neuron) pairs."""
    model, values, current, size = problem.model, problem.params, problem.current, problem.n_neurons
    save_at = problem.save_at
    breaks = np.concatenate([_breaks(method, current), [] if save_at is None else save_at])
    nodes = _grid(problem, breaks)
    if save_at is None:
        record_index = np.arange(len(nodes))
    else:
        wanted = np.searchsorted(nodes, save_at - 1e-9 * problem.dt)
        record_index = np.unique(np.concatenate([[0, len(nodes) - 1], wanted]))
    rule = model.spike
    max_recorded_spikes = recorded_spike_capacity(problem)
    memory_check(8 * (len(record_index) * model.n_states * size * 2 + 2 * max_recorded_spikes + 8 * size),
                 problem.memory_limit, f"{len(record_index)} recorded times x {size} neurons x {model.n_states} states")
    config = fixed_step.LoopConfig.for_model(model, method.scheme, problem.events)
    dtype = jnp.dtype(problem.precision)
    params = {k: jnp.asarray(v, dtype=dtype) for k, v in values.items()}
    y0 = jnp.stack([jnp.broadcast_to(jnp.asarray(problem.initial[s], dtype=dtype), (size,))
                    for s in model.states])
    if dtype != jnp.float64:  # the input's arrays too, so nothing promotes the loop back to float64
        current = jax.tree_util.tree_map(
            lambda leaf: np.asarray(leaf, dtype) if np.ndim(leaf) and np.asarray(leaf).dtype.kind == "f" else leaf,
            current)
    block = min(population.NEURON_BLOCK, size)
    capacity = int(math.ceil(max_recorded_spikes * block / size)) + population.EVENT_BATCH if max_recorded_spikes else 0
    # a spike at most once per step (at step ends) with events="step": the interval guard is needed only when
    # it is longer than the shortest step
    rate_guard = problem.events == "located" or problem.min_interval > np.min(np.diff(nodes)) * (1 + 1e-9)
    args = (params, current, y0, jnp.asarray(nodes, dtype=dtype), jnp.asarray(record_index, dtype=jnp.int32),
            jnp.asarray(problem.min_interval, dtype=dtype))
    saved, counts, (times, neurons, recorded), stopped, compile_time, run_time = run_loop(
        population.run, config, args, capacity, bool(rate_guard))
    t = nodes[record_index]
    saved, stopped, counts = np.array(saved), np.asarray(stopped), np.asarray(counts)
    taken = np.arange(capacity)[None, :] < np.minimum(np.asarray(recorded), capacity)[:, None]
    times, neurons = np.asarray(times)[taken], np.asarray(neurons)[taken]
    times, neurons = times[neurons < size], neurons[neurons < size]  # the padding of the last block
    order = np.lexsort((neurons, times))
    times, neurons = times[order], neurons[order]
    broken = np.flatnonzero(~np.all(np.isfinite(saved), axis=(0, 1)) & np.isnan(stopped))
    if broken.size:
        _explain_non_finite(method, problem, broken, t, saved)
    status, messages = "success", []
    halted = np.flatnonzero(~np.isnan(stopped))
    if halted.size:
        status = "rate-exceeded"
        where = ", ".join(f"neuron {i} at t={stopped[i]:.6g} ms" for i in halted[:3])
        messages.append(f"{model.name}/{method.name}: {halted.size} neuron(s) spiking faster than "
                        f"max_rate={problem.max_rate:g} Hz or more than {events.MAX_EVENTS_PER_STEP} times in one step "
                        f"({where}); each was stopped there (NaN afterwards), the others ran to the end")
        saved[:, :, halted] = np.where(t[:, None, None] > stopped[halted][None, None, :], np.nan, saved[:, :, halted])
    total = int(np.sum(counts))
    if len(times) < total:
        messages.append(f"spike times recorded for {len(times)} of {total} spikes (max_recorded_spikes); "
                        f"counts are exact")
    return Trajectory(
        t=t, states={s: saved[:, i, :] for i, s in enumerate(model.states)}, spikes=times, model=model.name,
        method=method.name, params=values, dt=problem.dt, events=problem.events,
        state_units=dict(zip(model.states, model.state_units)), compile_time_s=compile_time, run_time_s=run_time,
        status=status, message="; ".join(messages), spike_neurons=neurons, spike_counts=counts)


def _explain_non_finite(method: FixedStep, problem, broken, t, saved):
    """Raise for the first neuron whose state turned non-finite, with the time and last finite state that the
    one-neuron loop (re-run for that neuron alone) reports."""
    i = int(broken[0])
    prefix = f"{broken.size} neuron(s) turned non-finite; the first, neuron {i}: "
    try:
        _one_neuron(method, problem.neuron(i))
    except SimulationError as error:
        raise SimulationError(prefix + str(error)) from None
    first = t[np.argmax(~np.all(np.isfinite(saved[:, :, i]), axis=1))]
    raise SimulationError(f"{prefix}{problem.model.name}/{method.name}: non-finite by t={first:.6g} ms; use a "
                          f"smaller dt or an implicit method (backward-euler)")


def refractory_holds(rule, values, spike_times, after, t_end):
    """(start, end, held state) of each refractory period: the state stays at its post-reset value."""
    period = float(values[rule.refractory]) if rule and rule.refractory else 0.0
    if period <= 0 or len(spike_times) == 0:
        return np.zeros(0), np.zeros(0), np.zeros((0, np.shape(after)[-1]))
    return spike_times, np.minimum(spike_times + period, t_end), after


def step_interpolant(model, method: FixedStep, values, current, t, y, holds=None):
    """Dense output of a fixed-step run: on each interval between trace points, the method's interpolant
    (linear, or cubic Hermite with f evaluated on the interval's own input piece); inside a refractory
    ``hold`` (start, end, state) the held state."""
    hermite = method.interpolation == "hermite"

    def slope(time, state, t_ref):
        return np.stack(model.derivatives(time, tuple(state.T), values, current(time, t_ref, np), np), -1)

    def evaluate(times):
        index = np.clip(np.searchsorted(t, times, side="right") - 1, 0, len(t) - 2)
        t_a, t_b = t[index], t[index + 1]
        width = t_b - t_a
        theta = np.where(width > 0, (times - t_a) / np.where(width > 0, width, 1.0), 1.0)
        y_a, y_b = y[index], y[index + 1]
        if hermite:
            t_ref = 0.5 * (t_a + t_b)
            f_a, f_b = slope(t_a, y_a, t_ref), slope(t_b, y_b, t_ref)
            values_at = events.hermite(theta[:, None], y_a, f_a, y_b, f_b, width[:, None])
        else:
            values_at = y_a + theta[:, None] * (y_b - y_a)
        for start, end, state in zip(*(holds if holds is not None else ((), (), ()))):
            values_at[(times > start) & (times < end)] = state
        return values_at

    return evaluate


# --- reference ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Reference(Method):
    """scipy's DOP853 at rtol = atol (default 1e-12), stopped at input discontinuities and at located resets
    (:mod:`neurospike.solvers.reference`)."""

    family: str = "reference"

    def check(self, problem) -> None:
        super().check(problem)
        if not (0 < problem.rtol < 1 and 0 < problem.atol < 1):
            raise NeurospikeError(f"rtol={problem.rtol!r} and atol={problem.atol!r} must lie in (0, 1)")

    def solve(self, problem) -> Trajectory:
        model = problem.model
        y0 = np.asarray(problem.y0, dtype=float)
        began = time.perf_counter()
        pieces, (times, before, after), (code, halt_time) = reference.integrate(
            model, problem.params, problem.current, y0, problem.t0, problem.t_end, rtol=problem.rtol,
            atol=problem.atol, min_interval=problem.min_interval,
            max_spikes=int(math.ceil((problem.t_end - problem.t0) * problem.max_rate / 1000.0)) + 2)
        elapsed = time.perf_counter() - began
        if code == fixed_step.NON_FINITE:
            last = pieces[-1][3][-1] if pieces else y0
            raise SimulationError(status_message(model, self.name, code, halt_time, problem.max_rate, last)[1])
        t = np.concatenate([p[2] for p in pieces])
        y = np.concatenate([p[3] for p in pieces])
        status, message = ("success", "") if code == fixed_step.OK else status_message(
            model, self.name, code, halt_time, problem.max_rate)
        return Trajectory(
            t=t, states={s: y[:, i] for i, s in enumerate(model.states)}, spikes=times, model=model.name,
            method=self.name, params=problem.params, dt=None, events="located",
            state_units=dict(zip(model.states, model.state_units)), spike_states_before=before,
            spike_states_after=after, compile_time_s=0.0, run_time_s=elapsed, status=status, message=message,
            dense=reference.dense_output(pieces))


# --- fractional ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Fractional(Method):
    """A Caputo fractional-order scheme on the uniform grid t0 + k·dt: the L1 scheme (``implicit`` or explicit;
    ``history`` "direct" O(N²) or "soe" sum of exponentials, :mod:`neurospike.solvers.fractional`) or the
    Adams–Bashforth–Moulton predictor–corrector (``history`` "fft", :mod:`neurospike.solvers.pece`)."""

    family: str = "fractional"
    fractional: bool = True
    implicit: bool = True
    history: str = "direct"

    def solve(self, problem) -> Trajectory:
        model, dt, t0 = problem.model, problem.dt, problem.t0
        n_steps = int(math.floor((problem.t_end - t0) / dt + 1e-9))
        if n_steps < 1:
            raise NeurospikeError(f"dt={dt:g} is longer than the run [{t0:g}, {problem.t_end:g}] ms")
        if problem.n_neurons is not None:
            return self._population(problem, n_steps)
        # the trace, plus the increments of every step and their weights (direct L1) or the FFT accumulators (pece)
        per_step = 8.0 * model.n_states * {"soe": 2, "direct": 4, "fft": 6}[self.history]
        if per_step * (n_steps + 1) > problem.memory_limit:
            hint = "; fast-l1 keeps no per-step history" if self.history == "direct" else ""
            memory_check(per_step * (n_steps + 1), problem.memory_limit,
                         f"{n_steps} steps x {model.n_states} states for {self.name}{hint}")
        y0 = np.asarray(problem.y0, dtype=float)
        if self.history == "fft":
            out = pece.run_pece(model, problem.params, problem.current, y0, problem.orders, t0, dt, n_steps,
                                events=problem.events)
        else:
            out = fractional.run_l1(model, problem.params, problem.current, y0, problem.orders, t0, dt, n_steps,
                                    implicit=self.implicit, events=problem.events, history=self.history)
        if out["status"] != "success":
            raise SimulationError(f"{model.name}/{self.name}: the state became non-finite at "
                                  f"t={out['halt_time']:.6g} ms; use a smaller dt or the implicit l1")
        t, y = merge_spikes(out["t"], out["y"], out["spike_times"], out["before"], out["after"])
        return Trajectory(
            t=t, states={s: y[:, i] for i, s in enumerate(model.states)}, spikes=out["spike_times"],
            model=model.name, method=self.name, params=problem.params, dt=dt, events=problem.events,
            state_units=dict(zip(model.states, model.state_units)), spike_states_before=out["before"],
            spike_states_after=out["after"], compile_time_s=out["compile_time_s"], run_time_s=out["run_time_s"],
            alpha=dict(zip(model.states, problem.orders.tolist())))

    def _population(self, problem, n_steps) -> Trajectory:
        """N neurons at once (:func:`neurospike.solvers.fractional.run_l1_population`): the states at every node
        t0 + k·dt, or with ``save_at`` at only those times, which must be nodes (the population keeps no spike
        points to interpolate across: a time off the grid is refused); spike counts and (time, neuron) pairs."""
        model, dt, t0, size = problem.model, problem.dt, problem.t0, problem.n_neurons
        if problem.save_at is None:
            record_index = np.arange(n_steps + 1)
        else:
            position = (problem.save_at - t0) / dt
            wanted = np.round(position).astype(int)
            off_grid = (np.abs(position - wanted) > 1e-9 * np.maximum(1.0, np.abs(position))) | (wanted > n_steps)
            if np.any(off_grid):
                raise NeurospikeError(f"save-at time {problem.save_at[off_grid][0]:g} is not a node t0 + k*dt of the "
                                      f"fractional grid (dt={dt:g} ms, last node {t0 + n_steps * dt:g}); a "
                                      f"population records nodes only")
            record_index = np.unique(np.concatenate([[0, n_steps], wanted]))
        capacity = recorded_spike_capacity(problem)
        orders = problem.orders
        # per neuron: the recorded states (and their copy out); the direct history's increments and split-step
        # corrections of every step, and its weights when the orders differ between neurons
        history_rows = {"direct": 2 + (orders.ndim == 2), "soe": 0}[self.history] * (n_steps + 1)
        memory_check(8.0 * (size * model.n_states * (2 * len(record_index) + history_rows) + 2 * capacity),
                     problem.memory_limit, f"{n_steps} steps x {size} neurons x {model.n_states} states for "
                     f"{self.name}" + ("; fast-l1 keeps no per-step history" if self.history == "direct" else ""))
        y0 = np.stack([np.broadcast_to(np.asarray(problem.initial[s], dtype=float), (size,)) for s in model.states])
        out = fractional.run_l1_population(model, problem.params, problem.current, y0, orders, t0, dt, n_steps,
                                           record_index=record_index, spike_capacity=capacity,
                                           implicit=self.implicit, events=problem.events, history=self.history)
        broken = np.flatnonzero(~np.isnan(out["halt_time"]))
        if broken.size:
            i = int(broken[0])
            raise SimulationError(f"{model.name}/{self.name}: {broken.size} neuron(s) turned non-finite; the first, "
                                  f"neuron {i}, at t={out['halt_time'][i]:.6g} ms; use a smaller dt or the implicit l1")
        message = ""
        if len(out["spike_times"]) < out["offered"]:
            message = (f"spike times recorded for {len(out['spike_times'])} of {out['offered']} spikes "
                       f"(max_recorded_spikes); counts are exact")
        y = out["y"]
        return Trajectory(
            t=out["t"], states={s: y[:, i, :] for i, s in enumerate(model.states)}, spikes=out["spike_times"],
            model=model.name, method=self.name, params=problem.params, dt=dt, events=problem.events,
            state_units=dict(zip(model.states, model.state_units)), compile_time_s=out["compile_time_s"],
            run_time_s=out["run_time_s"], message=message, spike_neurons=out["spike_neurons"],
            spike_counts=out["counts"], alpha=dict(zip(model.states, orders.tolist())))


# --- physics-informed networks ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Pinn(Method):
    """A physics-informed network method of :mod:`neurospike.pinn` (imported, with optax, only when one runs).
    ``data``: it also fits a classical solution, which this method computes first (``data_method`` at ``dt``)
    and hands to the trainer."""

    family: str = "pinn"
    order: str = "—"
    trains: bool = True
    data: bool = False

    def solve(self, problem) -> Trajectory:
        from . import pinn

        options = pinn.resolve_options(self.name, problem.options)
        if self.fractional:
            return pinn.run_fractional(problem.model, self.name, problem.params, problem.current, problem.initial,
                                       problem.t0, problem.t_end, problem.dt, problem.orders, options,
                                       problem.progress)
        data = None
        if self.data:
            data_method = get(options.data_method)
            data_problem = dataclasses.replace(problem, options=None, checkpoint=None, save_at=None, progress=None,
                                               events="located")
            data_method.check(data_problem)
            data = pinn.data_points(data_method.solve(data_problem))
        return pinn.run(problem.model, self.name, problem.params, problem.current, problem.initial, problem.t0,
                        problem.t_end, problem.dt, options, problem.progress, problem.checkpoint, data=data)


METHODS: dict[str, Method] = {m.name: m for m in (
    fixed_step_method(ExplicitRungeKutta("euler", EULER), "forward Euler (tableau)", live=True),
    fixed_step_method(ExplicitRungeKutta("rk2", MIDPOINT), "explicit midpoint Runge–Kutta (tableau)", live=True),
    fixed_step_method(ExplicitRungeKutta("heun", HEUN), "Heun / explicit trapezoidal (tableau)"),
    fixed_step_method(ExplicitRungeKutta("rk4", RK4), "classical Runge–Kutta (tableau)", live=True),
    fixed_step_method(SequentialEuler(), "forward Euler updating v first, then u from the new v, input read at the "
                      "step's start: Izhikevich's figure1.m exactly"),
    fixed_step_method(BackwardEuler(), "implicit Euler, Newton on the JAX Jacobian to 1e-12", live=True),
    fixed_step_method(ExponentialEuler(), 'exponential ("ExpRESS") Euler, y + h φ1(hJ) f with the JAX Jacobian',
                      order="1 (2 if autonomous)", live=True),
    fixed_step_method(Strang(), "Strang splitting with exact sub-flows, for conditionally linear models",
                      needs="conditionally_linear"),
    Reference(name="reference", order="adaptive",
              description="scipy DOP853, rtol = atol = 1e-12, stops at input discontinuities and located resets"),
    Fractional(name="l1", order="2 − α", description="Caputo L1 scheme, implicit (Newton on the JAX Jacobian), "
               "full O(N²) memory", populations=True),
    Fractional(name="l1-explicit", order="1", description="Caputo L1 scheme, explicit, full O(N²) memory",
               implicit=False, populations=True),
    Fractional(name="fast-l1", order="2 − α", description="implicit L1 scheme with the memory as a sum of "
               "exponentials, O(N_exp) per step", history="soe", live=True, populations=True),
    Fractional(name="pece", order="1 + α", description="fractional Adams–Bashforth–Moulton predictor–corrector, "
               "history by blocked FFT", implicit=False, history="fft"),
    Pinn(name="pinn", description="one neural network over the whole run (residual loss)"),
    Pinn(name="pinn-data", description="one network over the whole run, residual plus data from a classical run",
         data=True),
    Pinn(name="pinn-marching", description="networks on windows, warm-started; reset at the window end"),
    Pinn(name="pinn-reset", description="networks on windows, warm-started; reset at the located crossing"),
    Pinn(name="splitting-pinn", order="1 / 2 (splitting)", description="Lie or Strang operator splitting, each "
         "sub-flow of each window a PINN"),
    Pinn(name="fpinn", family="fractional-pinn", fractional=True, order="as L1", description="fractional PINN: the "
         "L1 derivative of the network's grid values, memory of earlier windows"),
)}


def get(name: str) -> Method:
    """The method called ``name`` (one line naming the closest method when there is none)."""
    if name not in METHODS:
        raise NeurospikeError(f"unknown method {name!r}{closest(name, METHODS)}; methods are {', '.join(METHODS)}")
    return METHODS[name]


def names(**capabilities) -> tuple[str, ...]:
    """The names of the methods whose attributes equal ``capabilities``: ``names(fractional=True)``,
    ``names(family="fixed-step")``, ``names(live=True)``."""
    return tuple(m.name for m in METHODS.values()
                 if all(getattr(m, key) == value for key, value in capabilities.items()))


def markdown_table() -> str:
    """The README's table of methods, made from the registry (a test keeps the README equal to it)."""
    rows = ["| method | family | what it is | order |", "|---|---|---|---|"]
    rows += [f"| `{m.name}` | {m.family} | {m.description} | {m.order} |" for m in METHODS.values()]
    return "\n".join(rows) + "\n"

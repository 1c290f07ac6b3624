"""``simulate(model, method=..., dt=..., t_end=...) -> Trajectory``: the one entry point for every method."""

from __future__ import annotations

import math
import time
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from . import currents as currents_module
from . import models
from . import pinn as pinn_module
from .errors import NeurospikeError, SimulationError, closest
from .solvers import fixed_step, fractional, pece, population, reference
from .pinn import FRACTIONAL_PINN_METHODS, PINN_METHODS
from .solvers.methods import METHODS
from .trajectory import Trajectory

jax.config.update("jax_enable_x64", True)

# name -> (implicit, history): the L1 scheme with the direct O(N²) sum or the weights as a sum of exponentials
# (fast-l1), and the Adams-Bashforth-Moulton predictor-corrector with its history by blocked FFT (pece)
FRACTIONAL_METHODS = {"l1": (True, "direct"), "l1-explicit": (False, "direct"), "fast-l1": (True, "soe"),
                      "pece": (False, "fft")}
METHOD_NAMES = (*METHODS, "reference", *FRACTIONAL_METHODS, *PINN_METHODS)
DEFAULT_MAX_RATE_HZ = 10_000.0
DEFAULT_MEMORY_LIMIT_BYTES = 8 * 2**30
# DOP853 at 1e-10 can be off by ~5e-7 in w (izhikevich2007 rs near 287 ms); 1e-12 costs ~30 % more time.
REFERENCE_TOLERANCE = 1e-12
# Measured on the population loop (docs/benchmarks.md): AVX-512 vectors, and copy insertion that sees through
# loop regions so the loop state is not copied every step (2.8-3.5 -> 2.1-2.2 ns per neuron-step).
COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_prefer_vector_width": 512,
                                    "xla_cpu_copy_insertion_use_region_analysis": True}
_COMPILED: dict[Any, Any] = {}


def resolve(model, preset=None, params=None, current=None, t_end=None, t0=0.0, initial=None):
    """The model, preset, full parameter set, input current, end time and initial state of a run."""
    model = models.get(model)
    chosen = model.preset(preset)
    values = {**model.defaults(), **chosen.params}
    for name, value in (params or {}).items():
        if name not in values:
            raise NeurospikeError(
                f"unknown parameter {name!r} for model {model.name!r}{closest(name, values)}; "
                f"parameters are {', '.join(values)}"
            )
        array = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(array)):
            raise NeurospikeError(f"parameter {name}={value!r} is not finite")
        values[name] = float(array) if array.ndim == 0 else array
    t_end = chosen.t_end if t_end is None else float(t_end)
    if not (math.isfinite(t0) and math.isfinite(t_end)) or t_end <= t0:
        raise NeurospikeError(f"t_end={t_end:g} must be a finite time after t0={t0:g} ms")
    if current is None:
        current = chosen.current if chosen.current is not None else currents_module.constant(0.0)
    elif isinstance(current, str):
        current = currents_module.parse(current, t_end=t_end, t0=t0)
    elif isinstance(current, (int, float, list, tuple, np.ndarray)):
        current = currents_module.constant(current)
    with np.errstate(all="ignore"):  # a non-finite computed state is reported below, by name
        start = dict(zip(model.states, model.initial_state(values, np)))
    if chosen.initial:
        start.update(chosen.initial)
    initial = initial or {}
    for name in initial:
        model.state_index(name)
    start.update(initial)
    for name, value in start.items():
        array = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(array)):
            computed = "" if name in initial else (
                f" (model {model.name!r} computed it from these parameters; give the initial state instead)")
            shown = float(array) if array.ndim == 0 else value
            raise NeurospikeError(f"initial {name}={shown!r} is not finite{computed}")
        start[name] = float(array) if array.ndim == 0 else array
    return model, chosen, values, current, t_end, start


def population_size(values: Mapping[str, Any], start: Mapping[str, Any], current=None) -> int | None:
    """N when some parameter, initial state or the input is given per neuron (arrays of length N), else None."""
    sizes = {np.size(v) for v in (*values.values(), *start.values()) if np.ndim(v) > 0}
    if current is not None and getattr(current, "population_size", lambda: None)() is not None:
        sizes.add(current.population_size())
    if not sizes:
        return None
    if len(sizes) > 1:
        raise NeurospikeError(f"population arrays have different lengths {sorted(sizes)}; use one length N")
    return sizes.pop()


def simulate(model, *, preset: str | None = None, method: str = "rk4", dt: float | None = None,
             t_end: float | None = None, t0: float = 0.0, params: Mapping[str, Any] | None = None,
             current=None, initial: Mapping[str, Any] | None = None, save_at=None, events: str = "located",
             max_rate: float = DEFAULT_MAX_RATE_HZ, rtol: float = REFERENCE_TOLERANCE, atol: float = REFERENCE_TOLERANCE,
             memory_limit: float = DEFAULT_MEMORY_LIMIT_BYTES, max_recorded_spikes: int | None = None,
             alpha=None, pinn=None, progress=None, checkpoint=None) -> Trajectory:
    """Integrate ``model`` (a name or :class:`~neurospike.models.Model`) and return a :class:`Trajectory`.

    ``preset`` picks parameters, initial state, input, ``t_end`` and a usual ``dt``; ``params``/``initial``
    override them (arrays of length N make a population of N independent neurons). ``current`` is a current
    object, a number or a CLI spec such as ``"step:start=101,amplitude=70"``. ``method`` is one of
    ``METHOD_NAMES``; ``events`` is ``"located"`` (spikes located inside the step) or ``"step"`` (reset after
    the step). ``save_at`` returns the trajectory at exactly those times (dense output). A run that spikes
    faster than ``max_rate`` (Hz) stops there with ``status="rate-exceeded"``.

    ``alpha`` makes the model fractional (Caputo derivative of order α ∈ (0, 1]): one number for every state,
    or ``{state: α}`` (the others keep order 1); it needs a fractional method (``l1``, ``l1-explicit``,
    ``fast-l1``, ``pece``).

    PINN methods (``pinn``, ``pinn-data``, ``pinn-marching``, ``pinn-reset``, ``splitting-pinn``; ``fpinn``
    with ``alpha``) take their settings in ``pinn`` (a :class:`neurospike.pinn.PinnOptions` or a mapping such as
    ``{"window": 0.02, "splitting": "lie"}``); ``dt`` is the step of ``pinn-data``'s classical data and
    ``fpinn``'s grid. ``progress(t, loss)`` is called as they train; ``checkpoint`` (an .npz path) saves the
    trained networks (:func:`neurospike.pinn.load_checkpoint`).
    """
    if method not in METHOD_NAMES:
        raise NeurospikeError(f"unknown method {method!r}{closest(method, METHOD_NAMES)}; methods are {', '.join(METHOD_NAMES)}")
    if events not in ("located", "step"):
        raise NeurospikeError(f"events={events!r}: use 'located' or 'step'")
    if not (isinstance(max_rate, (int, float)) and math.isfinite(max_rate) and max_rate > 0):
        raise NeurospikeError(f"max_rate={max_rate!r} must be a positive number of Hz")
    model, chosen, values, current, t_end, start = resolve(model, preset, params, current, t_end, t0, initial)
    if method != "reference":
        dt = chosen.dt if dt is None else dt
        dt = 0.01 if dt is None else float(dt)
        if not math.isfinite(dt) or dt <= 0:
            raise NeurospikeError(f"dt={dt!r} must be a positive finite step (ms)")
    if save_at is not None:
        save_at = np.atleast_1d(np.asarray(save_at, dtype=float))
        outside = save_at[(save_at < t0) | (save_at > t_end) | ~np.isfinite(save_at)]
        if outside.size:
            raise NeurospikeError(f"save-at time {outside[0]:g} is outside the run [{t0:g}, {t_end:g}] ms")
    if method not in PINN_METHODS and (pinn is not None or checkpoint is not None):
        raise NeurospikeError(f"PINN options and checkpoints go with a PINN method ({', '.join(PINN_METHODS)}), "
                              f"not {method!r}")
    method_obj = METHODS.get(method)
    if method == "strang" and not model.conditionally_linear:
        raise NeurospikeError(f"method 'strang' needs a conditionally linear model (lif, hh); {model.name!r} is not")

    n_neurons = population_size(values, start, current)
    min_interval = 1000.0 / max_rate
    orders = fractional_orders(model, method, alpha)
    if orders is not None:
        if n_neurons is not None:
            raise NeurospikeError(f"method {method!r} integrates one neuron; give scalar parameters")
        if method in FRACTIONAL_PINN_METHODS:
            trajectory = pinn_module.run_fractional(model, method, values, current, start, t0, t_end, dt, orders,
                                                    pinn, progress)
        else:
            trajectory = _fractional(model, method, values, current, start, t0, t_end, dt, events, orders,
                                     memory_limit)
    elif method in PINN_METHODS:
        if n_neurons is not None:
            raise NeurospikeError(f"method {method!r} trains on one neuron; give scalar parameters")
        trajectory = pinn_module.run(model, method, values, current, start, t0, t_end, dt, pinn, progress, checkpoint)
    elif method == "reference":
        if n_neurons is not None:
            raise NeurospikeError("method 'reference' integrates one neuron; give scalar parameters")
        trajectory = _reference(model, values, current, start, t0, t_end, rtol, atol, min_interval, max_rate)
    else:
        trajectory = _fixed_step(model, method_obj, values, current, start, t0, t_end, dt, events, min_interval,
                                 max_rate, n_neurons, memory_limit, save_at, max_recorded_spikes)
    trajectory.preset = chosen.name
    trajectory.method = method
    if save_at is not None:
        if trajectory.status != "success":  # stopped early: the times it reached
            save_at = save_at[save_at <= trajectory.t[-1]]
        trajectory = trajectory.at(save_at)
    return trajectory


def fractional_orders(model, method, alpha):
    """The order of each state's derivative (array), or None for an integer-order run; checks that ``alpha``
    and ``method`` go together."""
    fractional_method = method in FRACTIONAL_METHODS or method in FRACTIONAL_PINN_METHODS
    if alpha is None:
        if fractional_method:
            raise NeurospikeError(f"method {method!r} integrates a fractional-order model: give alpha "
                                  f"(--alpha 0.8, or per state --alpha v=0.8)")
        return None
    if not fractional_method:
        raise NeurospikeError(f"alpha={alpha!r} makes the model fractional: use a fractional method "
                              f"({', '.join((*FRACTIONAL_METHODS, *FRACTIONAL_PINN_METHODS))}), not {method!r}")
    orders = np.ones(model.n_states)
    chosen = alpha.items() if isinstance(alpha, Mapping) else ((s, alpha) for s in model.states)
    for name, value in chosen:
        index = model.state_index(name)
        try:
            order = float(value)
        except (TypeError, ValueError):
            raise NeurospikeError(f"alpha {name}={value!r} is not a number") from None
        if not 0.0 < order <= 1.0:
            raise NeurospikeError(f"alpha {name}={value!r} is outside (0, 1]")
        orders[index] = order
    return orders


def _fractional(model, method, values, current, start, t0, t_end, dt, events, orders, memory_limit):
    """A Caputo fractional-order run on the uniform grid t0 + k·dt (:mod:`neurospike.solvers.fractional`)."""
    n_steps = int(math.floor((t_end - t0) / dt + 1e-9))
    if n_steps < 1:
        raise NeurospikeError(f"dt={dt:g} is longer than the run [{t0:g}, {t_end:g}] ms")
    implicit, history = FRACTIONAL_METHODS[method]
    # the trace, plus the increments of every step and their weights (direct L1) or the FFT accumulators (pece)
    per_step = 8.0 * model.n_states * {"soe": 2, "direct": 4, "fft": 6}[history]
    if per_step * (n_steps + 1) > memory_limit:
        hint = "; fast-l1 keeps no per-step history" if history == "direct" else ""
        _memory_check(per_step * (n_steps + 1), memory_limit,
                      f"{n_steps} steps x {model.n_states} states for {method}{hint}")
    y0 = np.array([start[s] for s in model.states], dtype=float)
    if method == "pece":
        out = pece.run_pece(model, values, current, y0, orders, t0, dt, n_steps, events=events)
    else:
        out = fractional.run_l1(model, values, current, y0, orders, t0, dt, n_steps, implicit=implicit,
                                events=events, history=history)
    if out["status"] != "success":
        raise SimulationError(f"{model.name}/{method}: the state became non-finite at t={out['halt_time']:.6g} ms; "
                              f"use a smaller dt or the implicit l1")
    t, y = merge_spikes(out["t"], out["y"], out["spike_times"], out["before"], out["after"])
    return Trajectory(
        t=t, states={s: y[:, i] for i, s in enumerate(model.states)}, spikes=out["spike_times"], model=model.name,
        method=method, params=values, dt=dt, events=events, state_units=dict(zip(model.states, model.state_units)),
        spike_states_before=out["before"], spike_states_after=out["after"], compile_time_s=out["compile_time_s"],
        run_time_s=out["run_time_s"], alpha=dict(zip(model.states, orders.tolist())))


def _status_message(model, method, code, halt_time, max_rate, last_state=None):
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


def _reference(model, values, current, start, t0, t_end, rtol, atol, min_interval, max_rate):
    if not (0 < rtol < 1 and 0 < atol < 1):
        raise NeurospikeError(f"rtol={rtol!r} and atol={atol!r} must lie in (0, 1)")
    y0 = np.array([start[s] for s in model.states], dtype=float)
    began = time.perf_counter()
    pieces, (times, before, after), (code, halt_time) = reference.integrate(
        model, values, current, y0, t0, t_end, rtol=rtol, atol=atol, min_interval=min_interval,
        max_spikes=int(math.ceil((t_end - t0) * max_rate / 1000.0)) + 2)
    elapsed = time.perf_counter() - began
    if code == fixed_step.NON_FINITE:
        last = pieces[-1][3][-1] if pieces else y0
        raise SimulationError(_status_message(model, "reference", code, halt_time, max_rate, last)[1])
    t = np.concatenate([p[2] for p in pieces])
    y = np.concatenate([p[3] for p in pieces])
    status, message = ("success", "") if code == fixed_step.OK else _status_message(model, "reference", code,
                                                                                       halt_time, max_rate)
    return Trajectory(
        t=t, states={s: y[:, i] for i, s in enumerate(model.states)}, spikes=times, model=model.name,
        method="reference", params=values, dt=None, events="located",
        state_units=dict(zip(model.states, model.state_units)), spike_states_before=before,
        spike_states_after=after, compile_time_s=0.0, run_time_s=elapsed, status=status, message=message,
        dense=reference.dense_output(pieces))


def loop_config(model, method, events, capacity):
    """The static choices of the fixed-step loop for ``model`` and ``method`` (also the live app's chunks)."""
    rule = model.spike
    return fixed_step.LoopConfig(
        method=method, derivatives=model.derivatives,
        groups=tuple(tuple(model.state_index(s) for s in group) for group in model.split) if model.split else None,
        spike_index=model.state_index(rule.state) if rule else None, level_name=rule.level if rule else None,
        reset=rule.reset if rule else None, refractory_name=rule.refractory if rule else None,
        located=events == "located", input_at_step_start=_input_at_step_start(method), spike_capacity=capacity,
        record_trace=True)


def _input_at_step_start(method) -> bool:
    return getattr(method, "input_at_step_start", False)


def _breaks(method, current):
    """Input discontinuities that become grid nodes (none for a method that reads the input at step starts)."""
    return np.zeros(0) if _input_at_step_start(method) else current.discontinuities()


def _memory_check(estimate, memory_limit, detail):
    if estimate > memory_limit:
        raise NeurospikeError(
            f"this run would need about {estimate / 2**30:.1f} GiB (limit {memory_limit / 2**30:.1f} GiB): {detail}; "
            f"use a larger dt, a shorter t_end or --save-at")


def _grid(t0, t_end, dt, breaks, memory_limit):
    """The step nodes, refused before they are built when the grid alone would not fit (~32 bytes a node)."""
    count = int(math.floor((t_end - t0) / dt + 1e-9)) + len(breaks) + 2
    _memory_check(32.0 * count, memory_limit, f"{count - 1} steps")
    return fixed_step.time_grid(t0, t_end, dt, breaks)


def _fixed_step(model, method, values, current, start, t0, t_end, dt, events, min_interval, max_rate, n_neurons,
                memory_limit, save_at=None, max_recorded_spikes=None):
    if n_neurons is not None:
        return _population(model, method, values, current, start, t0, t_end, dt, events, min_interval, max_rate,
                           n_neurons, memory_limit, save_at, max_recorded_spikes)
    rule = model.spike
    nodes = _grid(t0, t_end, dt, _breaks(method, current), memory_limit)
    capacity = int(math.ceil(fixed_step.BLOCK * dt * max_rate / 1000.0)) + 2 if rule else 0
    n_blocks = -(-(len(nodes) - 1) // fixed_step.BLOCK)
    _memory_check(8 * (len(nodes) * model.n_states + n_blocks * capacity * (1 + 2 * model.n_states)) * 3,
                  memory_limit, f"{len(nodes) - 1} steps x {model.n_states} states")
    config = loop_config(model, method, events, capacity)
    params = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in values.items()}
    y0 = jnp.asarray([start[s] for s in model.states], dtype=jnp.float64)
    args = (params, current, y0, jnp.asarray(nodes), jnp.asarray(min_interval))
    trace, spikes, counts, status, compile_time, run_time = run_loop(fixed_step.run, config, args)

    trace = np.concatenate([np.asarray(y0)[None], np.asarray(trace)])
    code, halt_time = int(status["halt_code"]), float(status["halt_time"])
    counts = np.minimum(np.asarray(counts), capacity)
    taken = np.arange(spikes[0].shape[1])[None, :] < counts[:, None]
    spike_times, before, after = (np.asarray(buffer)[taken] for buffer in spikes)
    if code == fixed_step.NON_FINITE:
        last = trace[np.searchsorted(nodes, halt_time, side="right") - 1]
        raise SimulationError(_status_message(model, method.name, code, halt_time, max_rate, last)[1])
    status, message = "success", ""
    if code != fixed_step.OK:
        status, message = _status_message(model, method.name, code, halt_time, max_rate)
        keep = nodes <= halt_time
        nodes, trace = nodes[keep], trace[keep]
        kept = spike_times <= halt_time
        spike_times, before, after = spike_times[kept], before[kept], after[kept]
    t, y = merge_spikes(nodes, trace, spike_times, before, after)
    holds = refractory_holds(rule, values, spike_times, after, nodes[-1])
    t, y = insert_points(t, y, holds[1], holds[2])
    return Trajectory(
        t=t, states={s: y[:, i] for i, s in enumerate(model.states)}, spikes=spike_times, model=model.name,
        method=method.name, params=values, dt=dt, events=events,
        state_units=dict(zip(model.states, model.state_units)), spike_states_before=before,
        spike_states_after=after, compile_time_s=compile_time, run_time_s=run_time, status=status,
        message=message, dense=step_interpolant(model, method, values, current, t, y, holds))


def run_loop(loop, config, args, *static):
    """Compile ``loop`` for this configuration and these argument shapes (once), run it; with both times."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    key = (loop, config, static, tree, tuple((np.shape(x), np.asarray(x).dtype.str) for x in leaves))
    began = time.perf_counter()
    if key not in _COMPILED:
        _COMPILED[key] = jax.jit(lambda *a: loop(config, *a, *static)).lower(*args).compile(
            compiler_options=COMPILER_OPTIONS)
    compile_time = time.perf_counter() - began
    began = time.perf_counter()
    result = jax.block_until_ready(_COMPILED[key](*args))
    return (*result, compile_time, time.perf_counter() - began)


def _population(model, method, values, current, start, t0, t_end, dt, events, min_interval, max_rate, size,
                memory_limit, save_at, max_recorded_spikes):
    """N neurons at once (see :mod:`neurospike.solvers.population`): states recorded at every node, or only at
    ``save_at`` (inserted into the grid as nodes, so exact), spike counts and (time, neuron) pairs."""
    breaks = np.concatenate([_breaks(method, current), [] if save_at is None else save_at])
    nodes = _grid(t0, t_end, dt, breaks, memory_limit)
    if save_at is None:
        record_index = np.arange(len(nodes))
    else:
        wanted = np.searchsorted(nodes, save_at - 1e-9 * dt)
        record_index = np.unique(np.concatenate([[0, len(nodes) - 1], wanted]))
    rule = model.spike
    if max_recorded_spikes is None:
        max_recorded_spikes = int(math.ceil(size * (t_end - t0) * 100.0 / 1000.0)) + 1000 if rule else 0
    _memory_check(8 * (len(record_index) * model.n_states * size * 2 + 2 * max_recorded_spikes + 8 * size),
                  memory_limit, f"{len(record_index)} recorded times x {size} neurons x {model.n_states} states")
    config = loop_config(model, method, events, 0)
    params = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in values.items()}
    y0 = jnp.stack([jnp.broadcast_to(jnp.asarray(start[s], dtype=jnp.float64), (size,)) for s in model.states])
    block = min(population.NEURON_BLOCK, size)
    capacity = int(math.ceil(max_recorded_spikes * block / size)) + population.EVENT_BATCH if max_recorded_spikes else 0
    # a spike at most once per step (at step ends) with events="step": the interval guard is needed only when
    # it is longer than the shortest step
    rate_guard = events == "located" or min_interval > np.min(np.diff(nodes)) * (1 + 1e-9)
    args = (params, current, y0, jnp.asarray(nodes), jnp.asarray(record_index, dtype=jnp.int32),
            jnp.asarray(min_interval))
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
        _explain_non_finite(model, method, values, current, start, t0, t_end, dt, events, min_interval, max_rate,
                            memory_limit, broken, t, saved)
    status, messages = "success", []
    halted = np.flatnonzero(~np.isnan(stopped))
    if halted.size:
        status = "rate-exceeded"
        where = ", ".join(f"neuron {i} at t={stopped[i]:.6g} ms" for i in halted[:3])
        messages.append(f"{model.name}/{method.name}: {halted.size} neuron(s) spiking faster than "
                        f"max_rate={max_rate:g} Hz or twice within one step ({where}); each was stopped there "
                        f"(NaN afterwards), the others ran to the end")
        saved[:, :, halted] = np.where(t[:, None, None] > stopped[halted][None, None, :], np.nan, saved[:, :, halted])
    total = int(np.sum(counts))
    if len(times) < total:
        messages.append(f"spike times recorded for {len(times)} of {total} spikes (max_recorded_spikes); "
                        f"counts are exact")
    return Trajectory(
        t=t, states={s: saved[:, i, :] for i, s in enumerate(model.states)}, spikes=times, model=model.name,
        method=method.name, params=values, dt=dt, events=events,
        state_units=dict(zip(model.states, model.state_units)), compile_time_s=compile_time, run_time_s=run_time,
        status=status, message="; ".join(messages), spike_neurons=neurons, spike_counts=counts)


def _explain_non_finite(model, method, values, current, start, t0, t_end, dt, events, min_interval, max_rate,
                        memory_limit, broken, t, saved):
    """Raise for the first neuron whose state turned non-finite, with the time and last finite state that the
    one-neuron loop (re-run for that neuron alone) reports."""
    i = int(broken[0])
    one = lambda value: value[i] if np.ndim(value) == 1 else value  # noqa: E731
    axes = current.population_axes()
    own_current = jax.tree_util.tree_map(
        lambda axis, leaf: leaf if axis is None else np.take(np.asarray(leaf), i, axis=axis), axes, current,
        is_leaf=lambda x: x is None)
    prefix = f"{broken.size} neuron(s) turned non-finite; the first, neuron {i}: "
    try:
        _fixed_step(model, method, {k: one(v) for k, v in values.items()}, own_current,
                    {k: one(v) for k, v in start.items()}, t0, t_end, dt, events, min_interval, max_rate, None,
                    memory_limit)
    except SimulationError as error:
        raise SimulationError(prefix + str(error)) from None
    first = t[np.argmax(~np.all(np.isfinite(saved[:, :, i]), axis=1))]
    raise SimulationError(f"{prefix}{model.name}/{method.name}: non-finite by t={first:.6g} ms; use a smaller dt or "
                          f"an implicit method (backward-euler)")


def insert_points(t, y, times, states):
    """Insert (times, states) into the trace (t, y), each after the points already at the same time."""
    if len(times) == 0:
        return t, y
    position = np.searchsorted(t, times, side="right")
    return np.insert(t, position, times), np.insert(y, position, states, axis=0)


def merge_spikes(nodes, trace, spike_times, before, after):
    """Insert (t*, state before reset) and (t*, state after reset) of each spike into the node trace."""
    if len(spike_times) == 0:
        return nodes, trace
    points = np.empty((2 * len(spike_times), trace.shape[1]))
    points[0::2], points[1::2] = before, after
    position = np.searchsorted(nodes, spike_times, side="left")
    return np.insert(nodes, np.repeat(position, 2), np.repeat(spike_times, 2)), np.insert(
        trace, np.repeat(position, 2), points, axis=0)


def refractory_holds(rule, values, spike_times, after, t_end):
    """(start, end, held state) of each refractory period: the state stays at its post-reset value."""
    period = float(values[rule.refractory]) if rule and rule.refractory else 0.0
    if period <= 0 or len(spike_times) == 0:
        return np.zeros(0), np.zeros(0), np.zeros((0, np.shape(after)[-1]))
    return spike_times, np.minimum(spike_times + period, t_end), after


def step_interpolant(model, method, values, current, t, y, holds=None):
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
            values_at = fixed_step.hermite(theta[:, None], y_a, f_a, y_b, f_b, width[:, None])
        else:
            values_at = y_a + theta[:, None] * (y_b - y_a)
        for start, end, state in zip(*(holds if holds is not None else ((), (), ()))):
            values_at[(times > start) & (times < end)] = state
        return values_at

    return evaluate

"""``simulate(model, method=..., dt=..., t_end=...) -> Trajectory``: the one entry point for every method.

``simulate`` is :func:`resolve` (a :class:`Problem`: the model, its parameters, input, initial state, times,
fractional orders and options, all checked) → ``method.check(problem)`` → ``method.solve(problem)`` →
``save_at``, with the method taken from the one registry :data:`neurospike.methods.METHODS`.

Importing neurospike turns on JAX's 64-bit mode (``jax_enable_x64``): the solvers compute in float64 (the
PINNs may choose float32 for their networks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import jax
import numpy as np

from . import currents as currents_module
from . import methods
from . import models
from .errors import NeurospikeError, closest
from .trajectory import Trajectory

jax.config.update("jax_enable_x64", True)

DEFAULT_MAX_RATE_HZ = 10_000.0
DEFAULT_MEMORY_LIMIT_BYTES = 8 * 2**30
DEFAULT_DT = 0.01  # ms, when neither the call nor the preset gives one
# DOP853 at 1e-10 can be off by ~5e-7 in w (izhikevich2007 rs near 287 ms); 1e-12 costs ~30 % more time.
REFERENCE_TOLERANCE = 1e-12
PRECISIONS = ("float64", "float32")


@dataclass(frozen=True)
class Problem:
    """Everything a method needs to integrate one run, resolved and checked: the model, its full parameter set
    (floats, or arrays of length N for a population), the input current, the initial state, the time span and
    step, the Caputo order of each state (``orders``; None for an integer-order run) and the options."""

    model: Any
    preset: Any
    params: dict[str, Any]
    current: Any
    initial: dict[str, Any]
    t0: float
    t_end: float
    dt: float
    orders: np.ndarray | None = None
    alpha: Any = None  # as given (for messages)
    events: str = "located"
    max_rate: float = DEFAULT_MAX_RATE_HZ
    save_at: np.ndarray | None = None
    memory_limit: float = DEFAULT_MEMORY_LIMIT_BYTES
    max_recorded_spikes: int | None = None
    rtol: float = REFERENCE_TOLERANCE
    atol: float = REFERENCE_TOLERANCE
    options: Any = None  # PINN options (a PinnOptions or a mapping)
    progress: Callable | None = None
    checkpoint: Any = None
    precision: str = "float64"  # "float32": a fixed-step population computes in single precision

    @property
    def y0(self) -> np.ndarray:
        """The initial state as an array (n_states,) — or (n_states, N) rows for a population."""
        return np.asarray([self.initial[s] for s in self.model.states])

    @property
    def min_interval(self) -> float:
        """The shortest interspike interval (ms) the runaway guard lets through: 1000 / max_rate."""
        return 1000.0 / self.max_rate

    @property
    def n_neurons(self) -> int | None:
        return population_size(self.params, self.initial, self.current, self.orders)

    def neuron(self, i: int) -> "Problem":
        """The one-neuron problem of neuron ``i`` of a population."""
        one = lambda value: value[i] if np.ndim(value) == 1 else value  # noqa: E731
        orders = self.orders if self.orders is None or self.orders.ndim == 1 else self.orders[:, i]
        return replace(self, params={k: one(v) for k, v in self.params.items()},
                       current=neuron_current(self.current, i),
                       initial={k: one(v) for k, v in self.initial.items()}, orders=orders, save_at=None)


def neuron_current(current, i: int):
    """The input of neuron ``i`` of a population: its entry of every per-neuron leaf of ``current``."""
    return jax.tree_util.tree_map(
        lambda axis, leaf: leaf if axis is None else np.take(np.asarray(leaf), i, axis=axis),
        current.population_axes(), current, is_leaf=lambda x: x is None)


def resolve(model, preset=None, params=None, current=None, t_end=None, t0=0.0, initial=None, *, dt=None,
            alpha=None, events="located", max_rate=DEFAULT_MAX_RATE_HZ, save_at=None,
            memory_limit=DEFAULT_MEMORY_LIMIT_BYTES, max_recorded_spikes=None, rtol=REFERENCE_TOLERANCE,
            atol=REFERENCE_TOLERANCE, options=None, progress=None, checkpoint=None, precision="float64") -> Problem:
    """The :class:`Problem` of a run: ``model`` (a name or :class:`~neurospike.models.Model`) with the preset's
    parameters, initial state, input, ``t_end`` and usual ``dt``, overridden by ``params``, ``initial``,
    ``current``, ``t_end`` and ``dt``; every value checked (one-line :class:`NeurospikeError`)."""
    if events not in methods.EVENTS_MODES:
        raise NeurospikeError(f"events={events!r}: use 'located' or 'step'")
    if precision not in PRECISIONS:
        raise NeurospikeError(f"precision={precision!r}: use {' or '.join(map(repr, PRECISIONS))}")
    if not (isinstance(max_rate, (int, float)) and math.isfinite(max_rate) and max_rate > 0):
        raise NeurospikeError(f"max_rate={max_rate!r} must be a positive number of Hz")
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
    dt = chosen.dt if dt is None else dt
    dt = DEFAULT_DT if dt is None else dt
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise NeurospikeError(f"dt={dt!r} must be a positive finite step (ms)") from None
    if not math.isfinite(dt) or dt <= 0:
        raise NeurospikeError(f"dt={dt!r} must be a positive finite step (ms)")
    if save_at is not None:
        save_at = np.unique(np.asarray(save_at, dtype=float))  # sorted, each time once (scipy's t_eval must be)
        outside = save_at[(save_at < t0) | (save_at > t_end) | ~np.isfinite(save_at)]
        if outside.size:
            raise NeurospikeError(f"save-at time {outside[0]:g} is outside the run [{t0:g}, {t_end:g}] ms")
    problem = Problem(model=model, preset=chosen, params=values, current=current, initial=start, t0=float(t0),
                      t_end=t_end, dt=dt, orders=fractional_orders(model, alpha), alpha=alpha, events=events,
                      max_rate=float(max_rate), save_at=save_at, memory_limit=memory_limit,
                      max_recorded_spikes=max_recorded_spikes, rtol=rtol, atol=atol, options=options,
                      progress=progress, checkpoint=checkpoint, precision=precision)
    problem.n_neurons  # arrays of different lengths are refused here  # noqa: B018
    return problem


def population_size(values: Mapping[str, Any], start: Mapping[str, Any], current=None, orders=None) -> int | None:
    """N when some parameter, initial state, the input or the fractional order (``orders`` of shape
    (n_states, N), :func:`fractional_orders`) is given per neuron (arrays of length N), else None."""
    sizes = {np.size(v) for v in (*values.values(), *start.values()) if np.ndim(v) > 0}
    if current is not None and getattr(current, "population_size", lambda: None)() is not None:
        sizes.add(current.population_size())
    if orders is not None and np.ndim(orders) == 2:
        if sizes and sizes != {orders.shape[1]}:
            raise NeurospikeError(f"alpha has {orders.shape[1]} values per state but the population has "
                                  f"{sorted(sizes)[0]} neurons; give one order or one per neuron")
        sizes.add(orders.shape[1])
    if not sizes:
        return None
    if len(sizes) > 1:
        raise NeurospikeError(f"population arrays have different lengths {sorted(sizes)}; use one length N")
    return sizes.pop()


def fractional_orders(model, alpha) -> np.ndarray | None:
    """The Caputo order of each state's derivative (1 = integer order) from ``alpha`` — one number for every
    state, ``{state: α}``, or per neuron an array of length N in place of either number — as an array
    (n_states,), or (n_states, N) when some order is given per neuron; None for an integer-order run."""
    if alpha is None:
        return None
    chosen = alpha.items() if isinstance(alpha, Mapping) else ((s, alpha) for s in model.states)
    given = {}
    for name, value in chosen:
        model.state_index(name)
        try:
            order = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise NeurospikeError(f"alpha {name}={value!r} is not a number or an array of numbers") from None
        if order.ndim > 1 or order.size == 0:
            raise NeurospikeError(f"alpha {name} has shape {order.shape}: give a number or one number per neuron")
        outside = order[~((order > 0.0) & (order <= 1.0))]
        if outside.size:
            shown = value if order.ndim == 0 else float(outside[0])
            raise NeurospikeError(f"alpha {name}={shown!r} is outside (0, 1]")
        given[name] = order
    lengths = {np.size(v) for v in given.values() if np.ndim(v) == 1}
    if len(lengths) > 1:
        raise NeurospikeError(f"alpha arrays have different lengths {sorted(lengths)}; give one order per neuron")
    orders = np.ones((model.n_states, *lengths))
    for name, order in given.items():
        orders[model.state_index(name)] = order
    return orders


def simulate(model, *, preset: str | None = None, method: str = "rk4", dt: float | None = None,
             t_end: float | None = None, t0: float = 0.0, params: Mapping[str, Any] | None = None,
             current=None, initial: Mapping[str, Any] | None = None, save_at=None, events: str = "located",
             max_rate: float = DEFAULT_MAX_RATE_HZ, rtol: float = REFERENCE_TOLERANCE, atol: float = REFERENCE_TOLERANCE,
             memory_limit: float = DEFAULT_MEMORY_LIMIT_BYTES, max_recorded_spikes: int | None = None,
             alpha=None, pinn=None, progress=None, checkpoint=None, precision: str = "float64") -> Trajectory:
    """Integrate ``model`` (a name or :class:`~neurospike.models.Model`) and return a :class:`Trajectory`.

    ``preset`` picks parameters, initial state, input, ``t_end`` and a usual ``dt``; ``params``/``initial``
    override them (arrays of length N make a population of N independent neurons). ``current`` is a current
    object, a number or a CLI spec such as ``"step:start=101,amplitude=70"``. ``method`` is a name of
    :data:`neurospike.methods.METHODS`; ``events`` is ``"located"`` (spikes located inside the step) or
    ``"step"`` (reset after the step). ``save_at`` returns the trajectory at exactly those times (dense output),
    sorted and each once: ``save_at=[30, 10, 20, 10]`` gives t = 10, 20, 30. One neuron with a fixed-step method
    streams: the run steps in segments and keeps only the states at save_at and the spikes (the same numbers as
    sampling the whole run), so memory does not grow with the number of steps.
    A run that spikes faster than ``max_rate`` (Hz) stops there with ``status="rate-exceeded"``.

    ``alpha`` makes the model fractional (Caputo derivative of order α ∈ (0, 1]): one number for every state,
    or ``{state: α}`` (the others keep order 1), either number may be an array of length N (a population, one
    order per neuron: ``l1``, ``l1-explicit``, ``fast-l1``); it needs a fractional method (``l1``, ``l1-explicit``,
    ``fast-l1``, ``pece``, ``fpinn``).

    PINN methods (``pinn``, ``pinn-data``, ``pinn-marching``, ``pinn-reset``, ``splitting-pinn``; ``fpinn``
    with ``alpha``) take their settings in ``pinn`` (a :class:`neurospike.pinn.PinnOptions` or a mapping such as
    ``{"window": 0.02, "splitting": "lie"}``); ``dt`` is the step of ``pinn-data``'s classical data and
    ``fpinn``'s grid. ``progress(t, loss)`` is called as they train (and with loss NaN after each segment of a
    streamed save_at run); ``checkpoint`` (an .npz path) saves the trained networks
    (:func:`neurospike.pinn.load_checkpoint`).

    ``precision="float32"`` runs a population of a fixed-step method in single precision (twice the numbers per
    vector register on a CPU, the fast path of most GPUs); everything else computes in float64.
    """
    chosen_method = methods.get(method)
    problem = resolve(model, preset, params, current, t_end, t0, initial, dt=dt, alpha=alpha, events=events,
                      max_rate=max_rate, save_at=save_at, memory_limit=memory_limit,
                      max_recorded_spikes=max_recorded_spikes, rtol=rtol, atol=atol, options=pinn,
                      progress=progress, checkpoint=checkpoint, precision=precision)
    chosen_method.check(problem)
    trajectory = chosen_method.solve(problem)
    trajectory.preset = problem.preset.name
    trajectory.method = chosen_method.name
    save_at = problem.save_at
    if save_at is not None and not chosen_method.samples(problem):
        if trajectory.status != "success":  # stopped early: the times it reached
            save_at = save_at[save_at <= trajectory.t[-1]]
        trajectory = trajectory.at(save_at)
    return trajectory

"""``sweep``: a map of a neuron's behaviour over a grid of parameters (firing rate over (I, α), the pattern class
over Izhikevich's (a, b) plane, the HH rheobase over (g_Na, g_K), a solver's error over (dt, I)), run as tasks on
Dask distributed and written, task by task, to an xarray Dataset in a zarr store.

Grid axes: any parameter of the model; ``I``, the input's amplitude (a constant current's value, the value of every
segment of a step or pulse current, a sine's amplitude); ``alpha``, the Caputo order of every state, or
``alpha_STATE`` (``alpha_v``), one state's (with a fractional method); ``dt``; ``method``. The parameter, I and α
axes are *vectorised*: a task integrates one block of their grid points at once, as a population
(:func:`neurospike.simulate` with arrays), so thousands of neurons share one compiled loop. ``dt`` and ``method`` change the grid or the scheme, so each of their values is a run of its own
inside every task (and ``spike_error``'s reference is computed once per task for all of them).

Layout: the vectorised grid is cut into blocks of at most ``chunk_size`` points (whole trailing axes first, and
every block padded to the same size, so a worker compiles its loop once). One block is one task, one zarr chunk of
every metric (so no two workers write the same chunk) and one entry of the completion marker ``chunk_done``, which
the task sets after its metrics are written. A rerun with the same store computes only the blocks not marked done;
a task lost with its worker is rerun by Dask, and a block's write is idempotent, so faults do not change the
result. The client keeps only each task's statistics; the result is opened lazily from the store.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import currents as currents_module
from . import methods as registry
from . import models
from .analysis import match_spikes
from .errors import NeurospikeError, SimulationError, closest
from .patterns import PATTERN_CLASSES, classify
from .simulate import neuron_current, resolve, simulate
from .solvers.population import NEURON_BLOCK

OUTER_AXES = ("dt", "method")  # each value a run of its own; every other axis is vectorised over neurons
INPUT_AXIS, ORDER_AXIS = "I", "alpha"
DEFAULT_CHUNK_SIZE = 4096  # grid points per task: thousands, so Dask's ~1 ms per task stays far below 5 %
DEFAULT_TASK_MEMORY = 2 * 2**30  # bytes one task may use
DEFAULT_METRICS = ("count", "rate", "cv", "first_spike")
MARKER = "chunk_done"
SPIKE_BYTES = 16  # a recorded spike: time and neuron
RECORDED_RATE_HZ = 100.0  # spikes first recorded per neuron and second; a block that fired more is rerun with room


@dataclass(frozen=True)
class Metric:
    """A per-neuron summary of a run: ``compute(block) -> array (N,)``, stored as ``dtype`` with ``fill`` where
    not yet computed."""

    name: str
    unit: str
    description: str
    compute: Callable[["Block"], np.ndarray]
    dtype: str = "float64"
    fill: Any = math.nan
    needs_reference: bool = False
    attrs: dict = field(default_factory=dict)


@dataclass
class Block:
    """The runs of one task's grid points at one (dt, method): the spike trains per neuron in (onset, t_end], the
    exact spike counts there, the one-neuron trajectories (on demand), the reference trains (for errors) and
    which runs reached t_end (the metrics of the others are stored as their fill value: NaN, −1)."""

    trains: list[np.ndarray]
    counts: np.ndarray
    onset: float
    t_end: float
    trajectory: Any
    reference: list[np.ndarray] | None = None
    valid: np.ndarray | None = None  # False where the run broke off (non-finite state, runaway guard)

    def neuron(self, i: int):
        return self.trajectory[i] if isinstance(self.trajectory, list) else self.trajectory.neuron(i)


def _cv(block: Block) -> np.ndarray:
    out = np.full(len(block.trains), math.nan)
    for i, train in enumerate(block.trains):
        if train.size >= 3:
            isi = np.diff(train)
            out[i] = float(np.std(isi) / np.mean(isi))
    return out


def _first_spike(block: Block) -> np.ndarray:
    return np.array([train[0] - block.onset if train.size else math.nan for train in block.trains])


def _pattern(block: Block) -> np.ndarray:
    return np.array([PATTERN_CLASSES.index(classify(train, block.onset, block.t_end)) for train in block.trains],
                    dtype=np.int8)


def _spike_error(block: Block) -> np.ndarray:
    return np.array([match_spikes(reference, train).worst for reference, train in zip(block.reference, block.trains)])


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("count", "1", "spikes in (onset, t_end]", lambda b: b.counts.astype(np.int32), "int32", -1),
    Metric("rate", "Hz", "mean firing rate over (onset, t_end]",
           lambda b: 1000.0 * b.counts / (b.t_end - b.onset)),
    Metric("cv", "1", "coefficient of variation of the interspike intervals (NaN below 3 spikes)", _cv),
    Metric("first_spike", "ms", "latency of the first spike after the onset (NaN: none)", _first_spike),
    Metric("pattern", "1", "firing class (neurospike.patterns.classify)", _pattern, "int8", -1,
           attrs={"flag_values": list(range(len(PATTERN_CLASSES))), "flag_meanings": " ".join(
               c.replace(" ", "_") for c in PATTERN_CLASSES)}),
    Metric("spike_error", "ms", "worst spike-time error against the reference method (inf: a spike missing or "
           "extra; NaN: no spike in either)", _spike_error, needs_reference=True),
)}


def user_metric(function: Callable) -> Metric:
    """A metric from a Python function of one neuron's :class:`~neurospike.Trajectory` returning a number."""
    name = getattr(function, "__name__", "")
    if not name.isidentifier() or name == "<lambda>":
        raise NeurospikeError(f"metric function {function!r} needs a name (def name(trajectory): ...)")

    def compute(block: Block) -> np.ndarray:
        return np.array([float(function(block.neuron(i))) if block.valid[i] else math.nan
                         for i in range(len(block.trains))])

    return Metric(name, getattr(function, "unit", ""), (function.__doc__ or name).strip().splitlines()[0], compute)


@dataclass(frozen=True)
class Axis:
    name: str
    values: np.ndarray

    @property
    def vectorised(self) -> bool:
        return self.name not in OUTER_AXES


@dataclass(frozen=True)
class SweepSpec:
    """Everything a task needs (small and picklable): the run's settings, the axes, the metrics, the block
    shape and the store."""

    model: Any
    preset: str | None
    method: str
    dt: float | None
    t0: float
    t_end: float
    params: dict
    current: Any
    initial: dict
    alpha: Any
    events: str
    max_rate: float
    onset: float
    axes: tuple[Axis, ...]
    metrics: tuple[Metric, ...]
    block_shape: tuple[int, ...]  # over the vectorised axes
    store: str
    derived_initial: tuple[str, ...] = ()  # states started from the model's initial_state at each point
    precision: str = "float64"
    reference: str = "reference"

    @property
    def vectorised(self) -> tuple[Axis, ...]:
        return tuple(a for a in self.axes if a.vectorised)

    @property
    def outer(self) -> tuple[Axis, ...]:
        return tuple(a for a in self.axes if not a.vectorised)

    @property
    def chunk_counts(self) -> tuple[int, ...]:
        return tuple(-(-len(a.values) // c) for a, c in zip(self.vectorised, self.block_shape))

    @property
    def block_size(self) -> int:
        return int(np.prod(self.block_shape, dtype=int))

    def chunks(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(n) for n in self.chunk_counts)))

    def region(self, chunk: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(i * c, min((i + 1) * c, len(a.values)))
                     for i, c, a in zip(chunk, self.block_shape, self.vectorised))

    def fingerprint(self) -> str:
        """The settings a store's results depend on, as JSON (a rerun must match them to resume)."""
        return json.dumps({
            "model": getattr(self.model, "name", self.model), "preset": self.preset, "method": self.method,
            "dt": self.dt, "t0": self.t0, "t_end": self.t_end, "params": _plain(self.params),
            "current": repr(self.current), "initial": _plain(self.initial), "alpha": _plain(self.alpha),
            "events": self.events, "max_rate": self.max_rate, "onset": self.onset,
            "axes": {a.name: _plain(a.values) for a in self.axes}, "metrics": [m.name for m in self.metrics],
            "block_shape": list(self.block_shape), "derived_initial": list(self.derived_initial),
            "precision": self.precision}, sort_keys=True)


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


# --- checking the request ---------------------------------------------------------------------------------------
def with_amplitude(current, amplitude):
    """``current`` with its amplitude set to ``amplitude`` (a number or an array over neurons): a constant's
    value, every segment's value of a step or pulse current, a sine's amplitude."""
    if isinstance(current, currents_module.Piecewise):
        if any(float(np.max(np.abs(s))) != 0.0 for s in current.slopes):
            raise NeurospikeError("grid axis I sets a constant, step, pulse or sine amplitude; this input is a ramp")
        if not len(current.starts):
            return replace(current, baseline=amplitude)
        return replace(current, values=tuple(amplitude for _ in current.values))
    if isinstance(current, currents_module.Sine):
        return replace(current, amplitude=amplitude)
    raise NeurospikeError(f"grid axis I sets a constant, step, pulse or sine amplitude; the input is a "
                          f"{type(current).__name__}")


def _axes(model, grid: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[Axis, ...]:
    if not isinstance(grid, Mapping) or not grid:
        raise NeurospikeError("grid is empty; give at least one axis, e.g. grid={'I': np.linspace(0, 20, 21)}")
    known = (*model.params, INPUT_AXIS, ORDER_AXIS, *(f"{ORDER_AXIS}_{s}" for s in model.states), *OUTER_AXES)
    axes = []
    for name, values in grid.items():
        if name not in known:
            raise NeurospikeError(f"unknown grid axis {name!r}{closest(name, known)}; axes are the parameters of "
                                  f"{model.name!r} ({', '.join(model.params)}), I, alpha (every state's order), "
                                  f"alpha_STATE (one state's: {', '.join(model.states)}), dt and method")
        if name in params:
            raise NeurospikeError(f"{name} is both a grid axis and a fixed parameter; give it once")
        if name == "method":
            values = [values] if isinstance(values, str) else list(values)
            for value in values:
                registry.get(value)
            array = np.asarray(values, dtype=str)
        else:
            try:
                array = np.atleast_1d(np.asarray(values, dtype=float))
            except (TypeError, ValueError):
                raise NeurospikeError(f"grid axis {name}: {values!r} are not numbers") from None
            if array.ndim != 1:
                raise NeurospikeError(f"grid axis {name}: give a 1-d list of values, not shape {array.shape}")
            bad = array[~np.isfinite(array)]
            if bad.size:
                raise NeurospikeError(f"grid axis {name}: value {bad[0]} is not finite")
            if _is_order(name) and not np.all((array > 0) & (array <= 1)):
                raise NeurospikeError(f"grid axis {name}: value {array[(array <= 0) | (array > 1)][0]:g} is "
                                      f"outside (0, 1]")
            if name == "dt" and not np.all(array > 0):
                raise NeurospikeError(f"grid axis dt: value {array[array <= 0][0]:g} is not a positive step (ms)")
        if array.size == 0:
            raise NeurospikeError(f"grid axis {name} is empty; give at least one value")
        if np.unique(array).size != array.size:
            raise NeurospikeError(f"grid axis {name} repeats a value; give each value once")
        axes.append(Axis(name, array))
    return tuple(axes)


def _is_order(name: str) -> bool:
    return name == ORDER_AXIS or name.startswith(ORDER_AXIS + "_")


def at_points(model, points: Mapping[str, Any], params, current, alpha):
    """The run's (params, current, alpha) at grid points ({vectorised axis: value or array over the points}):
    parameter axes into ``params``, I into the input's amplitude, ``alpha`` into every state's order and
    ``alpha_STATE`` into that state's (the others keep the fixed ``alpha``, or order 1)."""
    params = dict(params)
    orders = {}
    for name, values in points.items():
        if name == INPUT_AXIS:
            current = with_amplitude(current, values)
        elif name == ORDER_AXIS:
            alpha = values
        elif _is_order(name):
            orders[name[len(ORDER_AXIS) + 1:]] = values
        else:
            params[name] = values
    if orders:
        fixed = {} if alpha is None else dict(alpha) if isinstance(alpha, Mapping) else {s: alpha for s in model.states}
        alpha = {**fixed, **orders}
    return params, current, alpha


def _block_shape(axes: Sequence[Axis], chunk_size: int) -> tuple[int, ...]:
    """At most ``chunk_size`` points per block: whole trailing axes first, then a slice of the next one."""
    shape, room = [], chunk_size
    for axis in reversed(axes):
        take = max(1, min(len(axis.values), room))
        shape.append(take)
        room = max(1, room // take)
    return tuple(reversed(shape))


def _bytes_per_neuron(problem, method) -> float:
    """What one grid point costs a task in memory: the recorded states, the spike records, the fractional
    history (direct L1: every increment) and the metrics."""
    model = problem.model
    states = 8 * model.n_states * 3 * 2  # start, end and a working copy, twice for the loop
    spikes = SPIKE_BYTES * RECORDED_RATE_HZ * (problem.t_end - problem.t0) / 1000.0
    history = 0.0
    if method.family == "fractional":
        steps = (problem.t_end - problem.t0) / problem.dt
        history = 8.0 * model.n_states * (2 * steps if getattr(method, "history", "") == "direct" else 2 * 300)
    return states + spikes + history + 8 * 16


def _derived_initial(model, base, axes, initial) -> tuple[str, ...]:
    """When the model computes its initial state from a swept parameter (Izhikevich's u(0) = b·v(0)), every grid
    point starts from the model's own initial state (for the states not given in ``initial``), not from a
    preset's state computed for the preset's parameters; returns those states (none otherwise)."""
    swept = [a.name for a in axes if a.name in model.params]
    if not swept:
        return ()
    values = dict(base.params)
    start = model.initial_state(values, np)
    moved = dict(values, **{name: values[name] * 1.001 + 1e-3 for name in swept})
    with np.errstate(all="ignore"):
        changed = model.initial_state(moved, np)
    if all(np.allclose(a, b) for a, b in zip(start, changed)):
        return ()
    return tuple(s for s in model.states if s not in initial)


def _check_method(name: str) -> Any:
    method = registry.get(name)
    if method.trains:
        raise NeurospikeError(f"method {name!r} trains a network for every run; sweep with a classical method "
                              f"({', '.join(registry.names(trains=False))})")
    return method


def plan(model, grid, *, method="rk4", metrics=DEFAULT_METRICS, preset=None, t_end=None, t0=0.0, dt=None,
         params=None, current=None, initial=None, alpha=None, events="located", max_rate=None, onset=None,
         chunk_size=None, task_memory=DEFAULT_TASK_MEMORY, store="sweep.zarr", precision="float64") -> SweepSpec:
    """Check a sweep request and lay it out (:class:`SweepSpec`); every bad value is refused here with one line,
    before anything runs or is written."""
    model = models.get(model)
    params = dict(params or {})
    axes = _axes(model, grid, params)
    names = [a.name for a in axes]
    if ORDER_AXIS in names and alpha is not None:
        raise NeurospikeError("alpha is both a grid axis and a fixed order; give it once")
    if ORDER_AXIS in names and any(_is_order(n) and n != ORDER_AXIS for n in names):
        raise NeurospikeError("grid axes alpha (every state's order) and alpha_STATE overlap; give one kind")
    chosen = []
    for metric in ([metrics] if isinstance(metrics, str) or callable(metrics) else list(metrics)):
        if callable(metric):
            chosen.append(user_metric(metric))
        elif metric in METRICS:
            chosen.append(METRICS[metric])
        else:
            raise NeurospikeError(f"unknown metric {metric!r}{closest(str(metric), METRICS)}; metrics are "
                                  f"{', '.join(METRICS)} or a Python function of a Trajectory")
    if not chosen:
        raise NeurospikeError(f"no metric given; choose from {', '.join(METRICS)}")
    if len({m.name for m in chosen}) != len(chosen):
        raise NeurospikeError("a metric is named twice; give each once")
    values = {a.name: a.values for a in axes}
    methods = [str(v) for v in values.get("method", [method])]
    checked = {name: _check_method(name) for name in methods}
    steps = [float(v) for v in values["dt"]] if "dt" in values else [dt]
    limit = {} if max_rate is None else {"max_rate": max_rate}
    base = resolve(model, preset, params, current, t_end, t0, initial, dt=dt, alpha=alpha, events=events, **limit)
    # probe problems check names, input, orders and population support: two points per vectorised axis for a
    # population method, the first point for one that runs neuron by neuron
    for name in methods:
        take = (lambda v: np.resize(v, 2)) if checked[name].populations else (lambda v: v[0])  # noqa: E731
        probe_params, probe_current, probe_alpha = at_points(
            model, {a.name: take(a.values) for a in axes if a.vectorised}, params, base.current, alpha)
        for step in steps:
            try:
                checked[name].check(resolve(model, preset, probe_params, probe_current, t_end, t0, initial, dt=step,
                                            alpha=probe_alpha, events=events, precision=precision, **limit))
            except NeurospikeError as error:
                raise NeurospikeError(f"method {name}: {error}") from None
    for metric in chosen:
        if metric.name in ("count", "rate", "cv", "first_spike", "pattern", "spike_error") and model.spike is None:
            raise NeurospikeError(f"metric {metric.name!r} counts spikes, and {model.name!r} has no spike rule; "
                                  f"give a metric function of the trajectory")
    if onset is None:
        breaks = base.current.discontinuities()
        breaks = breaks[(breaks > base.t0) & (breaks < base.t_end)]
        onset = float(breaks[0]) if breaks.size else base.t0
    if not (math.isfinite(onset) and base.t0 <= onset < base.t_end):
        raise NeurospikeError(f"onset={onset!r} must lie in [{base.t0:g}, {base.t_end:g}) ms")
    smallest_step = min(float(s) if s is not None else base.dt for s in steps)
    per_neuron = max(_bytes_per_neuron(replace(base, dt=smallest_step), checked[name]) for name in methods)
    fit = int(task_memory // per_neuron)
    if fit < 1:
        raise NeurospikeError(f"one grid point needs about {per_neuron / 2**30:.2f} GiB, over the task memory "
                              f"budget {task_memory / 2**30:.2f} GiB; use a larger dt, a shorter t_end or a larger "
                              f"task memory")
    if chunk_size is None:
        chunk_size = min(DEFAULT_CHUNK_SIZE, fit)
    elif not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
        raise NeurospikeError(f"chunk_size={chunk_size!r} must be a whole number of grid points >= 1")
    elif chunk_size > fit:
        raise NeurospikeError(f"chunk_size={chunk_size} needs about {chunk_size * per_neuron / 2**30:.1f} GiB per "
                              f"task, over the task memory budget {task_memory / 2**30:.1f} GiB; use at most "
                              f"{fit} points per task")
    return SweepSpec(
        derived_initial=_derived_initial(model, base, axes, initial or {}), precision=precision,
        model=model.name if models.REGISTRY.get(model.name) is model else model, preset=preset, method=method,
        dt=dt, t0=float(t0), t_end=base.t_end, params=params, current=base.current, initial=dict(initial or {}),
        alpha=alpha, events=events, max_rate=base.max_rate, onset=float(onset), axes=axes,
        metrics=tuple(chosen), block_shape=_block_shape([a for a in axes if a.vectorised], int(chunk_size)),
        store=str(store))


# --- one task ---------------------------------------------------------------------------------------------------
def _points(spec: SweepSpec, chunk: tuple[int, ...]) -> tuple[dict[str, np.ndarray], int]:
    """The block's grid points, flattened (C order) and padded to the block size by repeating the last point,
    and how many are real."""
    region = spec.region(chunk)
    values = [a.values[s] for a, s in zip(spec.vectorised, region)]
    mesh = np.meshgrid(*values, indexing="ij") if values else []
    real = int(np.prod([len(v) for v in values], dtype=int))
    padded = {a.name: np.resize(m.ravel(), spec.block_size) if real < spec.block_size else m.ravel()
              for a, m in zip(spec.vectorised, mesh)}
    for name, array in padded.items():
        array[real:] = array[real - 1]
    return padded, real


def _trains(trajectory, n: int, onset: float, t_end: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Each neuron's spike times in (onset, t_end] and their counts."""
    times, neurons = np.asarray(trajectory.spikes), np.asarray(trajectory.spike_neurons)
    keep = (times > onset) & (times <= t_end)
    times, neurons = times[keep], neurons[keep]
    order = np.lexsort((times, neurons))
    times, neurons = times[order], neurons[order]
    counts = np.bincount(neurons, minlength=n)
    return np.split(times, np.cumsum(counts)[:-1]), counts


def _run(spec: SweepSpec, points: dict[str, np.ndarray], method: str, dt, single: bool):
    """One population run of the block (or one run per point for a method without populations); returns
    the Block (without reference) and the neuron-steps done."""
    n = spec.block_size
    model = models.get(spec.model)
    params, current, alpha = at_points(model, points, spec.params, spec.current, spec.alpha)
    initial = dict(spec.initial)
    if spec.derived_initial:
        values = {**model.defaults(), **model.preset(spec.preset).params, **params}
        computed = dict(zip(model.states, model.initial_state(values, np)))
        initial.update({s: np.broadcast_to(computed[s], (n,)).copy() for s in spec.derived_initial})
    common = dict(preset=spec.preset, method=method, dt=dt, t_end=spec.t_end, t0=spec.t0, initial=initial or None,
                  events=spec.events, max_rate=spec.max_rate, precision=spec.precision)
    user = any(m.name not in METRICS for m in spec.metrics)
    if points and not single:
        try:
            return _population_run(spec, n, params, current, alpha, user, common)
        except SimulationError:  # a neuron turned non-finite: each point alone, so only the broken ones are lost
            pass
    runs, valid = [], []
    for i in range(n if points else 1):
        one = lambda v: v[i] if np.ndim(v) else v  # noqa: E731
        current_i = neuron_current(current, i) if INPUT_AXIS in points else current
        try:
            run = simulate(spec.model, params={k: one(v) for k, v in params.items()}, current=current_i,
                           alpha=None if alpha is None else one(alpha),
                           **dict(common, initial={k: one(v) for k, v in initial.items()} or None))
            valid.append(run.status == "success")
        except SimulationError:
            run = None
            valid.append(False)
        runs.append(run)
    trains = [np.zeros(0) if r is None else np.asarray(r.spikes)[(r.spikes > spec.onset) & (r.spikes <= spec.t_end)]
              for r in runs]
    steps = sum(0 if r is None else len(r.t) for r in runs)
    return Block(trains, np.array([t.size for t in trains]), spec.onset, spec.t_end, runs, valid=np.array(valid)), steps


def _population_run(spec, n, params, current, alpha, user, common):
    """The block as one population run, its spike buffer grown to every spike if the first one overflowed; the
    points stopped by the runaway guard (NaN at t_end) are marked invalid."""
    recorded = int(math.ceil(n * RECORDED_RATE_HZ * (spec.t_end - spec.t0) / 1000.0)) + 1000
    end = spec.t_end
    if registry.get(common["method"]).family == "fractional":  # its uniform grid's last node
        step = resolve(spec.model, spec.preset, t_end=spec.t_end, t0=spec.t0, dt=common["dt"]).dt
        end = spec.t0 + math.floor((spec.t_end - spec.t0) / step + 1e-9) * step
    for attempt in range(2):
        trajectory = simulate(spec.model, params=params, current=current, alpha=alpha,
                              save_at=None if user else [end], max_recorded_spikes=recorded, **common)
        if len(trajectory.spikes) == int(np.sum(trajectory.spike_counts)):
            break
        # the buffer was too small: again, with room for every spike even where the neuron blocks of the
        # fixed-step loop, which share the buffer out evenly, hold most of them
        block = min(NEURON_BLOCK, n)
        busiest = max(int(np.sum(trajectory.spike_counts[i:i + block])) for i in range(0, n, block))
        recorded = int(math.ceil(busiest * n / block)) + 1000
    else:
        raise SimulationError(f"{len(trajectory.spikes)} of {int(np.sum(trajectory.spike_counts))} spike times "
                              f"recorded with room for {recorded}; the metrics need them all")
    trains, counts = _trains(trajectory, n, spec.onset, spec.t_end)
    valid = np.all([np.isfinite(values[-1]) for values in trajectory.states.values()], axis=0)
    steps = n * int(round((spec.t_end - spec.t0) / trajectory.dt))
    return Block(trains, counts, spec.onset, spec.t_end, trajectory, valid=valid), steps


def run_chunk(spec: SweepSpec, chunk: tuple[int, ...]) -> dict[str, float]:
    """Compute one block of the grid at every (dt, method) and write its metrics and completion marker to the
    store. Returns the task's statistics (points, neuron-steps, seconds)."""
    import zarr

    from .compiled import enable_disk_cache

    enable_disk_cache()
    began = time.perf_counter()
    points, real = _points(spec, chunk)
    outer = spec.outer
    combos = list(itertools.product(*(range(len(a.values)) for a in outer)))
    results = {m.name: np.empty((*(len(a.values) for a in outer), spec.block_size), dtype=m.dtype)
               for m in spec.metrics}
    reference = None
    if any(m.needs_reference for m in spec.metrics):
        reference_block, _ = _run(spec, points, spec.reference, None, True)
        reference = reference_block.trains
    steps, compile_time = 0, 0.0
    for combo in combos:
        chosen = {a.name: a.values[i] for a, i in zip(outer, combo)}
        method = str(chosen.get("method", spec.method))
        dt = float(chosen["dt"]) if "dt" in chosen else spec.dt
        single = not registry.get(method).populations
        block, done = _run(spec, points, method, dt, single)
        if reference is not None:
            block.reference = reference
            block.valid = block.valid & reference_block.valid
        steps += done
        compile_time += getattr(block.trajectory, "compile_time_s", 0.0) or 0.0
        for metric in spec.metrics:
            results[metric.name][combo] = np.where(block.valid, metric.compute(block), metric.fill)
    group = zarr.open_group(spec.store, mode="r+")
    region = spec.region(chunk)
    shape = tuple(s.stop - s.start for s in region)
    for metric in spec.metrics:
        values = results[metric.name][..., :real].reshape(*results[metric.name].shape[:-1], *shape)
        group[metric.name][_dataset_index(spec, region)] = np.moveaxis(values, *_task_to_dataset(spec))
    group[MARKER][chunk] = 1
    return {"points": real, "neuron_steps": steps * real / spec.block_size, "seconds": time.perf_counter() - began,
            "compile_s": compile_time}


def _task_to_dataset(spec: SweepSpec):
    """Axis moves from the task's layout (outer axes, then vectorised) to the dataset's (the grid's order)."""
    task_order = [a.name for a in spec.outer] + [a.name for a in spec.vectorised]
    dataset_order = [a.name for a in spec.axes]
    return list(range(len(task_order))), [dataset_order.index(name) for name in task_order]


def _dataset_index(spec: SweepSpec, region) -> tuple[slice, ...]:
    vector = dict(zip([a.name for a in spec.vectorised], region))
    return tuple(vector.get(a.name, slice(None)) for a in spec.axes)


# --- the store --------------------------------------------------------------------------------------------------
def _template(spec: SweepSpec):
    """The dataset's coordinates, attributes and empty (lazy) variables, chunked as the tasks write them."""
    import dask.array as da
    import xarray as xr

    dims = [a.name for a in spec.axes]
    block = dict(zip([a.name for a in spec.vectorised], spec.block_shape))
    chunks = tuple(block.get(a.name, len(a.values)) for a in spec.axes)
    shape = tuple(len(a.values) for a in spec.axes)
    model = models.get(spec.model)
    variables = {}
    for metric in spec.metrics:
        variables[metric.name] = (dims, da.full(shape, metric.fill, dtype=metric.dtype, chunks=chunks),
                                  {"units": metric.unit, "long_name": metric.description, **metric.attrs})
    counts = spec.chunk_counts
    variables[MARKER] = ([f"chunk_{a.name}" for a in spec.vectorised],
                         da.zeros(counts, dtype="uint8", chunks=(1,) * len(counts)),
                         {"long_name": "1 where the block's metrics are written (a rerun skips it)"})
    units = {name: p.unit for name, p in model.params.items()}
    units.update({INPUT_AXIS: model.current_unit, ORDER_AXIS: "1", "dt": "ms", "method": ""})
    units.update({f"{ORDER_AXIS}_{s}": "1" for s in model.states})
    # method names as variable-length strings (zarr v3 has a specification for those, not for fixed-width ones)
    coords = {a.name: (a.name, a.values.astype(object) if a.values.dtype.kind == "U" else a.values,
                       {"units": units[a.name]}) for a in spec.axes}
    attrs = {"model": model.name, "metrics": [m.name for m in spec.metrics], "precision": spec.precision,
             "t_end_ms": spec.t_end, "t0_ms": spec.t0, "onset_ms": spec.onset,
             "events": spec.events, "input": repr(spec.current), "neurospike_sweep": spec.fingerprint()}
    if "method" not in dims:
        attrs["method"] = spec.method
    if "dt" not in dims and spec.dt is not None:
        attrs["dt_ms"] = spec.dt
    if spec.alpha is not None:
        attrs["alpha"] = json.dumps(_plain(spec.alpha))
    if "pattern" in [m.name for m in spec.metrics]:
        attrs["pattern_classes"] = list(PATTERN_CLASSES)
    return xr.Dataset(variables, coords=coords, attrs=attrs), chunks


def _open_store(spec: SweepSpec, overwrite: bool) -> np.ndarray:
    """Create the store (metadata and coordinates only) or check that an existing one holds this sweep; returns
    the completion markers."""
    import zarr

    path = Path(spec.store)
    if path.exists() and not overwrite:
        try:
            group = zarr.open_group(spec.store, mode="r")
            held = group.attrs.get("neurospike_sweep")
        except Exception:  # noqa: BLE001 - not a zarr store at all
            held = None
        if held is None:
            raise NeurospikeError(f"store {spec.store!r} exists and is not a neurospike sweep; give another path")
        if held != spec.fingerprint():
            raise NeurospikeError(f"store {spec.store!r} holds a different sweep (other model, grid, metrics or "
                                  f"settings); give another path or overwrite it")
        return np.asarray(group[MARKER][...])
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    dataset, _ = _template(spec)
    dataset.to_zarr(spec.store, mode="w", compute=False, consolidated=False)
    return np.zeros(spec.chunk_counts, dtype="uint8")


# --- running ----------------------------------------------------------------------------------------------------
def _client(client, workers: int | None, log: Callable[[str], None]):
    """(the Dask client to use, whether this call started it): a given Client, an address of a running scheduler,
    or a LocalCluster of one-thread worker processes (``workers``, default one per core)."""
    from distributed import Client, LocalCluster

    if isinstance(client, Client):
        return client, False
    if isinstance(client, str):
        try:
            return Client(client, timeout="20s"), True
        except (OSError, TimeoutError) as error:
            raise NeurospikeError(f"no Dask scheduler answers at {client!r} ({error})") from None
    import jax

    accelerated = jax.default_backend() != "cpu"
    count = workers or (jax.device_count() if accelerated else len(os.sched_getaffinity(0)))
    # one XLA CPU device per worker: the worker is the unit of parallelism here (the client's environment would
    # give each worker one device per core); on a GPU, one worker per device, each allocating only what it uses
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                     if "xla_force_host_platform_device_count" not in f)
    cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0",
                           env={"NEUROSPIKE_HOST_DEVICES": "1", "XLA_FLAGS": flags,
                                "XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
    log(f"Dask LocalCluster: {count} worker(s), dashboard {cluster.dashboard_link}")
    return Client(cluster), True


def _check_installed() -> None:
    """One line naming the ``sweep`` extra when dask, distributed, xarray or zarr is missing."""
    import importlib.util

    missing = [name for name in ("dask", "distributed", "xarray", "zarr") if importlib.util.find_spec(name) is None]
    if missing:
        raise NeurospikeError(f"sweeps need the sweep extra ({', '.join(missing)} missing): "
                              f"pip install 'neurospike[sweep]'")


def sweep(model, grid: Mapping[str, Any], *, method: str = "rk4", metrics=DEFAULT_METRICS, preset=None,
          t_end=None, t0: float = 0.0, dt=None, params=None, current=None, initial=None, alpha=None,
          events: str = "located", max_rate=None, onset=None, store=None, client=None, workers: int | None = None,
          chunk_size: int | None = None, task_memory: float = DEFAULT_TASK_MEMORY, overwrite: bool = False,
          progress: Callable | None = None, log: Callable[[str], None] | None = None, precision: str = "float64"):
    """Map ``metrics`` over ``grid`` ({axis: values}) and return an ``xarray.Dataset`` (one dimension per axis, one
    variable per metric), opened lazily from the zarr ``store`` (None: a temporary store, loaded into memory).

    Axes: parameters of ``model``, ``I`` (input amplitude), ``alpha`` / ``alpha_STATE`` (Caputo order of every
    state / of one; a fractional ``method``), ``dt`` and ``method``; the other arguments are
    :func:`neurospike.simulate`'s for every run. Metrics:
    ``count``, ``rate`` (Hz), ``cv``, ``first_spike`` (ms after ``onset``, default the input's first change),
    ``pattern`` (:data:`neurospike.patterns.PATTERN_CLASSES` codes), ``spike_error`` (ms, against the reference
    method), or a function of one neuron's Trajectory (its name names the variable).

    ``client``: None starts a LocalCluster of ``workers`` one-thread processes (its dashboard link goes to
    ``log``); a ``distributed.Client`` or a scheduler address (``"tcp://host:8786"``) uses that cluster (its
    workers must reach ``store``); ``"serial"`` runs the tasks in this process. ``chunk_size``: grid points per
    task (default up to 4096, within ``task_memory`` bytes). A rerun with the same ``store`` computes only the
    blocks not yet done (``overwrite=True`` starts afresh). ``progress(done, total, label)`` follows the blocks.
    ``precision="float32"``: fixed-step populations in single precision (float64 by default)."""
    _check_installed()
    import xarray as xr

    log = log or (lambda message: None)
    temporary = None
    if store is None:
        temporary = tempfile.mkdtemp(prefix="neurospike-sweep-")
        store = os.path.join(temporary, "sweep.zarr")
    spec = plan(model, grid, method=method, metrics=metrics, preset=preset, t_end=t_end, t0=t0, dt=dt,
                params=params, current=current, initial=initial, alpha=alpha, events=events, max_rate=max_rate,
                onset=onset, chunk_size=chunk_size, task_memory=task_memory, store=store, precision=precision)
    if client is not None and not isinstance(client, str) and type(client).__name__ != "Client":
        raise NeurospikeError(f"client={client!r}: give None, 'serial', a scheduler address or a distributed.Client")
    done = _open_store(spec, overwrite)
    pending = [chunk for chunk in spec.chunks() if not done[chunk]]
    total = len(spec.chunks())
    began = time.perf_counter()
    stats = _compute(spec, pending, total - len(pending), total, client, workers, progress, log)
    wall = time.perf_counter() - began
    import zarr

    group = zarr.open_group(spec.store, mode="r+")
    steps = sum(s["neuron_steps"] for s in stats)
    group.attrs.update({"chunks_computed": len(stats), "chunks_skipped": total - len(pending),
                        "wall_time_s": round(wall, 3),
                        "neuron_steps_per_s": float(f"{steps / wall:.3g}") if stats and wall > 0 else None,
                        "derived_initial": list(spec.derived_initial)})
    dataset = xr.open_zarr(spec.store, consolidated=False)
    if temporary is not None:
        dataset = dataset.load()
        shutil.rmtree(temporary, ignore_errors=True)
    return dataset


def _compute(spec, pending, skipped, total, client, workers, progress, log) -> list[dict]:
    progress = progress or (lambda done, total, label: None)
    stats: list[dict] = []

    def report():
        steps = sum(s["neuron_steps"] for s in stats)
        seconds = time.perf_counter() - began
        rate = steps / seconds if seconds > 0 else 0.0
        left = len(pending) - len(stats)
        eta = seconds / len(stats) * left if stats else math.nan
        progress(skipped + len(stats), total, f"{rate:.3g} neuron-steps/s, ETA {eta:.0f} s" if stats else "starting")

    began = time.perf_counter()
    report()
    if not pending:
        return stats
    if client == "serial":
        for chunk in pending:
            stats.append(run_chunk(spec, chunk))
            report()
        return stats
    from distributed import as_completed

    dask_client, started = _client(client, workers, log)
    try:
        futures = [dask_client.submit(run_chunk, spec, chunk, key=f"neurospike-sweep-{_key(spec, chunk)}",
                                      pure=False) for chunk in pending]
        for future in as_completed(futures):
            stats.append(future.result())
            report()
    finally:
        if started:
            cluster = dask_client.cluster
            dask_client.close()
            if cluster is not None:
                cluster.close()
    return stats


def _key(spec: SweepSpec, chunk) -> str:
    return f"{abs(hash(spec.fingerprint())) % 10**8}-{'-'.join(map(str, chunk))}-{time.time_ns()}"


# --- figures and the summary ------------------------------------------------------------------------------------
def _label(dataset, name: str) -> str:
    """The axis label of a grid axis or metric with its unit ("dimensionless" for "1"; none for names)."""
    from .figures import axis_label

    variable = dataset[name]
    title = {"I": "input I", "alpha": "order α", "dt": "step dt", "count": "spike count"}.get(name, name)
    title = f"order α of {name[6:]}" if name.startswith("alpha_") else title
    return title if variable.dtype.kind in "USO" else axis_label(title, variable.attrs.get("units", ""))


def _edges(values) -> tuple[float, float]:
    """The outer edges of a uniform axis's first and last cells (half a spacing beyond the values)."""
    half = (values[-1] - values[0]) / (2 * (len(values) - 1)) if len(values) > 1 else 0.5
    return values[0] - half, values[-1] + half


def plot_map(dataset, path):
    """One panel per metric: a heat map over a 2-d grid (the pattern class as a categorical map with a legend), a
    line over a 1-d grid. Returns the figure."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    from .figures import save, subplots

    dims = [d for d in dataset.dims if not d.startswith("chunk_")]
    if len(dims) > 2:
        raise NeurospikeError(f"--plot draws 1-d and 2-d grids; this one has {len(dims)} axes ({', '.join(dims)})")
    names = list(dataset.attrs.get("metrics", [n for n in dataset.data_vars if n != MARKER]))
    figure, axes = subplots(1, len(names), figsize=(5.2 * len(names), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        values = dataset[name].transpose(*dims).values.astype(float)
        values = np.where(values == -1, np.nan, values) if dataset[name].dtype.kind == "i" else values
        if len(dims) == 1:
            x = dataset[dims[0]].values
            ax.plot(np.arange(len(x)) if x.dtype.kind in "US" else x, values, marker="o", ms=3)
            if x.dtype.kind in "US":
                ax.set_xticks(np.arange(len(x)), x)
            ax.set_xlabel(_label(dataset, dims[0]))
            ax.set_ylabel(_label(dataset, name))
            ax.set_title(dataset[name].attrs.get("long_name", name), fontsize=9)
            continue
        y, x = (dataset[d].values for d in dims)
        extent = None if x.dtype.kind in "US" or y.dtype.kind in "US" else (*_edges(x), *_edges(y))
        if name == "pattern":
            classes = list(PATTERN_CLASSES)
            colours = ListedColormap(["#eeeeee", "#9ecae1", "#31a354", "#3182bd", "#d62728", "#fdae6b", "#756bb1"])
            image = ax.imshow(values, origin="lower", aspect="auto", extent=extent, cmap=colours,
                              norm=BoundaryNorm(np.arange(len(classes) + 1) - 0.5, len(classes)),
                              interpolation="nearest")
            present = sorted({int(v) for v in values[np.isfinite(values)].ravel()})
            ax.legend(handles=[Patch(color=colours(k), label=classes[k]) for k in present], fontsize=7,
                      loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        else:
            image = ax.imshow(values, origin="lower", aspect="auto", extent=extent, interpolation="nearest")
            figure.colorbar(image, ax=ax, label=_label(dataset, name))
        if extent is None:
            ax.set_xticks(np.arange(len(x)), x)
            ax.set_yticks(np.arange(len(y)), y)
        ax.set_xlabel(_label(dataset, dims[1]))
        ax.set_ylabel(_label(dataset, dims[0]))
        ax.set_title(dataset[name].attrs.get("long_name", name), fontsize=9)
    figure.suptitle(f"{dataset.attrs.get('model', '')}: " + " × ".join(dims), fontsize=10)
    save(figure, path, dpi=110)
    return figure


def summary_markdown(dataset, command: str | None = None) -> str:
    """The sweep's grid, settings, command and timings as Markdown (the CLI writes it beside the store)."""
    attrs = dataset.attrs
    dims = [d for d in dataset.dims if not d.startswith("chunk_")]
    rows = []
    for d in dims:
        values = dataset[d].values
        shown = (", ".join(map(str, values)) if values.dtype.kind in "US" else
                 ", ".join(f"{v:g}" for v in values) if values.size <= 6 else f"{values[0]:g} … {values[-1]:g}")
        rows.append(f"| {d} | {values.size} | {shown} | {dataset[d].attrs.get('units', '')} |")
    points = int(np.prod([dataset.sizes[d] for d in dims]))
    lines = [f"# Sweep of {attrs.get('model')}", "", "| axis | points | values | unit |", "|---|---|---|---|", *rows,
             "", f"- {points} grid points; metrics: {', '.join(n for n in dataset.data_vars if n != MARKER)}",
             f"- t_end {attrs.get('t_end_ms')} ms, onset {attrs.get('onset_ms')} ms, events {attrs.get('events')}"
             + (f", method {attrs['method']}" if "method" in attrs else "")
             + (f", dt {attrs['dt_ms']} ms" if "dt_ms" in attrs else ""),
             f"- input: `{attrs.get('input')}`",
             f"- this run: {attrs.get('chunks_computed')} block(s) computed, {attrs.get('chunks_skipped')} already "
             f"done, {attrs.get('wall_time_s')} s wall, {attrs.get('neuron_steps_per_s')} neuron-steps/s"]
    if command:
        lines += ["", "```", command, "```"]
    return "\n".join(lines) + "\n"

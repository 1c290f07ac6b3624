"""One neuron running live, for the browser app: each frame advanced in one compiled call of the project's own
loops, which also thins the frame to the points the page draws.

Integer order: :func:`neurospike.solvers.fixed_step.run`, the loop every fixed-step method uses (located spike
events, refractory periods, the rate and non-finite guards), its refractory end and last spike time carried from
frame to frame. Fractional order (Caputo, every state of order α): the L1 scheme with the sum-of-exponentials
history (``fast-l1``, :func:`neurospike.solvers.fractional.l1_loop`), its weights fitted to ``HORIZON_STEPS``
steps and its memory carried from frame to frame: O(1) work and memory per step however long the session runs
(the direct L1 sum grows with every step, so it cannot run live).

A frame's step count is traced: the loop is compiled for a size of 64, 512, 4096 or 32768 steps (``frame_size``;
a longer advance runs several calls) and runs only the steps asked for. In the same call the spikes' states just
before and after each reset are merged in at the spike times and, for the page, the rows thinned to ``points``
(the min and max of v in each of points/2 buckets, so every spike peak survives).

Parameters, the input amplitude, α and dt are traced arguments: moving a slider never recompiles (a frame of
another size, or a dt in another power-of-two class, ``block_spikes``, compiles once). The input is the constant
amplitude of the ``I`` slider. Memory per session is bounded: the recent spike times only.
"""

from __future__ import annotations

import collections
import copy
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import currents, models
from . import methods as registry
from .compiled import run_compiled
from .errors import NeurospikeError, closest
from .simulate import DEFAULT_MAX_RATE_HZ
from .solvers import fixed_step, fractional

LIVE_METHODS = registry.names(live=True, fractional=False)
FRACTIONAL_LIVE_METHODS = registry.names(live=True, fractional=True)
MIN_FRAME_STEPS = 64  # the smallest compiled frame; the sizes go up by FRAME_SIZE_RATIO
FRAME_SIZE_RATIO = 8  # few sizes, so few compiles (steps cost nothing beyond the frame's own; rows are cheap)
MAX_FRAME_STEPS = MIN_FRAME_STEPS * FRAME_SIZE_RATIO**3  # 32768, the largest (a longer advance runs several)
HORIZON_STEPS = 10**7  # fast-l1 weights fit this many steps (1000 s at dt 0.1 ms; 200 exponentials)
DEFAULT_ALPHA = 0.8
ALPHA_RANGE = (0.3, 0.99)  # α = 1 is the integer-order model; fast-l1 has no modes there (another compiled shape)
DT_RANGE = (0.001, 0.5)  # ms
RATE_WINDOW_MS = 1000.0
SPIKES_KEPT = int(RATE_WINDOW_MS * DEFAULT_MAX_RATE_HZ / 1000.0)  # the firing rate's window at the rate guard
INPUT_HEADROOM = 3.0  # the I slider spans ± this many times the preset's input


def frame_size(steps: int) -> int:
    """The compiled size of a frame of ``steps`` steps: the first of 64, 512, 4096, 32768 that holds them."""
    size = MIN_FRAME_STEPS
    while size < steps:
        size *= FRAME_SIZE_RATIO
    return size


def block_spikes(size: int, dt: float) -> int:
    """Spikes one block of the integer-order loop can hold: the rate guard's rate over the block's time at the
    power of two at or above ``dt`` (so the dts of one class share a compiled frame), plus 2."""
    dt_class = 2.0 ** math.ceil(math.log2(dt))
    return int(math.ceil(min(size, fixed_step.BLOCK) * dt_class * DEFAULT_MAX_RATE_HZ / 1000.0)) + 2


def preset_input(model, preset) -> float:
    """The amplitude the I slider starts at: the preset input's largest magnitude over its run (a step's level,
    a pulse's height), 0 for none."""
    if preset.current is None:
        return 0.0
    t = np.linspace(0.0, preset.t_end, 4001)
    values = np.asarray(preset.current(t), dtype=float)
    return float(values[np.argmax(np.abs(values))])


def input_range(model, preset) -> tuple[float, float]:
    """The I slider's range: ± ``INPUT_HEADROOM`` times the preset's input (the model's largest preset input
    when the preset has none), rounded up to 1-2-5."""
    largest = abs(preset_input(model, preset)) or max(abs(preset_input(model, p)) for p in model.presets.values())
    span = INPUT_HEADROOM * (largest or 1.0)
    nice = 10.0 ** math.floor(math.log10(span))
    span = next(m * nice for m in (1, 2, 5, 10) if m * nice >= span)
    return -span, span


def frame_rows(times, trace, spike_times, before, after, kept, last_good, points):
    """Inside a compiled frame: the rows it returns. ``times`` (S,) and ``trace`` (S, n): the nodes after each
    step, the first ``kept`` of them valid; ``spike_times`` (K,) in time order where finite (NaN elsewhere), with
    the states ``before``/``after`` each reset; spikes after ``last_good`` (a halted run's last good node) are
    dropped. Returns (row times, row states, row count, spike times, spike count): the nodes with each spike's two
    states inserted at its time (before the node at or after it), all of them (``points`` None) or at most
    ``points`` (the min and max of v in each of points/2 equal buckets, in time order, so every spike peak
    survives); the spike times compacted to the front."""
    size, n = trace.shape
    capacity = spike_times.shape[0]
    spiked = jnp.isfinite(spike_times) & (spike_times <= last_good)
    count = jnp.sum(spiked)
    slot = jnp.where(spiked, jnp.cumsum(spiked) - 1, capacity)
    spike_times = jnp.full((capacity,), jnp.inf).at[slot].set(spike_times, mode="drop")
    before, after = (jnp.zeros((capacity, n)).at[slot].set(states, mode="drop") for states in (before, after))
    step = jnp.arange(size)
    position = jnp.searchsorted(jnp.where(step < kept, times, jnp.inf), spike_times, side="left")
    position = jnp.where(jnp.arange(capacity) < count, position, size + 1)  # unused slots: dropped below
    shift = jnp.zeros((size + 1,), dtype=position.dtype).at[position].add(2, mode="drop")
    total = max(size + 2 * capacity, points or 0)  # unused nodes and spike slots go to row ``total``: dropped
    node_row = jnp.where(step < kept, step + jnp.cumsum(shift)[:size], total)
    spike_row = jnp.where(position <= size, position + 2 * jnp.arange(capacity), total)
    row_times, rows = jnp.full((total,), jnp.inf), jnp.zeros((total, n))
    placed = ((node_row, times, trace), (spike_row, spike_times, before), (spike_row + 1, spike_times, after))
    for index, t, y in placed:
        row_times, rows = row_times.at[index].set(t, mode="drop"), rows.at[index].set(y, mode="drop")
    m = kept + 2 * count
    if points is not None:
        keep, m = thin(rows[:, 0], m, points)
        row_times, rows = row_times[keep], rows[keep]
    return row_times, rows, m, spike_times, count


def thin(values, m, points):
    """Row indices (``points``,) keeping at most ``points`` of the first ``m`` rows of ``values``: all of them
    when they fit, else the first min and the first max in each of points/2 consecutive buckets of ceil(m /
    (points/2)) rows, in time order; and how many are kept (the rest of the indices are padding)."""
    total = values.shape[0]
    buckets = points // 2
    row = jnp.arange(total)
    width = jnp.maximum(1, -(-m // buckets))
    bucket = jnp.where(row < m, row // width, buckets)  # rows past m: a bucket of their own, dropped
    ends = []
    for reduce in (jax.ops.segment_min, jax.ops.segment_max):
        extreme = reduce(values, bucket, num_segments=buckets + 1)
        ends.append(jax.ops.segment_min(jnp.where(values == extreme[bucket], row, total), bucket,
                                        num_segments=buckets + 1)[:buckets])
    keep = jnp.sort(jnp.concatenate(ends))
    keep = jnp.where((keep < m) & jnp.concatenate([jnp.array([True]), keep[1:] != keep[:-1]]), keep, total)
    keep = jnp.sort(keep)
    fits = m <= points
    indices = jnp.where(fits, jnp.arange(points), jnp.pad(keep, (0, points - keep.shape[0]), constant_values=total))
    return jnp.minimum(indices, total - 1), jnp.where(fits, m, jnp.sum(keep < total))


def integer_frame(config, values, steps, names, size, points):
    """One frame of the fixed-step loop: ``steps`` (traced) steps of ``dt`` from ``t`` in a loop compiled for
    ``size``; the frame's rows (:func:`frame_rows`), the last good node's time and state, and the final status.
    Every float the frame reads comes in one vector ``values`` (t, dt, the rate guard's minimum interval, the
    carried refractory end and last spike, the input, the parameters ``names``, then the state): a call costs
    ~5 µs per argument array, 0.1 ms of a 0.6 ms frame when they were 18."""
    t, dt, min_interval, refractory_end, last, amplitude = (values[k] for k in range(6))
    params = {name: values[6 + k] for k, name in enumerate(names)}
    y0 = values[6 + len(names):]
    current = currents.Piecewise(baseline=amplitude)
    carried = {"refractory_end": refractory_end, "last": last}
    nodes = t + dt * jnp.minimum(jnp.arange(size + 1), steps)
    trace, spikes, _, status = fixed_step.run(config, params, current, y0, nodes, min_interval, carried, steps=steps)
    # the loop halts at the start of the failing step (a rate halt: at the spike): the last good node
    last_good = jnp.where(status["halted"], status["halt_time"], jnp.inf)
    kept = jnp.where(status["halted"], jnp.sum((nodes[1:] <= last_good + 1e-9 * dt) & (jnp.arange(size) < steps)),
                     steps)
    spike_times, before, after = (buffer.reshape(-1, *buffer.shape[2:]) for buffer in spikes)
    rows = frame_rows(nodes[1:], trace, spike_times, before, after, kept, last_good, points)
    return rows, nodes[kept], jnp.where(kept > 0, trace[jnp.maximum(kept - 1, 0)], y0), status


def fractional_frame(model, size, points, params, current, y0, constants, scale, t, dt, resume, steps):
    """One frame of fast-l1 (implicit, located spikes): ``steps`` (traced) steps in a loop compiled for ``size``;
    the frame's rows (:func:`frame_rows`), the last good node's time and state, the halt time (NaN: none) and
    the history to resume from."""
    trace, _, memory, spike_time, before, after, halt_time, refractory_end = fractional.l1_loop(
        model, size, True, True, "soe", params, current, y0, constants, scale, t, dt, resume, steps)
    times = t + dt * jnp.arange(1, size + 1)
    halted = ~jnp.isnan(halt_time)
    last_good = jnp.where(halted, halt_time - dt, jnp.inf)  # halt_time: the first non-finite node
    kept = jnp.where(halted, jnp.sum((times <= last_good + 1e-9 * dt) & (jnp.arange(size) < steps)), steps)
    rows = frame_rows(times, trace[1:], spike_time, before, after, kept, last_good, points)
    return rows, t + dt * kept, trace[kept], halt_time, (memory, refractory_end)


class LiveSimulation:
    """One neuron: :meth:`advance` runs simulated time and returns its samples; :meth:`set_value` moves a slider
    (a parameter, ``I`` or ``alpha``); :meth:`configure` switches solver or dt and keeps the state."""

    def __init__(self, model: str = "izhikevich", preset: str | None = None, method: str | None = None,
                 dt: float | None = None, fractional: bool = False):
        if model not in models.REGISTRY:
            raise NeurospikeError(f"unknown model {model!r}{closest(model, models.REGISTRY)}; models are "
                                  f"{', '.join(models.REGISTRY)}")
        self.model = models.get(model)
        self.preset = self.model.preset(preset)
        self.fractional = bool(fractional)
        self.alpha = DEFAULT_ALPHA if self.fractional else 1.0
        self.method = FRACTIONAL_LIVE_METHODS[0] if self.fractional else "rk4"
        self.dt = 0.1
        self.params = {**self.model.defaults(), **self.preset.params}
        self.amplitude = preset_input(self.model, self.preset)
        self.input_range = input_range(self.model, self.preset)
        self.configure(method=method, dt=dt if dt is not None else self.preset.dt)
        self.reset()

    @property
    def methods(self) -> tuple[str, ...]:
        return FRACTIONAL_LIVE_METHODS if self.fractional else LIVE_METHODS

    def reset(self):
        """Back to the preset's initial state at t = 0 (the slider values stay)."""
        self.y = self._start()
        self.t = 0.0
        self.target = 0.0
        self.spike_times: collections.deque = collections.deque(maxlen=SPIKES_KEPT)
        self.spike_count = 0
        self.carried = {"refractory_end": -np.inf, "last": -np.inf}  # integer-order loop state across chunks
        self.memory = None  # fractional history across chunks
        self.halted: str | None = None

    def configure(self, method: str | None = None, dt: float | None = None):
        """Another solver or step from the current state on. A new dt restarts a fractional history (its weights
        belong to one grid)."""
        if method is not None and method not in self.methods:
            kind = "fractional" if self.fractional else "integer-order"
            raise NeurospikeError(f"method {method!r}: the live {kind} model runs {', '.join(self.methods)}")
        if dt is not None and not DT_RANGE[0] <= dt <= DT_RANGE[1]:
            raise NeurospikeError(f"dt={dt:g} ms is outside [{DT_RANGE[0]:g}, {DT_RANGE[1]:g}]")
        if method is not None:
            self.method = method
        if dt is not None:
            if dt != self.dt:
                self.memory = None
            self.dt = float(dt)

    def set_value(self, name: str, value: float):
        """A slider: the input amplitude ``I``, the order ``alpha`` (fractional models) or a parameter, each within
        its range."""
        if name == "I":
            low, high = self.input_range
        elif name == "alpha":
            if not self.fractional:
                raise NeurospikeError("alpha: this model is integer-order; pick its fractional variant")
            low, high = ALPHA_RANGE
        elif name in self.model.params:
            low, high = self.model.params[name].range or (-math.inf, math.inf)
        else:
            raise NeurospikeError(f"unknown parameter {name!r} for model {self.model.name!r}"
                                  f"{closest(name, self.model.params)}")
        if not (math.isfinite(value) and low <= value <= high):
            raise NeurospikeError(f"{name}={value:g} is outside [{low:g}, {high:g}]")
        if name == "I":
            self.amplitude = float(value)
        elif name == "alpha":
            # the history's modes are kept: their decays (nodes) are those of the Gauss-Legendre intervals, the
            # same for every α, except the first interval's Gauss-Jacobi nodes, which move with α (a change
            # 0.7 -> 0.55 leaves ~1e-7 mV against a direct L1 sum run with the same α schedule)
            self.alpha = float(value)
        else:
            self.params[name] = float(value)

    def advance(self, duration_ms: float, points: int | None = None) -> dict[str, Any]:
        """Run ``duration_ms`` more simulated time (whole steps; the rounding is carried to the next call), in one
        compiled call (``MAX_FRAME_STEPS`` steps at most per call). Returns the times ``t`` (m,) and states ``y``
        (m, n): the state after each step, and at each spike the states just before and after it (two rows at the
        spike time), or with ``points`` at most that many of those rows per call (min/max of v per bucket, so every
        spike peak survives); the new spike times; and, if the run had to stop (non-finite state, spikes faster than
        the rate guard), ``halted`` with the reason."""
        self.target += duration_ms
        times, rows, spikes = [], [], []
        while self.halted is None:
            steps = round((self.target - self.t) / self.dt)
            if steps <= 0:
                break
            t, y, new_spikes = self._frame(min(steps, MAX_FRAME_STEPS), points)
            times.append(t)
            rows.append(y)
            spikes.append(new_spikes)
        n = self.model.n_states
        spikes = np.concatenate(spikes) if spikes else np.zeros(0)
        self.spike_times.extend(spikes.tolist())
        self.spike_count += len(spikes)
        return {"t": np.concatenate(times) if times else np.zeros(0),
                "y": np.concatenate(rows) if rows else np.zeros((0, n)), "spikes": spikes, "halted": self.halted}

    def firing_rate(self) -> float:
        """Spikes per second over the last ``RATE_WINDOW_MS`` of simulated time."""
        recent = sum(1 for s in self.spike_times if s > self.t - RATE_WINDOW_MS)
        return 1000.0 * recent / min(RATE_WINDOW_MS, max(self.t, 1e-9))

    def phase_plane(self, points: int = 200) -> dict[str, Any]:
        """The phase plane: the first state (v) against the last, the recovery variable (u, w; HH's n), with the
        model's nullclines (none for a model without them: Hodgkin-Huxley), or for a one-state model v against
        dv/dt with the curve dv/dt(v). The x range spans the reset (or start) to just above the spike level."""
        x_name = self.model.states[0]
        v = np.linspace(*self._x_range(), points)
        if self.model.n_states == 1:
            slope = self._slope(v[:, None])
            derivative = f"D^α {x_name}" if self.fractional else f"d{x_name}/dt"  # the right-hand side f(v)
            return {"x": x_name, "y": derivative, "grid": v.tolist(),
                    "curves": [{"name": derivative, "y": slope.tolist()},
                               {"name": f"{derivative} = 0", "y": np.zeros_like(v).tolist()}]}
        curves = []
        if self.model.nullclines is not None:
            with np.errstate(all="ignore"):
                values = self.model.nullclines(v, self.params, self.amplitude)
            for name, y in zip((x_name, self.model.states[-1]), values):
                y = np.broadcast_to(np.asarray(y, dtype=float), v.shape)
                curves.append({"name": f"{name}-nullcline", "y": [float(x) if np.isfinite(x) else None for x in y]})
        return {"x": x_name, "y": self.model.states[-1], "grid": v.tolist(), "curves": curves}

    def phase_y(self, y: np.ndarray) -> np.ndarray:
        """The phase plane's y coordinate of states ``y`` (m, n): the last state, or f(v) (dv/dt, or D^α v in
        fractional order) for one state."""
        return y[:, -1] if self.model.n_states > 1 else self._slope(y)

    def _slope(self, y):
        return np.asarray(self.model.derivatives(self.t, tuple(y.T), self.params, self.amplitude, np)[0], dtype=float)

    def _x_range(self):
        rule = self.model.spike
        scale = self.model.state_scales[0] if self.model.state_scales else 100.0
        start = self._start()
        low = high = float(start[0])
        if rule is not None:
            high = max(high, float(self.params[rule.level]))
            if rule.reset is not None:
                low = min(low, float(rule.reset(tuple(start), self.params)[0]))
        return low - 0.2 * scale, high + 0.1 * scale

    def _start(self) -> np.ndarray:
        start = dict(zip(self.model.states, self.model.initial_state(self.params, np)))
        start.update(self.preset.initial or {})
        return np.array([float(start[s]) for s in self.model.states])

    def _frame(self, steps: int, points: int | None):
        """``steps`` steps in one compiled call; the new state, carried status and halt taken from it. Returns
        the frame's rows (times, states) and spike times (:func:`frame_rows`)."""
        size = frame_size(steps)
        if self.fractional:
            current = currents.constant(np.float64(self.amplitude))
            orders = np.full(self.model.n_states, self.alpha)
            args = (*fractional.l1_arguments(self.params, current, self.y, orders, self.t, self.dt, "soe",
                                             fractional.FAST_L1_TOLERANCE, HORIZON_STEPS, self.memory),
                    np.int64(steps))
            model = self.model
            outputs, _, _ = run_compiled(lambda *a: fractional_frame(model, size, points, *a),
                                         (model.derivatives, model.spike, model.states, size, points), args)
            rows, t, y, halt_time, self.memory = outputs
            if not np.isnan(halt_time):
                self.halted = self._halt_message(fixed_step.NON_FINITE, float(halt_time))
        else:
            scheme = registry.get(self.method).scheme
            config = fixed_step.LoopConfig.for_model(self.model, scheme, "located", block_spikes(size, self.dt))
            values = np.array([self.t, self.dt, 1000.0 / DEFAULT_MAX_RATE_HZ, self.carried["refractory_end"],
                               self.carried["last"], self.amplitude, *self.params.values(), *self.y], dtype=float)
            rows, t, y, status, _, _ = registry.run_loop(integer_frame, config, (values, np.int64(steps)),
                                                         tuple(self.params), size, points)
            self.carried = {"refractory_end": float(status["refractory_end"]), "last": float(status["last"])}
            if int(status["halt_code"]) != fixed_step.OK:
                self.halted = self._halt_message(int(status["halt_code"]), float(status["halt_time"]))
        self.t, self.y = float(t), np.asarray(y)
        row_times, row_states, m, spike_times, count = (np.asarray(part) for part in rows)
        return row_times[:m], row_states[:m], spike_times[:count]

    def warm_up(self, duration_ms: float = 25.0, points: int | None = None):
        """Compile the frame that ``advance(duration_ms, points)`` would run now (one frame run on a copy and
        discarded), so pressing play starts at once."""
        steps = min(max(1, round(duration_ms / self.dt)), MAX_FRAME_STEPS)
        copy.copy(self)._frame(steps, points)  # a frame rebinds the state's attributes: self stays as it was

    def _halt_message(self, code, when):
        if code == fixed_step.NON_FINITE:
            return (f"{self.method} at dt {self.dt:g} ms: the state became non-finite at t = {when:.6g} ms; "
                    f"lower dt or use backward-euler, then reset")
        return (f"the neuron fired faster than {DEFAULT_MAX_RATE_HZ:g} Hz at t = {when:.6g} ms (a cascade of "
                f"resets); change the parameters, then reset")

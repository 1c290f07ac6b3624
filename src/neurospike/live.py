"""One neuron running live, for the browser app: advanced chunk by chunk with the project's own compiled loops.

Integer order: :func:`neurospike.solvers.fixed_step.run`, the loop every fixed-step method uses (located spike
events, refractory periods, the rate and non-finite guards), over ``CHUNK_STEPS`` steps at a time, its refractory
end and last spike time carried from chunk to chunk. Fractional order (Caputo, every state of order α): the L1
scheme with the sum-of-exponentials history (``fast-l1``, :func:`neurospike.solvers.fractional.run_l1`), its
weights fitted to ``HORIZON_STEPS`` steps and its memory carried from chunk to chunk: O(1) work and memory per
step however long the session runs (the direct L1 sum grows with every step, so it cannot run live).

Parameters, the input amplitude, α and dt are traced arguments: moving a slider never recompiles. The input is
the constant amplitude of the ``I`` slider. Memory per session is bounded: the recent spike times only.
"""

from __future__ import annotations

import collections
import copy
import math
from typing import Any

import numpy as np

from . import currents, models
from . import methods as registry
from .errors import NeurospikeError, closest
from .simulate import DEFAULT_MAX_RATE_HZ
from .solvers import fixed_step, fractional
from .trajectory import merge_spikes

LIVE_METHODS = registry.names(live=True, fractional=False)
FRACTIONAL_LIVE_METHODS = registry.names(live=True, fractional=True)
CHUNK_STEPS = 128  # steps per compiled call (<= fixed_step.BLOCK: one block)
HORIZON_STEPS = 10**7  # fast-l1 weights fit this many steps (1000 s at dt 0.1 ms; 200 exponentials)
DEFAULT_ALPHA = 0.8
ALPHA_RANGE = (0.3, 0.99)  # α = 1 is the integer-order model; fast-l1 has no modes there (another compiled shape)
DT_RANGE = (0.001, 0.5)  # ms
RATE_WINDOW_MS = 1000.0
SPIKES_KEPT = int(RATE_WINDOW_MS * DEFAULT_MAX_RATE_HZ / 1000.0)  # the firing rate's window at the rate guard
# spikes one compiled chunk can hold: the rate guard's rate over the longest chunk (dt 0.5 ms), not dt-dependent
CHUNK_SPIKES = int(math.ceil(CHUNK_STEPS * DT_RANGE[1] * DEFAULT_MAX_RATE_HZ / 1000.0)) + 2
INPUT_HEADROOM = 3.0  # the I slider spans ± this many times the preset's input


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


def decimate(values: np.ndarray, key: int, points: int) -> np.ndarray:
    """Row indices keeping at most ``points`` rows of ``values`` (m, n): the min and max of column ``key`` in
    each of points/2 consecutive buckets, in time order, so every spike peak survives."""
    m = values.shape[0]
    if m <= points:
        return np.arange(m)
    buckets = points // 2
    width = -(-m // buckets)
    column = values[:, key]
    low = np.concatenate([column, np.full(buckets * width - m, np.inf)]).reshape(buckets, width)
    high = np.concatenate([column, np.full(buckets * width - m, -np.inf)]).reshape(buckets, width)
    start = width * np.arange(buckets)
    keep = np.concatenate([start + np.argmin(low, axis=1), start + np.argmax(high, axis=1)])
    return np.unique(keep[keep < m])


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

    def advance(self, duration_ms: float) -> dict[str, Any]:
        """Run ``duration_ms`` more simulated time (whole chunks; the rounding is carried to the next call).
        Returns the times ``t`` (m,) and states ``y`` (m, n): the state after each step, and at each spike the
        states just before and after it (two rows at the spike time); the new spike times; and, if the run had to
        stop (non-finite state, spikes faster than the rate guard), ``halted`` with the reason."""
        self.target += duration_ms
        times, rows, spikes = [], [], []
        while self.halted is None:
            steps = round((self.target - self.t) / self.dt)
            if steps <= 0:
                break
            t, y, new_spikes = self._fractional_chunk() if self.fractional else self._chunk(min(steps, CHUNK_STEPS))
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

    def _traced_params(self):  # numpy scalars: a compiled call takes them as they are (jnp.asarray dispatches)
        return {k: np.float64(v) for k, v in self.params.items()}

    def _chunk(self, steps: int):
        """``steps`` <= CHUNK_STEPS steps of the integer-order loop; the compiled chunk's remaining steps have
        length 0 (so every frame advances exactly its share of time with one compiled form)."""
        scheme = registry.get(self.method).scheme
        config = fixed_step.LoopConfig.for_model(self.model, scheme, "located", CHUNK_SPIKES)
        nodes = self.t + self.dt * np.minimum(np.arange(CHUNK_STEPS + 1), steps)
        min_interval = np.float64(1000.0 / DEFAULT_MAX_RATE_HZ)
        carried = {k: np.float64(v) for k, v in self.carried.items()}
        args = (self._traced_params(), currents.constant(np.float64(self.amplitude)), np.asarray(self.y, float),
                nodes, min_interval, carried)
        trace, spikes, counts, status, _, _ = registry.run_loop(fixed_step.run, config, args)
        trace = np.asarray(trace)[:steps]
        count = int(np.asarray(counts)[0])
        spike_times, before, after = (np.asarray(buffer)[0, :count] for buffer in spikes)
        times = nodes[1:steps + 1]
        code = int(status["halt_code"])
        self.carried = {"refractory_end": float(status["refractory_end"]), "last": float(status["last"])}
        if code != fixed_step.OK:
            self.halted = self._halt_message(code, float(status["halt_time"]))
        # the loop halts at the start of the failing step: the node there is the last good state
        return self._keep(times, trace, spike_times, before, after, float(status["halt_time"]))

    def _keep(self, times, trace, spike_times, before, after, last_good):
        """Take a chunk's nodes (up to ``last_good``, the last good node of a halted run; NaN: all) as the new
        state; return them with each spike's states just before and after its reset inserted at the spike time
        (so a plotted spike reaches its peak)."""
        if np.isfinite(last_good):
            keep = times <= last_good + 1e-9 * self.dt
            times, trace = times[keep], trace[keep]
            fired = spike_times <= last_good
            spike_times, before, after = spike_times[fired], before[fired], after[fired]
        if len(times):
            self.t, self.y = float(times[-1]), trace[-1]
        times, trace = merge_spikes(times, trace, spike_times, before, after)
        return times, trace, spike_times

    def warm_up(self):
        """Compile this solver's chunk now (one chunk run and discarded), so pressing play starts at once."""
        scratch = copy.copy(self)  # a chunk rebinds the state's attributes, so the copy's run leaves self as it was
        scratch._fractional_chunk() if scratch.fractional else scratch._chunk(1)

    def _fractional_chunk(self):
        """One chunk of fast-l1 (a whole CHUNK_STEPS: the uniform grid cannot shorten steps; the overshoot is
        taken off the next frame)."""
        orders = np.full(self.model.n_states, self.alpha)
        out = fractional.run_l1(self.model, self.params, currents.constant(self.amplitude), self.y, orders, self.t,
                                self.dt, CHUNK_STEPS, history="soe", horizon=HORIZON_STEPS, resume=self.memory)
        self.memory = out["resume"]
        if out["status"] != "success":
            self.halted = self._halt_message(fixed_step.NON_FINITE, out["halt_time"])
        return self._keep(out["t"][1:], out["y"][1:], out["spike_times"], out["before"], out["after"],
                          out["halt_time"] - self.dt)  # halt_time: the first non-finite node

    def _halt_message(self, code, when):
        if code == fixed_step.NON_FINITE:
            return (f"{self.method} at dt {self.dt:g} ms: the state became non-finite at t = {when:.6g} ms; "
                    f"lower dt or use backward-euler, then reset")
        return (f"the neuron fired faster than {DEFAULT_MAX_RATE_HZ:g} Hz at t = {when:.6g} ms (a cascade of "
                f"resets); change the parameters, then reset")

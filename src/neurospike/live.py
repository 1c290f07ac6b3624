"""A live simulation for the browser app (issue 5, work in progress): one neuron advanced chunk by chunk with the
project's own jit-compiled steps, parameters and input traced so a slider never recompiles.

Each call of :meth:`LiveSimulation.advance` runs a compiled ``lax.scan`` of ``CHUNK_STEPS`` steps of the chosen
method (a :data:`neurospike.solvers.methods.METHODS` step) with the input held at the slider's amplitude; a step
that carries the spiking state across its level is reset after the step, the spike time interpolated linearly
inside it (the ``events="step"`` convention of the fixed-step loop, enough for a display).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import currents, models
from .errors import NeurospikeError
from .solvers.methods import METHODS, VectorField

LIVE_METHODS = ("euler", "rk2", "rk4", "exp-euler", "backward-euler")
CHUNK_STEPS = 64
_KERNELS: dict[Any, Any] = {}


def _kernel(model, method_name):
    """The compiled chunk: (y, t, params, current, dt) -> (trace (CHUNK, n), spike times (CHUNK,), y, t); the
    current is a :mod:`neurospike.currents` pytree, so a new amplitude is a new traced value, not a recompile."""
    key = (model.name, method_name)
    if key in _KERNELS:
        return _KERNELS[key]
    method = METHODS[method_name]
    rule = model.spike
    k = model.state_index(rule.state) if rule else 0
    groups = tuple(tuple(model.state_index(s) for s in g) for g in model.split) if model.split else None

    def chunk(y, t, params, current, dt):
        field_ = VectorField(model.derivatives, params, current, t, groups)

        def one(carry, _):
            y, t = carry
            new = method.step(field_, t, y, dt)
            spike = jnp.nan
            if rule is not None:
                level = params[rule.level]
                crossed = (y[k] < level) & (new[k] >= level)
                theta = jnp.clip((level - y[k]) / jnp.where(crossed, new[k] - y[k], 1.0), 0.0, 1.0)
                spike = jnp.where(crossed, t + theta * dt, jnp.nan)
                if rule.reset is not None:
                    reset = jnp.stack(rule.reset(tuple(new[i] for i in range(new.shape[0])), params))
                    new = jnp.where(crossed, reset, new)
            return (new, t + dt), (new, spike)

        (y, t), (trace, spikes) = jax.lax.scan(one, (y, t), None, length=CHUNK_STEPS)
        return trace, spikes, y, t

    _KERNELS[key] = jax.jit(chunk)
    return _KERNELS[key]


@dataclass
class LiveSimulation:
    """One neuron running live: ``advance(ms)`` returns the new samples; ``set_param``/``amplitude`` change it."""

    model_name: str = "izhikevich"
    preset: str | None = None
    method: str = "rk4"
    dt: float = 0.1
    amplitude: float = 10.0
    params: dict[str, float] = field(default_factory=dict)
    t: float = 0.0
    y: np.ndarray | None = None
    spike_times: list[float] = field(default_factory=list)

    def __post_init__(self):
        self.model = models.get(self.model_name)
        if self.method not in LIVE_METHODS:
            raise NeurospikeError(f"method {self.method!r}: the live app runs {', '.join(LIVE_METHODS)}")
        chosen = self.model.preset(self.preset)
        self.params = {**self.model.defaults(), **chosen.params, **self.params}
        self.reset()

    def reset(self):
        start = dict(zip(self.model.states, self.model.initial_state(self.params, np)))
        start.update(self.model.preset(self.preset).initial or {})
        self.y = np.array([start[s] for s in self.model.states], dtype=float)
        self.t = 0.0
        self.spike_times = []

    def set_param(self, name: str, value: float):
        if name not in self.params:
            raise NeurospikeError(f"unknown parameter {name!r} for model {self.model.name!r}")
        self.params[name] = float(value)

    def advance(self, duration_ms: float) -> dict[str, Any]:
        """Run at least ``duration_ms`` of simulated time (whole chunks); the samples and spikes of that span."""
        kernel = _kernel(self.model, self.method)
        params = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in self.params.items()}
        traces, spikes = [], []
        target = self.t + duration_ms
        y, t = jnp.asarray(self.y), jnp.asarray(self.t)
        while float(t) < target - 1e-9:
            trace, spike, y, t = kernel(y, t, params, currents.constant(float(self.amplitude)),
                                        jnp.asarray(self.dt, dtype=jnp.float64))
            traces.append(np.asarray(trace))
            spikes.append(np.asarray(spike))
        start = self.t
        self.y, self.t = np.asarray(y), float(t)
        trace = np.concatenate(traces)
        spike = np.concatenate(spikes)
        spike = spike[~np.isnan(spike)]
        self.spike_times.extend(spike.tolist())
        times = start + self.dt * np.arange(1, len(trace) + 1)
        return {"t": times, "states": {s: trace[:, i] for i, s in enumerate(self.model.states)},
                "spikes": spike, "sim_time": self.t}

    def firing_rate(self, window_ms: float = 1000.0) -> float:
        """Spikes per second over the last ``window_ms`` of simulated time."""
        recent = [s for s in self.spike_times if s > self.t - window_ms]
        return 1000.0 * len(recent) / min(window_ms, max(self.t, 1e-9))

"""Input currents I(t): piecewise (constant, step, ramp, pulse trains, the reference JSON segments),
sine and seeded Ornstein–Uhlenbeck noise.

Every current is a JAX pytree whose numbers are traced leaves, so a new amplitude never recompiles.
``current(t, t_ref)`` evaluates the current at ``t`` on the smooth piece that contains ``t_ref``: the
solvers stop on every ``discontinuities()`` time and pass the midpoint of the step as ``t_ref``, so a
step never straddles a jump and each side of a jump is evaluated exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .errors import NeurospikeError


def _check_finite(kind: str, **values: Any) -> None:
    for name, value in values.items():
        arr = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(arr)):
            raise NeurospikeError(f"current {kind}: {name}={value!r} is not a finite number")


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Piecewise:
    """I(t) = baseline, except inside a segment (start < t < end) where I(t) = value + slope·(t − start).

    Where segments overlap, the first listed wins (the convention of Izhikevich's figure1.m data).
    """

    baseline: Any = 0.0
    starts: Any = ()
    ends: Any = ()
    values: Any = ()
    slopes: Any = ()

    def __call__(self, t, t_ref=None, xp=np):
        t_ref = t if t_ref is None else t_ref
        current = xp.zeros_like(xp.asarray(t_ref, dtype=float)) + self.baseline
        for start, end, value, slope in reversed(list(zip(self.starts, self.ends, self.values, self.slopes))):
            inside = (t_ref > start) & (t_ref < end)
            current = xp.where(inside, value + slope * (t - start), current)
        return current

    def discontinuities(self) -> np.ndarray:
        times = [float(x) for x in (*self.starts, *self.ends) if np.isfinite(float(x))]
        return np.unique(np.asarray(times, dtype=float))

    def population_axes(self) -> "Piecewise":
        """Per-neuron leaves (a baseline, value or slope given as an array over neurons) map on axis 0."""
        return Piecewise(_neuron_axis(self.baseline), tuple(None for _ in self.starts),
                         tuple(None for _ in self.ends), tuple(_neuron_axis(v) for v in self.values),
                         tuple(_neuron_axis(v) for v in self.slopes))

    def population_size(self) -> int | None:
        return _population_size(self.baseline, *self.values, *self.slopes)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Sine:
    """I(t) = offset + amplitude · sin(2π·frequency·t/1000 + phase), t in ms, frequency in Hz."""

    offset: Any = 0.0
    amplitude: Any = 1.0
    frequency: Any = 10.0
    phase: Any = 0.0

    def __call__(self, t, t_ref=None, xp=np):
        return self.offset + self.amplitude * xp.sin(2 * math.pi * self.frequency * t / 1000.0 + self.phase)

    def discontinuities(self) -> np.ndarray:
        return np.zeros(0)

    def population_axes(self) -> "Sine":
        return Sine(*(_neuron_axis(x) for x in (self.offset, self.amplitude, self.frequency, self.phase)))

    def population_size(self) -> int | None:
        return _population_size(self.offset, self.amplitude, self.frequency, self.phase)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class OrnsteinUhlenbeck:
    """Seeded Ornstein–Uhlenbeck noise, τ dI = (mean − I) dt + σ √(2τ) dW, sampled exactly on a grid of
    step ``dt`` (ms) and linearly interpolated between samples, so it is an ordinary continuous input that
    every solver sees identically."""

    times: Any
    samples: Any

    def __call__(self, t, t_ref=None, xp=np):
        return xp.interp(t, self.times, self.samples)

    def discontinuities(self) -> np.ndarray:
        return np.zeros(0)

    def population_axes(self) -> "OrnsteinUhlenbeck":
        """Samples of shape (len(times), N) are one independent noise trace per neuron."""
        return OrnsteinUhlenbeck(None, 1 if np.ndim(self.samples) == 2 else None)

    def population_size(self) -> int | None:
        return int(np.shape(self.samples)[1]) if np.ndim(self.samples) == 2 else None


def _neuron_axis(leaf) -> int | None:
    return 0 if np.ndim(leaf) == 1 else None


def _population_size(*leaves) -> int | None:
    """The neuron count N of the per-neuron (1-d) leaves, None if there are none."""
    sizes = {int(np.shape(leaf)[0]) for leaf in leaves if np.ndim(leaf) == 1}
    if len(sizes) > 1:
        raise NeurospikeError(f"per-neuron current arrays have different lengths {sorted(sizes)}")
    return sizes.pop() if sizes else None


def constant(amplitude: float = 0.0) -> Piecewise:
    _check_finite("constant", amplitude=amplitude)
    return Piecewise(baseline=np.asarray(amplitude, dtype=float) if np.ndim(amplitude) else amplitude)


def step(start: float, amplitude: float, stop: float = math.inf, baseline: float = 0.0) -> Piecewise:
    """``baseline`` before ``start``, ``amplitude`` from ``start`` until ``stop``."""
    _check_finite("step", start=start, amplitude=amplitude, baseline=baseline)
    if not stop > start:  # also refuses NaN
        raise NeurospikeError(f"current step: stop={stop} must be after start={start}")
    return Piecewise(baseline, (float(start),), (float(stop),), (amplitude,), (0.0,))


def ramp(start: float, slope: float, stop: float = math.inf, baseline: float = 0.0) -> Piecewise:
    """``baseline`` before ``start``, then baseline + slope·(t − start) until ``stop``."""
    _check_finite("ramp", start=start, slope=slope, baseline=baseline)
    if not stop > start:  # also refuses NaN
        raise NeurospikeError(f"current ramp: stop={stop} must be after start={start}")
    return Piecewise(baseline, (float(start),), (float(stop),), (baseline,), (slope,))


def pulses(start: float, width: float, period: float, amplitude: float, count: int, baseline: float = 0.0) -> Piecewise:
    """``count`` rectangular pulses of ``amplitude`` and ``width`` ms, one every ``period`` ms from ``start``."""
    _check_finite("pulses", start=start, width=width, period=period, amplitude=amplitude, baseline=baseline)
    if width <= 0 or period < width or int(count) != count or count < 1:
        raise NeurospikeError(
            f"current pulses: need width > 0, period >= width and a whole count >= 1 (got width={width}, "
            f"period={period}, count={count})"
        )
    starts = tuple(float(start + i * period) for i in range(int(count)))
    return Piecewise(baseline, starts, tuple(s + width for s in starts), (amplitude,) * int(count), (0.0,) * int(count))


def sine(amplitude: float, frequency: float, offset: float = 0.0, phase: float = 0.0) -> Sine:
    _check_finite("sine", amplitude=amplitude, frequency=frequency, offset=offset, phase=phase)
    return Sine(offset, amplitude, frequency, phase)


def ornstein_uhlenbeck(mean: float, sigma: float, tau: float, t_end: float, seed: int = 0, dt: float = 0.1,
                       t0: float = 0.0) -> OrnsteinUhlenbeck:
    """OU noise with stationary mean ``mean`` and standard deviation ``sigma``, correlation time ``tau`` (ms)."""
    _check_finite("ou", mean=mean, sigma=sigma, tau=tau, dt=dt)
    if tau <= 0 or dt <= 0 or sigma < 0:
        raise NeurospikeError(f"current ou: need tau > 0, dt > 0, sigma >= 0 (got tau={tau}, dt={dt}, sigma={sigma})")
    n = int(math.ceil((t_end - t0) / dt)) + 1
    rng = np.random.default_rng(int(seed))
    decay = math.exp(-dt / tau)
    kicks = rng.standard_normal(n) * sigma * math.sqrt(1 - decay**2)
    samples = np.empty(n)
    samples[0] = mean + sigma * rng.standard_normal()
    for i in range(1, n):
        samples[i] = mean + (samples[i - 1] - mean) * decay + kicks[i]
    return OrnsteinUhlenbeck(t0 + dt * np.arange(n), samples)


def from_segments(spec: dict) -> Piecewise:
    """The reference JSON segment format: ``{"baseline": b, "segments": [{"start", "end", "value", "slope"}]}``."""
    try:
        segments = spec.get("segments", [])
        starts = tuple(float(s["start"]) for s in segments)
        ends = tuple(math.inf if s.get("end") is None else float(s["end"]) for s in segments)
        values = tuple(float(s["value"]) for s in segments)
        slopes = tuple(float(s.get("slope", 0.0)) for s in segments)
        baseline = float(spec.get("baseline", 0.0))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NeurospikeError(f"current segments: malformed segment data ({exc})") from None
    _check_finite("segments", baseline=baseline, values=values, slopes=slopes, starts=starts)
    for start, end in zip(starts, ends):
        if not end > start:  # also refuses NaN
            raise NeurospikeError(f"current segments: end={end} must be after start={start}")
    return Piecewise(baseline, starts, ends, values, slopes)


_KINDS = {
    "constant": (constant, ("amplitude",)),
    "step": (step, ("start", "amplitude", "stop", "baseline")),
    "ramp": (ramp, ("start", "slope", "stop", "baseline")),
    "pulses": (pulses, ("start", "width", "period", "amplitude", "count", "baseline")),
    "sine": (sine, ("amplitude", "frequency", "offset", "phase")),
    "ou": (ornstein_uhlenbeck, ("mean", "sigma", "tau", "seed", "dt")),
}


def parse(spec: str, t_end: float = 1000.0, t0: float = 0.0):
    """A current from a CLI spec: ``step:start=101,amplitude=70``, ``constant:amplitude=10``, … or a JSON file
    in the reference segment format."""
    spec = spec.strip()
    if spec.endswith(".json") or Path(spec).is_file():
        path = Path(spec)
        if not path.is_file():
            raise NeurospikeError(f"current file {spec!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise NeurospikeError(f"current file {spec!r} is not valid JSON ({exc.__class__.__name__})") from None
        return from_segments(data.get("current", data) if isinstance(data, dict) else {})
    kind, _, arguments = spec.partition(":")
    if kind not in _KINDS:
        from .errors import closest

        raise NeurospikeError(
            f"unknown current kind {kind!r}{closest(kind, _KINDS)}; kinds are {', '.join(_KINDS)} or a JSON file"
        )
    factory, names = _KINDS[kind]
    values: dict[str, float] = {}
    for item in filter(None, (a.strip() for a in arguments.split(","))):
        name, eq, text = item.partition("=")
        if not eq or name not in names or name in values:
            raise NeurospikeError(f"current {kind}: bad argument {item!r}; arguments are {', '.join(names)}")
        try:
            values[name] = float(text)
        except ValueError:
            raise NeurospikeError(f"current {kind}: {name}={text!r} is not a number") from None
    for name in ("count", "seed"):
        if name in values:
            if not (math.isfinite(values[name]) and values[name] == int(values[name])):
                raise NeurospikeError(f"current {kind}: {name}={values[name]!r} must be a whole number")
            values[name] = int(values[name])
    if kind == "ou":
        values = {"t_end": t_end, "t0": t0, **values}
    try:
        return factory(**values)
    except TypeError:
        required = [n for n in names if n not in values]
        raise NeurospikeError(f"current {kind}: missing argument(s) {', '.join(required)}") from None

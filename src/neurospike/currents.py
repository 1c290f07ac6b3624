"""Input currents I(t): piecewise (constant, step, ramp, pulse trains, the reference JSON segments),
sine, seeded Ornstein–Uhlenbeck noise and sampled waveforms (a recording's injected current).

Every current is a JAX pytree whose numbers are traced leaves, so a new amplitude never recompiles.
``current(t, t_ref)`` evaluates the current at ``t`` on the smooth piece that contains ``t_ref``: the
solvers stop on every ``discontinuities()`` time and pass the midpoint of the step as ``t_ref``, so a
step never straddles a jump and each side of a jump is evaluated exactly.
"""

from __future__ import annotations

import inspect
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
        t_ref = xp.asarray(t if t_ref is None else t_ref)
        # the times' own floating type (float32 in a single-precision population), float for integer times
        current = xp.zeros_like(t_ref, dtype=t_ref.dtype if t_ref.dtype.kind == "f" else float) + self.baseline
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


#: Default rule of :func:`sampled`: a sample-to-sample change is a jump when it exceeds this fraction of the
#: current's range (max − min) ...
SAMPLED_JUMP_FRACTION = 0.2
#: ... and this many times the larger of its two neighbouring changes.
SAMPLED_JUMP_RATIO = 5.0


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Sampled:
    """A current given by samples ``values`` at ``times`` (ms): linear between samples, the first value before
    the first sample and the last after the last, except across a *jump* (see :func:`sampled`), where it holds
    the earlier sample's value up to the later sample's time and jumps there. Jump times are
    ``discontinuities()``, so the fixed-step solvers put a grid node on each; a step reads the side of a jump
    that holds its ``t_ref``. Without ``t_ref`` the value at a jump time is the later sample (right-continuous).

    Build it with :func:`sampled`, which finds the jumps. Fields (all traced pytree leaves): ``times`` (n,),
    ``values`` (n,), or (N, n) for N neurons (one row each, so the neuron axis is 0), ``ramp`` (n − 1,) or
    (N, n − 1): 1.0 on a linear interval, 0.0 on a held one, ``jumps`` the jump times, ``bounds`` the sample
    indices [0, jump samples…, n − 1] that cut the samples into smooth pieces.
    """

    times: Any
    values: Any
    ramp: Any
    jumps: Any
    bounds: Any

    def __call__(self, t, t_ref=None, xp=np):
        t = xp.asarray(t, dtype=float)
        t_ref = t if t_ref is None else xp.asarray(t_ref, dtype=float)
        times, values, bounds = xp.asarray(self.times), xp.asarray(self.values), xp.asarray(self.bounds)
        last = times.shape[0] - 1
        piece = xp.searchsorted(xp.asarray(self.jumps, dtype=float), t_ref, side="right")
        lo, hi = bounds[piece], bounds[piece + 1]
        clipped = xp.clip(t, times[lo], times[hi])  # within the piece of t_ref: constant beyond its ends
        i = xp.minimum(xp.searchsorted(times, clipped, side="right") - 1, xp.maximum(hi - 1, lo))
        j = xp.minimum(i + 1, last)
        width = times[j] - times[i]
        theta = xp.where(width > 0, (clipped - times[i]) / xp.where(width > 0, width, 1.0), 0.0)
        ramp, k = xp.asarray(self.ramp), xp.minimum(i, last - 1)
        if values.ndim == 1:
            theta, start, end = theta * ramp[k], values[i], values[j]
        else:  # (N, n): the result has the neuron axis last
            row = lambda array, index: xp.moveaxis(xp.take(array, index, axis=1), 0, -1)  # noqa: E731
            theta, start, end = theta[..., None] * row(ramp, k), row(values, i), row(values, j)
        return xp.where(theta == 1.0, end, start + theta * (end - start))

    def discontinuities(self) -> np.ndarray:
        return np.asarray(self.jumps, dtype=float).reshape(-1)

    def population_axes(self) -> "Sampled":
        """Values of shape (N, len(times)) are one waveform per neuron (their jumps are the union of all)."""
        per_neuron = 0 if np.ndim(self.values) == 2 else None
        return Sampled(None, per_neuron, per_neuron, None, None)

    def population_size(self) -> int | None:
        return int(np.shape(self.values)[0]) if np.ndim(self.values) == 2 else None


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


def sampled(times, values, jump_fraction: float = SAMPLED_JUMP_FRACTION,
            jump_ratio: float = SAMPLED_JUMP_RATIO) -> Sampled:
    """A :class:`Sampled` current through ``values`` at ``times`` (ms, strictly increasing, at least 2 samples;
    ``values`` (n,) or (n, N) for N neurons, in the model's current unit).

    Jump rule, per waveform: the change ΔI between samples k − 1 and k is a jump when
    |ΔI| > ``jump_fraction`` · (max I − min I) and |ΔI| > ``jump_ratio`` · the larger |ΔI| of the two
    neighbouring intervals (a missing neighbour at either end counts as 0; two samples alone have no jump). A
    digitised square step is one such change among flat ones (a jump); noise small against the range is not,
    nor is an edge spread over several samples (kept linear, a steep ramp). A pulse one sample wide is not a
    jump either (its two edges are each other's neighbours): it stays a triangle. Across a jump the current
    holds sample k − 1's value until t_k and jumps there; t_k is listed by ``discontinuities()``. For N
    waveforms the jump times are the union of each one's.
    Noise correlated over several samples (an OU input, a filtered trace) has no jumps; white noise drawn anew
    at every sample has a few (about 0.5 % of its intervals): each is then held over one interval, as a DAC
    holds it, and adds one grid node.
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    if times.ndim != 1 or times.size < 2:
        raise NeurospikeError(f"current sampled: need at least 2 sample times in a 1-d array (got shape {times.shape})")
    if values.ndim not in (1, 2) or values.shape[0] != times.size:
        raise NeurospikeError(f"current sampled: values of shape {values.shape} do not match {times.size} sample "
                              f"times (use (n,) or (n, N))")
    for name, array in (("times", times), ("values", values)):
        bad = np.flatnonzero(~np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1))
        if bad.size:
            raise NeurospikeError(f"current sampled: {name} are not finite from sample {int(bad[0])} on "
                                  f"({bad.size} non-finite sample(s))")
    gaps = np.flatnonzero(np.diff(times) <= 0)
    if gaps.size:
        k = int(gaps[0])
        raise NeurospikeError(f"current sampled: times must increase strictly (t={times[k + 1]:g} ms after "
                              f"{times[k]:g} ms at sample {k + 1})")
    if not (0 < jump_fraction <= 1 and jump_ratio >= 1):
        raise NeurospikeError(f"current sampled: need 0 < jump_fraction <= 1 and jump_ratio >= 1 (got "
                              f"{jump_fraction}, {jump_ratio})")
    change = np.abs(np.diff(values, axis=0))
    pad = np.zeros((1,) + change.shape[1:])
    neighbours = np.maximum(np.concatenate([pad, change[:-1]]), np.concatenate([change[1:], pad]))
    spread = np.ptp(values, axis=0)
    jump = (change > jump_fraction * spread) & (change > jump_ratio * neighbours) & (times.size > 2)
    at = np.flatnonzero(jump if jump.ndim == 1 else jump.any(axis=1)) + 1  # the later sample of each jump
    bounds = np.concatenate([[0], at, [times.size - 1]]).astype(np.int64)
    return Sampled(times, values.T, np.where(jump, 0.0, 1.0).T, times[at], bounds)  # neurons on axis 0


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


def _arguments(kind: str) -> tuple[list[str], dict[str, Any]]:
    """The spec arguments of current ``kind``: the required names, and the optional ones with their defaults."""
    factory, names = _KINDS[kind]
    signature = inspect.signature(factory).parameters
    required = [name for name in names if signature[name].default is inspect.Parameter.empty]
    return required, {name: signature[name].default for name in names if name not in required}


def spec_syntax(kind: str) -> str:
    """How to write a ``kind`` spec: ``step:start=…,amplitude=…[,stop=inf,baseline=0]``."""
    required, optional = _arguments(kind)
    head = ",".join(f"{name}=…" for name in required)
    tail = ",".join(f"{name}={value:g}" for name, value in optional.items())
    return f"{kind}:{head}" + (f"[{',' if head else ''}{tail}]" if tail else "")


KINDS = tuple(_KINDS)


def parse(spec: str, t_end: float = 1000.0, t0: float = 0.0):
    """A current from a CLI spec: a bare number (``10`` is ``constant:amplitude=10``, as ``simulate(current=10.0)``),
    ``step:start=101,amplitude=70``, ``constant:amplitude=10``, … or a JSON file in the reference segment format.
    Times are in ms, frequencies in Hz, amplitudes in the model's current unit."""
    spec = spec.strip()
    try:
        spec = f"constant:amplitude={float(spec)!r}"
    except ValueError:
        pass
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
            f"unknown current kind {kind!r}{closest(kind, _KINDS)}; kinds are {', '.join(_KINDS)}, a number "
            f"(a constant current) or a JSON file"
        )
    factory, names = _KINDS[kind]
    values: dict[str, float] = {}
    for item in filter(None, (a.strip() for a in arguments.split(","))):
        name, eq, text = item.partition("=")
        if not eq or name not in names or name in values:
            raise NeurospikeError(f"current {kind}: bad argument {item!r}; write {spec_syntax(kind)}")
        try:
            values[name] = float(text)
        except ValueError:
            raise NeurospikeError(f"current {kind}: {name}={text!r} is not a number") from None
    required, _ = _arguments(kind)
    missing = [name for name in required if name not in values]
    if missing:
        raise NeurospikeError(f"current {kind}: missing {', '.join(missing)}; write {spec_syntax(kind)}")
    for name in ("count", "seed"):
        if name in values:
            if not (math.isfinite(values[name]) and values[name] == int(values[name])):
                raise NeurospikeError(f"current {kind}: {name}={values[name]!r} must be a whole number")
            values[name] = int(values[name])
    if kind == "ou":
        values = {"t_end": t_end, "t0": t0, **values}
    return factory(**values)


def describe(current, unit: str = "") -> str:
    """One line saying what ``current`` is, amplitudes in ``unit`` (its first word; "1": none), e.g.
    ``step 0 → 70 pA at 101 ms``."""
    unit = unit.split()[0] if unit.strip() and unit.split()[0] != "1" else ""
    u = f" {unit}" if unit else ""
    if current is None:
        return "none (0)"
    if isinstance(current, Sine):
        return (f"sine {current.offset:g} + {current.amplitude:g}{u} · sin(2π · {current.frequency:g} Hz · t + "
                f"{current.phase:g})")
    if isinstance(current, OrnsteinUhlenbeck):
        samples = np.asarray(current.samples)
        return f"Ornstein–Uhlenbeck noise, {samples.shape[0]} samples, mean {np.mean(samples):.3g}{u}"
    if isinstance(current, Sampled):
        times = np.asarray(current.times)
        return f"sampled waveform, {times.size} samples from {times[0]:g} to {times[-1]:g} ms{u and ' (' + unit + ')'}"
    if not isinstance(current, Piecewise):
        return type(current).__name__
    base, pieces = current.baseline, list(zip(current.starts, current.ends, current.values, current.slopes))
    if np.ndim(base) or any(np.ndim(v) or np.ndim(k) for _, _, v, k in pieces):
        return f"piecewise, {len(pieces)} segment(s), one amplitude per neuron{u and ' (' + unit + ')'}"
    if not pieces:
        return f"constant {base:g}{u}"
    if len(pieces) == 1:
        start, end, value, slope = pieces[0]
        until = "" if math.isinf(end) else f" until {end:g} ms"
        if slope:
            return f"ramp from {value:g}{u} at {start:g} ms, slope {slope:g}{u}/ms{until} (else {base:g}{u})"
        if math.isinf(end):
            return f"step {base:g} → {value:g}{u} at {start:g} ms"
        return f"pulse of {value:g}{u} from {start:g} to {end:g} ms (else {base:g}{u})"
    widths = {round(e - s, 12) for s, e, _, _ in pieces}
    gaps = {round(b[0] - a[0], 12) for a, b in zip(pieces, pieces[1:])}
    if len(widths) == len(gaps) == len({v for _, _, v, _ in pieces}) == 1 and not any(k for *_, k in pieces):
        return (f"{len(pieces)} pulses of {pieces[0][2]:g}{u}, {widths.pop():g} ms wide, every {gaps.pop():g} ms "
                f"from {pieces[0][0]:g} ms (else {base:g}{u})")
    parts = [f"{v:g}{u}" + (f" + {k:g}{u}/ms·(t − {s:g})" if k else "") + f" on ({s:g}, {e:g}) ms"
             for s, e, v, k in pieces[:3]]
    more = f", … ({len(pieces)} segments)" if len(pieces) > 3 else ""
    return f"{base:g}{u}, except " + ", ".join(parts) + more

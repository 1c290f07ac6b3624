"""Firing-pattern descriptors of any spike train, and the 20 named behaviours of Izhikevich (2004), Figure 1.

Descriptors (usable on any :class:`~neurospike.Trajectory` or array of spike times):

* ``interspike_intervals`` — ISI_k = t_{k+1} − t_k;
* ``burst_groups`` — spikes split into groups at the gaps: an ISI is a gap when the sorted ISIs jump there by a
  factor ≥ ``ratio`` (default 3), or when it exceeds an explicit ``max_gap``;
* ``adaptation_index`` — A = mean_k (ISI_{k+1} − ISI_k)/(ISI_{k+1} + ISI_k) (> 0 slowing down, < 0 speeding up;
  the "adaptation index" of the Allen Cell Types electrophysiology features);
* ``describe`` — all of them, plus latency to an onset, in one :class:`FiringPattern`;
* ``local_extrema`` — the alternating maxima/minima of a sampled trace (subthreshold oscillations, DAP).

``FIGURE1_BEHAVIOURS`` maps each Figure 1 pattern name to a check ``(trajectory, preset, model) -> Verdict``
whose criteria follow the definitions in E. M. Izhikevich, "Which model to use for cortical spiking neurons?",
IEEE Trans. Neural Networks 15 (2004) 1063. The pulse times come from the preset's current segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from .errors import NeurospikeError


def spike_times(source, start: float = -math.inf, end: float = math.inf) -> np.ndarray:
    """The spike times of a Trajectory (or an array of times) in the window ``start < t ≤ end``."""
    times = np.asarray(getattr(source, "spikes", source), dtype=float).ravel()
    if times.size and not np.all(np.isfinite(times)):
        raise NeurospikeError("spike times must be finite numbers")
    times = np.sort(times)
    return times[(times > start) & (times <= end)]


def interspike_intervals(spikes) -> np.ndarray:
    return np.diff(spike_times(spikes))


def burst_groups(spikes, ratio: float = 3.0, max_gap: float | None = None) -> list[np.ndarray]:
    """Split a spike train into groups at its gaps (a group of one spike is a single spike).

    With ``max_gap`` (ms) every ISI above it is a gap. Otherwise the ISIs are sorted and the largest jump
    between neighbours is found; if it is a factor ≥ ``ratio`` the ISIs above it are the gaps, else the train
    is one group (no two time scales of firing).
    """
    if ratio <= 1:
        raise NeurospikeError(f"burst ratio={ratio!r} must be > 1")
    times = spike_times(spikes)
    if times.size < 2:
        return [times] if times.size else []
    isis = np.diff(times)
    if max_gap is None:
        ordered = np.sort(isis)
        jumps = ordered[1:] / np.maximum(ordered[:-1], 1e-300)
        if jumps.size == 0 or jumps.max() < ratio:
            return [times]
        k = int(np.argmax(jumps))
        max_gap = math.sqrt(ordered[k] * ordered[k + 1])
    cuts = np.nonzero(isis > max_gap)[0] + 1
    return np.split(times, cuts)


def adaptation_index(spikes) -> float:
    """mean_k (ISI_{k+1} − ISI_k) / (ISI_{k+1} + ISI_k); NaN with fewer than three spikes."""
    isis = interspike_intervals(spikes)
    if isis.size < 2:
        return math.nan
    return float(np.mean(np.diff(isis) / (isis[1:] + isis[:-1])))


def local_extrema(t, values, tolerance: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of the turning points of a sampled trace (alternating maxima and minima). A turning
    point counts once the trace has moved back from it by ``tolerance``, so flat noise is ignored."""
    t, values = np.asarray(t, dtype=float), np.asarray(values, dtype=float)
    times, levels = [], []
    direction, candidate = 0, 0
    for i in range(1, values.size):
        if direction == 0:
            if abs(values[i] - values[0]) >= tolerance:
                direction, candidate = (1 if values[i] > values[0] else -1), i
        elif direction * (values[i] - values[candidate]) >= 0:
            candidate = i
        elif direction * (values[candidate] - values[i]) >= tolerance:
            times.append(t[candidate])
            levels.append(values[candidate])
            direction, candidate = -direction, i
    return np.asarray(times), np.asarray(levels)


@dataclass(frozen=True)
class FiringPattern:
    """Descriptors of a spike train in a window: count, ISIs, burst groups, adaptation index, latency."""

    spikes: np.ndarray
    isis: np.ndarray
    bursts: list[np.ndarray]
    adaptation_index: float
    latency: float | None  # first spike after ``onset`` minus ``onset`` (None: no onset or no spike)

    @property
    def count(self) -> int:
        return int(self.spikes.size)

    @property
    def burst_sizes(self) -> list[int]:
        return [int(g.size) for g in self.bursts]

    @property
    def rates_hz(self) -> np.ndarray:
        """Instantaneous firing rates 1000 / ISI (Hz, for t in ms)."""
        return 1000.0 / self.isis


def describe(source, start: float = -math.inf, end: float = math.inf, onset: float | None = None,
             ratio: float = 3.0) -> FiringPattern:
    """The :class:`FiringPattern` of the spikes of ``source`` in ``start < t ≤ end``."""
    times = spike_times(source, start, end)
    after = times[times > onset] if onset is not None else times[:0]
    return FiringPattern(spikes=times, isis=np.diff(times), bursts=burst_groups(times, ratio),
                         adaptation_index=adaptation_index(times),
                         latency=float(after[0] - onset) if onset is not None and after.size else None)


# --- One class per spike train, for maps over parameter space -----------------------------------------------
#: The classes of :func:`classify`, in code order (a sweep's ``pattern`` variable stores the index).
PATTERN_CLASSES = ("silent", "phasic", "tonic", "adapting", "bursting", "initial burst", "irregular")
ADAPTING_RATIO = 1.5  # last ISI / first ISI from which tonic firing counts as adapting


def classify(source, onset: float, end: float, ratio: float = 3.0) -> str:
    """The firing class of the spikes in ``onset < t ≤ end`` under a sustained input (the names of Izhikevich
    2003, Fig. 2, from the spike train alone):

    * ``silent``: no spike; ``phasic``: one spike, or firing that stops while the input persists (the last spike
      earlier than 3 × the longest ISI and 10 % of the window before ``end``);
    * ``bursting`` (chattering, CH): ≥ 3 groups of ≥ 2 spikes, the last one may be cut short (:func:`burst_groups`
      with ``ratio``);
      ``initial burst`` (IB): a first group of ≥ 2 spikes, then single spikes;
    * otherwise one group: ``adapting`` (RS) when the last ISI is ≥ 1.5 × the first, ``tonic`` (FS, TC, LTS)
      when not; ``irregular``: several groups that fit none of these.

    These are behaviours, not cell types: Izhikevich's FS and LTS cells, with their short first ISIs, are
    ``adapting`` here, and TC at a strong input ``tonic``."""
    p = describe(source, onset, end)
    if p.count == 0:
        return "silent"
    if p.count == 1 or end - p.spikes[-1] > max(3.0 * float(p.isis.max()), 0.1 * (end - onset)):
        return "phasic"
    sizes = p.burst_sizes if p.count >= 3 else [p.count]
    if len(sizes) >= 3 and min(sizes[:-1]) >= 2:  # the last burst may be cut short by ``end``
        return "bursting"
    if len(sizes) >= 2 and sizes[0] >= 2 and all(size == 1 for size in sizes[1:]):
        return "initial burst"
    if len(sizes) == 1:
        return "adapting" if p.isis[-1] >= ADAPTING_RATIO * p.isis[0] else "tonic"
    return "irregular"


# --- The 20 behaviours of Izhikevich (2004), Figure 1 ------------------------------------------------------


@dataclass
class Verdict:
    """Whether a run shows a named behaviour: ``ok``, the failed conditions and the measured facts."""

    ok: bool = True
    failures: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            self.ok = False
            self.failures.append(message)

    def note(self, text: str) -> None:
        self.facts.append(text)

    def __str__(self) -> str:
        return ("shows it" if self.ok else "fails: " + "; ".join(self.failures)) + (
            f" ({', '.join(self.facts)})" if self.facts else "")


class Segment(NamedTuple):
    """One segment of a preset's piecewise input: start, end (ms), value relative to the baseline, slope."""

    start: float
    end: float
    value: float
    slope: float


def pulses(preset) -> list[Segment]:
    """The segments of a preset's piecewise input (``currents.Piecewise``), in the order listed."""
    current = preset.current
    return [Segment(float(s), float(e), float(v) - float(current.baseline), float(k))
            for s, e, v, k in zip(current.starts, current.ends, current.values, current.slopes)]


def _fmt(values) -> str:
    return "[" + ", ".join(f"{x:.3g}" for x in values) + "]"


def _trace(trajectory, start: float, end: float, step: float = 0.05):
    times = np.arange(start, end, step)
    return times, trajectory.at(times)["v"]


def _tonic_spiking(tr, preset, model):
    v = Verdict()
    onset = pulses(preset)[0].start
    p = describe(tr, onset)
    v.note(f"{p.count} spikes, ISIs {_fmt(p.isis)}")
    v.require(spike_times(tr, end=onset).size == 0, "spikes before the input")
    v.require(p.count >= 4, "fewer than 4 spikes")
    if p.count >= 4:
        last, previous = p.isis[-1], p.isis[-2]
        v.require(abs(last - previous) <= 0.1 * last, "the ISI has not settled (last two differ by > 10 %)")
        v.require(tr.t[-1] - p.spikes[-1] <= 2 * last, "firing stops while the input persists")
    return v


def _single_spike(tr, preset, model, after_pulse: bool):
    v = Verdict()
    start, end = pulses(preset)[0][:2]
    p = describe(tr, onset=start)
    v.note(f"{p.count} spike(s)" + (f", latency {p.latency:.3g} ms" if p.latency is not None else ""))
    v.require(p.count == 1, "not exactly one spike")
    v.require(spike_times(tr, end=start).size == 0, "spikes before the input")
    if after_pulse and p.count:
        v.require(p.spikes[0] > end, "the spike comes during the pulse, not after it (no latency)")
    return v


def _bursting(tr, preset, model, phasic: bool):
    v = Verdict()
    onset = pulses(preset)[0].start
    p = describe(tr, onset)
    v.note(f"{p.count} spikes in groups {p.burst_sizes}")
    v.require(spike_times(tr, end=onset).size == 0, "spikes before the input")
    if phasic:
        v.require(len(p.bursts) == 1 and p.count >= 2, "not one burst of >= 2 spikes")
        if p.count >= 2:
            v.require(tr.t[-1] - p.spikes[-1] > 3 * p.isis.max(), "firing does not stop after the burst")
    else:
        v.require(len(p.bursts) >= 3 and min(p.burst_sizes, default=0) >= 2,
                  "not a train of >= 3 bursts of >= 2 spikes")
    return v


def _mixed_mode(tr, preset, model):
    v = Verdict()
    p = describe(tr, pulses(preset)[0].start)
    v.note(f"{p.count} spikes in groups {p.burst_sizes}")
    sizes = p.burst_sizes
    v.require(len(sizes) >= 3 and sizes[0] >= 2 and all(s == 1 for s in sizes[1:]),
              "not a burst followed by >= 2 single spikes")
    return v


def _adaptation(tr, preset, model):
    v = Verdict()
    p = describe(tr, pulses(preset)[0].start)
    v.note(f"ISIs {_fmt(p.isis)}, adaptation index {p.adaptation_index:.2f}")
    v.require(p.count >= 4, "fewer than 4 spikes")
    if p.count >= 4:
        v.require(bool(np.all(np.diff(p.isis) > 0)), "the ISIs do not increase monotonically")
        v.require(p.isis[-1] >= 3 * p.isis[0], "the last ISI is not >= 3x the first")
    return v


ONSET_RATE_HZ = 40.0  # Izhikevich (2004): class 2 neurons "fire ... with a relatively large frequency, say 40 Hz"


def _excitability(tr, preset, model, klass: int):
    v = Verdict()
    start = pulses(preset)[0].start
    p = describe(tr, start)
    v.note(f"{p.count} spikes, rate {p.rates_hz[0]:.3g} -> {p.rates_hz[-1]:.3g} Hz" if p.count >= 2
           else f"{p.count} spikes")
    v.require(spike_times(tr, end=start).size == 0, "spikes before the ramp")
    v.require(p.count >= 5, "fewer than 5 spikes on the ramp")
    if p.count >= 5:
        v.require(p.spikes[0] - start > p.isis[0], "firing does not wait for the ramp to build up")
        v.require(p.rates_hz[-1] >= 1.3 * p.rates_hz[0], "the rate does not rise with the ramp")
        if klass == 1:
            v.require(p.rates_hz[0] < ONSET_RATE_HZ, f"onset rate >= {ONSET_RATE_HZ:g} Hz (not low)")
        else:
            v.require(p.rates_hz[0] >= ONSET_RATE_HZ, f"onset rate < {ONSET_RATE_HZ:g} Hz (class 2 cannot fire slowly)")
    return v


def _subthreshold_oscillations(tr, preset, model):
    v = Verdict()
    start, end = pulses(preset)[0][:2]
    p = describe(tr)
    v.require(p.count <= 1, "more than one spike")
    quiet = max(end, p.spikes[-1] if p.count else end)
    times, levels = local_extrema(*_trace(tr, quiet, tr.t[-1]))
    rest = tr.at([tr.t[-1]])["v"][0]
    v.note(f"{p.count} spike(s), turning points at {_fmt(times)} ms")
    v.require(levels.size >= 3, "fewer than 3 turning points after the response (no oscillation)")
    if levels.size >= 3:
        offsets = levels[:3] - rest
        v.require(bool(np.all(offsets[:-1] * offsets[1:] < 0)), "the turning points do not alternate around rest")
        v.require(bool(np.all(np.diff(np.abs(offsets)) < 0)), "the oscillation is not damped")
    return v


def linear_period(model, params, current_value, state) -> float:
    """2π/ω of the complex eigenvalues of the Jacobian at the equilibrium nearest ``state`` (Newton with
    finite-difference Jacobians); NaN if the equilibrium is not a focus."""
    y = np.asarray(state, dtype=float)

    def f(z):
        return np.asarray(model.derivatives(0.0, tuple(z), params, current_value, np), dtype=float)

    def jacobian(z):
        h = 1e-6 * (1 + np.abs(z))
        return np.stack([(f(z + h[i] * np.eye(z.size)[i]) - f(z - h[i] * np.eye(z.size)[i])) / (2 * h[i])
                         for i in range(z.size)], axis=1)

    for _ in range(50):
        y = y - np.linalg.solve(jacobian(y), f(y))
    eigen = np.linalg.eigvals(jacobian(y))
    omega = np.max(np.abs(eigen.imag))
    return 2 * math.pi / omega if omega > 0 else math.nan


def _pulse_pairs(tr, preset):
    """Two pairs of pulses (four segments): the interval of each pair, the spikes between the two pulses of a
    pair (fired by one pulse alone) and the spikes after the second pulse of each pair (until the next pair)."""
    segments = pulses(preset)
    if len(segments) != 4:
        raise NeurospikeError(f"preset {preset.name!r}: a pulse-pair check needs four segments, not {len(segments)}")
    pairs = [segments[:2], segments[2:]]
    intervals = [second.start - first.start for first, second in pairs]
    single = sum(spike_times(tr, first.start, second.start).size for first, second in pairs)
    counts = [spike_times(tr, second.start, until).size for (_, second), until in zip(pairs, (pairs[1][0].start, tr.t[-1]))]
    return intervals, single, counts


def _pair_selectivity(preferred: int, intervals, single, counts, v: Verdict) -> Verdict:
    v.note(f"pair intervals {_fmt(intervals)} ms, spikes after each pair {counts}")
    v.require(single == 0, "a single pulse fires it")
    v.require(counts[preferred] >= 1, f"the pair {intervals[preferred]:g} ms apart does not fire it")
    v.require(counts[1 - preferred] == 0, f"the pair {intervals[1 - preferred]:g} ms apart fires it too")
    return v


def _resonator(tr, preset, model):
    """Two pulse pairs differing in interval: the pair whose interval is closer to the period of the damped
    subthreshold oscillation (from the linearisation at rest) fires it, the other does not."""
    intervals, single, counts = _pulse_pairs(tr, preset)
    period = linear_period(model, tr.params, float(preset.current.baseline), [preset.initial["v"], preset.initial["u"]])
    v = Verdict()
    v.note(f"oscillation period {period:.3g} ms")
    resonant = int(np.argmin([abs(i - period) for i in intervals]))
    return _pair_selectivity(resonant, intervals, single, counts, v)


def _integrator(tr, preset, model):
    """Two pulse pairs differing in interval: the closer pair fires it (summation), the farther does not."""
    intervals, single, counts = _pulse_pairs(tr, preset)
    return _pair_selectivity(int(np.argmin(intervals)), intervals, single, counts, Verdict())


def _rebound(tr, preset, model, burst: bool):
    v = Verdict()
    start, end, value = pulses(preset)[0][:3]
    if value >= 0:
        raise NeurospikeError("rebound check needs a negative (hyperpolarising) pulse")
    p = describe(tr, end)
    v.note(f"{p.count} spike(s) after the pulse, groups {p.burst_sizes}")
    v.require(spike_times(tr, end=end).size == 0, "spikes before the pulse ends")
    if burst:
        v.require(len(p.bursts) == 1 and p.count >= 2, "not one burst of >= 2 spikes after the pulse")
    else:
        v.require(p.count == 1, "not exactly one spike after the pulse")
    return v


def _threshold_variability(tr, preset, model):
    """The same excitatory pulse fails alone but fires right after an inhibitory pulse."""
    v = Verdict()
    ordered = sorted(pulses(preset))
    until = [s.start for s in ordered[1:]] + [tr.t[-1]]
    fired = {s: spike_times(tr, s.start, u).size for s, u in zip(ordered, until)}
    excitatory = [(i, s) for i, s in enumerate(ordered) if s.value > 0]
    alone = [s for i, s in excitatory if i == 0 or ordered[i - 1].value >= 0]
    primed = [s for i, s in excitatory if i > 0 and ordered[i - 1].value < 0]
    v.note(f"spikes after the lone pulse {[fired[s] for s in alone]}, after the primed pulse "
           f"{[fired[s] for s in primed]}")
    v.require(bool(alone) and bool(primed), "needs an excitatory pulse alone and one right after an inhibitory one")
    v.require(all(fired[s] == 0 for s in alone), "the lone pulse fires it")
    v.require(all(fired[s] >= 1 for s in primed), "the pulse after inhibition does not fire it")
    return v


def _bistability(tr, preset, model):
    v = Verdict()
    (s1, e1), (s2, e2) = (segment[:2] for segment in pulses(preset)[:2])
    between = describe(tr, s1, s2)
    after = spike_times(tr, e2)
    v.note(f"{between.count} spikes between the pulses, {after.size} after the second")
    v.require(spike_times(tr, end=s1).size == 0, "spikes before the first pulse")
    v.require(between.count >= 3, "the first pulse does not start sustained firing")
    if between.count >= 3:
        v.require(s2 - between.spikes[-1] <= 1.5 * between.isis[-1], "firing stops before the second pulse")
    v.require(after.size == 0, "the second pulse does not stop the firing")
    return v


def _dap(tr, preset, model):
    """One spike, then a depolarised hump: v rises after the reset to a local maximum above the reset value
    before relaxing to rest."""
    v = Verdict()
    p = describe(tr)
    v.require(p.count == 1, "not exactly one spike")
    if p.count:
        reset_v = tr.spike_states_after[0][0] if np.size(tr.spike_states_after) else tr.params["c"]
        times, levels = local_extrema(*_trace(tr, p.spikes[0] + 1e-9, tr.t[-1]))
        rest = tr.at([tr.t[-1]])["v"][0]
        hump = levels[0] if levels.size else -math.inf
        v.note(f"{p.count} spike(s); after reset to {reset_v:.3g} mV, v peaks at {hump:.3g} mV, rest {rest:.3g} mV")
        v.require(levels.size >= 1 and hump > reset_v + 1.0 and hump > rest + 5.0,
                  "no depolarised hump after the spike")
    return v


def _accommodation(tr, preset, model):
    """A slow ramp to a higher current does not fire it; a fast ramp to a lower one does."""
    v = Verdict()
    slow, fast = sorted(pulses(preset), key=lambda s: abs(s.slope))[:2]
    counts = [spike_times(tr, s.start, s.end + 10).size for s in (slow, fast)]
    v.note(f"spikes on the slow ramp {counts[0]}, on the fast ramp {counts[1]}")
    v.require(counts[0] == 0, "the slow ramp fires it")
    v.require(counts[1] >= 1, "the fast ramp does not fire it")
    return v


def _inhibition_induced(tr, preset, model, burst: bool):
    v = Verdict()
    start, end, value = pulses(preset)[0][:3]
    if value >= 0:
        raise NeurospikeError("inhibition-induced check needs a current step down")
    p = describe(tr, start, end)
    outside = spike_times(tr, end=start).size + spike_times(tr, end).size
    v.note(f"{p.count} spikes during inhibition in groups {p.burst_sizes}, {outside} outside")
    v.require(outside == 0, "spikes outside the inhibition")
    if burst:
        v.require(len(p.bursts) >= 2 and min(p.burst_sizes, default=0) >= 2, "not >= 2 bursts during inhibition")
    else:
        v.require(p.count >= 2 and len(p.bursts) in (1, p.count), "not >= 2 single spikes during inhibition")
        if p.count >= 3:
            v.require(p.isis.max() < 3 * p.isis.min(), "the spikes during inhibition are grouped (bursts)")
    return v


Check = Callable[[Any, Any, Any], Verdict]
FIGURE1_BEHAVIOURS: dict[str, tuple[str, Check]] = {
    "tonic_spiking": ("spikes go on while the input persists, at a settled ISI", _tonic_spiking),
    "phasic_spiking": ("exactly one spike at the onset of a sustained input",
                       lambda tr, pr, m: _single_spike(tr, pr, m, after_pulse=False)),
    "tonic_bursting": ("a train of >= 3 bursts (gaps >= 3x the intra-burst ISIs)",
                       lambda tr, pr, m: _bursting(tr, pr, m, phasic=False)),
    "phasic_bursting": ("one burst at onset, then silence", lambda tr, pr, m: _bursting(tr, pr, m, phasic=True)),
    "mixed_mode": ("a burst, then single spikes", _mixed_mode),
    "spike_frequency_adaptation": ("ISIs increase monotonically, last >= 3x first", _adaptation),
    "class1_excitable": (f"on a ramp the rate rises from low (< {ONSET_RATE_HZ:g} Hz)",
                         lambda tr, pr, m: _excitability(tr, pr, m, klass=1)),
    "class2_excitable": (f"on a ramp firing starts at >= {ONSET_RATE_HZ:g} Hz",
                         lambda tr, pr, m: _excitability(tr, pr, m, klass=2)),
    "spike_latency": ("one spike, after the brief pulse has ended",
                      lambda tr, pr, m: _single_spike(tr, pr, m, after_pulse=True)),
    "subthreshold_oscillations": ("at most one spike, then damped oscillation of v about rest",
                                  _subthreshold_oscillations),
    "resonator": ("only the pulse pair at the oscillation period fires it", _resonator),
    "integrator": ("only the close pulse pair fires it", _integrator),
    "rebound_spike": ("one spike after a negative pulse", lambda tr, pr, m: _rebound(tr, pr, m, burst=False)),
    "rebound_burst": ("one burst after a negative pulse", lambda tr, pr, m: _rebound(tr, pr, m, burst=True)),
    "threshold_variability": ("a pulse fires it only right after inhibition", _threshold_variability),
    "bistability": ("a pulse starts tonic firing, a second pulse stops it", _bistability),
    "depolarizing_after_potential": ("one spike, then a depolarised hump before rest", _dap),
    "accommodation": ("a slow ramp does not fire it, a fast smaller one does", _accommodation),
    "inhibition_induced_spiking": ("single spikes only while inhibited",
                                   lambda tr, pr, m: _inhibition_induced(tr, pr, m, burst=False)),
    "inhibition_induced_bursting": ("bursts only while inhibited",
                                    lambda tr, pr, m: _inhibition_induced(tr, pr, m, burst=True)),
}


def check_behaviour(trajectory, preset_name: str | None = None) -> Verdict:
    """Does ``trajectory`` (an Izhikevich Figure 1 run) show the behaviour its preset is named after?"""
    from . import models

    name = preset_name or trajectory.preset
    if trajectory.model != "izhikevich":
        raise NeurospikeError(f"check_behaviour needs an 'izhikevich' run (Figure 1 presets), not {trajectory.model!r}")
    if name not in FIGURE1_BEHAVIOURS:
        raise NeurospikeError(f"no Figure 1 behaviour named {name!r}; names are {', '.join(FIGURE1_BEHAVIOURS)}")
    model = models.get("izhikevich")
    verdict = FIGURE1_BEHAVIOURS[name][1](trajectory, model.preset(name), model)
    verdict.require(trajectory.status == "success", f"the run stopped early ({trajectory.status})")
    return verdict

"""Recordings in: current-clamp sweeps (time, membrane potential, injected current) from CSV, NWB and ABF files.

Units: a :class:`Recording` holds ``t`` in ms and ``v`` in mV (converted on loading from s/ms/µs and V/mV/µV);
the current stays in the unit it was recorded in (A, mA, µA, nA, pA, or a density such as µA/cm²; NWB's
amperes become pA) and :meth:`Recording.input_for` converts it to a model's ``current_unit``. Every bad file is
refused with a one-line :class:`~neurospike.errors.NeurospikeError` that names the problem.

pynwb and pyabf (the ``fit`` extra) are imported only when an .nwb or .abf file is read, so ``import
neurospike`` loads neither them nor h5py or pandas.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NeurospikeError

KINDS = ("csv", "nwb", "abf")
MIN_SAMPLES = 2

# --- units -------------------------------------------------------------------------------------------------
# lookup key (lower case, µ/μ -> u, ² -> 2, no spaces) -> (normalised name, factor)
_TIME = {"s": ("s", 1e3), "sec": ("s", 1e3), "secs": ("s", 1e3), "second": ("s", 1e3), "seconds": ("s", 1e3),
         "ms": ("ms", 1.0), "msec": ("ms", 1.0), "millisecond": ("ms", 1.0), "milliseconds": ("ms", 1.0),
         "us": ("µs", 1e-3), "usec": ("µs", 1e-3), "microsecond": ("µs", 1e-3), "microseconds": ("µs", 1e-3)}
_VOLTAGE = {"v": ("V", 1e3), "volt": ("V", 1e3), "volts": ("V", 1e3), "mv": ("mV", 1.0), "millivolt": ("mV", 1.0),
            "millivolts": ("mV", 1.0), "uv": ("µV", 1e-3), "microvolt": ("µV", 1e-3), "microvolts": ("µV", 1e-3)}
_AMPERE_PREFIX = {"": ("A", 1.0), "m": ("mA", 1e-3), "u": ("µA", 1e-6), "n": ("nA", 1e-9), "p": ("pA", 1e-12)}
_CURRENT = {f"{p}a": v for p, v in _AMPERE_PREFIX.items()}
_CURRENT.update({"amp": ("A", 1.0), "amps": ("A", 1.0), "ampere": ("A", 1.0), "amperes": ("A", 1.0)})
_DENSITY = {f"{p}a/cm2": (f"{name}/cm²", scale) for p, (name, scale) in _AMPERE_PREFIX.items()}
_ALLOWED = {"time": "s, ms, µs (us)", "voltage": "V, mV, µV (uV)",
            "current": "A, mA, µA (uA), nA, pA or a density A/cm², mA/cm², µA/cm², nA/cm², pA/cm²"}


def _key(unit: str) -> str:
    text = str(unit).strip().strip("\x00").strip()
    for old, new in (("µ", "u"), ("μ", "u"), ("²", "2"), ("^2", "2"), ("**2", "2"), (" ", "")):
        text = text.replace(old, new)
    return text.lower()


def _unit(kind: str, unit: str, where: str) -> tuple[str, float]:
    """(normalised unit, factor): the factor takes time to ms, voltage to mV, a current to A (or A/cm²)."""
    table = {"time": _TIME, "voltage": _VOLTAGE, "current": {**_CURRENT, **_DENSITY}}[kind]
    found = table.get(_key(unit))
    if found is None:
        raise NeurospikeError(f"{where}: unknown {kind} unit {unit!r}; allowed: {_ALLOWED[kind]}")
    return found


def current_unit(unit: str) -> tuple[str, float, bool] | None:
    """A current unit as (normalised name, scale in A or A/cm², is a density), None if it is not one."""
    key = _key(unit)
    if key in _CURRENT:
        return (*_CURRENT[key], False)
    if key in _DENSITY:
        return (*_DENSITY[key], True)
    return None


# --- the recording -----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Recording:
    """One current-clamp sweep: ``t`` (ms, strictly increasing), ``v`` (mV), ``current`` (the injected current,
    in ``current_unit``), the file it came from, the sweep number (None for a CSV) and ``metadata`` (sampling
    rate, the file's own units, series names, the stimulus description, notes)."""

    t: Any
    v: Any
    current: Any
    current_unit: str
    source: str = ""
    sweep: int | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        where = f"recording {self.source!r}" if self.source else "recording"
        arrays = {}
        for name in ("t", "v", "current"):
            array = np.array(getattr(self, name), dtype=np.float64)  # a copy: it is made read-only below
            if array.ndim != 1:
                raise NeurospikeError(f"{where}: {name} must be 1-d (got shape {array.shape})")
            arrays[name] = array
        if not (arrays["t"].size == arrays["v"].size == arrays["current"].size):
            raise NeurospikeError(f"{where}: t, v and current have different lengths ({arrays['t'].size}, "
                                  f"{arrays['v'].size}, {arrays['current'].size})")
        _check_samples(where, arrays["t"], arrays["v"], arrays["current"])
        normalised = current_unit(self.current_unit)
        if normalised is None:
            _unit("current", self.current_unit, where)  # raises, naming the unit and the allowed ones
        for name, array in arrays.items():
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "current_unit", normalised[0])
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __repr__(self) -> str:
        return (f"Recording({Path(self.source).name or '?'}, sweep={self.sweep}, {self.t.size} samples, "
                f"t {self.t[0]:g}…{self.t[-1]:g} ms, current in {self.current_unit})")

    @property
    def duration(self) -> float:
        """t[-1] − t[0] in ms."""
        return float(self.t[-1] - self.t[0])

    def segment(self, start: float, stop: float) -> "Recording":
        """The samples with start ≤ t ≤ stop (ms; times are kept, not shifted to 0)."""
        if not (math.isfinite(start) and math.isfinite(stop) and stop > start):
            raise NeurospikeError(f"segment [{start:g}, {stop:g}] ms: need finite start < stop")
        keep = (self.t >= start) & (self.t <= stop)
        if np.count_nonzero(keep) < MIN_SAMPLES:
            raise NeurospikeError(f"segment [{start:g}, {stop:g}] ms holds {np.count_nonzero(keep)} sample(s) of "
                                  f"the recording [{self.t[0]:g}, {self.t[-1]:g}] ms; it needs at least {MIN_SAMPLES}")
        return replace(self, t=self.t[keep], v=self.v[keep], current=self.current[keep],
                       metadata={**self.metadata, "segment_ms": [float(start), float(stop)]})

    def current_in(self, unit: str, area: float | None = None) -> np.ndarray:
        """The current converted to ``unit`` (pA ↔ nA ↔ µA …; between a current and a density (…/cm²) only
        with the membrane ``area`` in cm²)."""
        target = current_unit(unit)
        if target is None:
            raise NeurospikeError(f"cannot convert the recorded current ({self.current_unit}) to {unit!r}; units "
                                  f"are {_ALLOWED['current']}")
        name, scale, density = current_unit(self.current_unit)
        if density == target[2]:
            return self.current * (scale / target[1])
        if area is None:
            raise NeurospikeError(f"the recorded current is in {name} but {target[0]} is "
                                  f"{'a current density' if target[2] else 'a current'}: give the membrane area "
                                  f"in cm² (area=...) to convert")
        if not (isinstance(area, (int, float, np.floating)) and math.isfinite(area) and area > 0):
            raise NeurospikeError(f"area={area!r} must be a positive membrane area in cm²")
        per_area = 1.0 / area if target[2] else area
        return self.current * (scale * per_area / target[1])

    def input_for(self, model, area: float | None = None, jump_fraction: float | None = None):
        """The recorded current as a :class:`~neurospike.currents.Sampled` input for ``model`` (a name or a
        :class:`~neurospike.models.Model`), in the model's ``current_unit``: pA, nA, µA … are converted into
        each other; an A-based current into a density such as µA/cm² (or back) needs ``area`` in cm²."""
        from .. import currents, models

        model = models.get(model) if isinstance(model, str) else model
        wanted = (model.current_unit or "").split()
        if not wanted or current_unit(wanted[0]) is None:
            raise NeurospikeError(f"model {model.name!r} takes its current in {model.current_unit or '(no unit)'!r}, "
                                  f"not a unit a recording converts to ({_ALLOWED['current']})")
        try:
            values = self.current_in(wanted[0], area)
        except NeurospikeError as exc:
            raise NeurospikeError(f"model {model.name!r}: {exc}") from None
        options = {} if jump_fraction is None else {"jump_fraction": jump_fraction}
        return currents.sampled(self.t, values, **options)

    def spike_times(self, threshold: float = 0.0, hysteresis: float = 5.0) -> np.ndarray:
        """Upward crossings of ``v`` through ``threshold`` (mV), linearly interpolated between samples (ms). After
        a crossing, v must first fall below ``threshold − hysteresis`` before the next one counts, so the noise
        on the repolarising edge of a spike does not count as another spike."""
        v, t = self.v, self.t
        candidates = np.flatnonzero((v[:-1] < threshold) & (v[1:] >= threshold))
        below = np.flatnonzero(v < threshold - hysteresis)
        kept, armed_after = [], -1
        for k in candidates:
            if k >= armed_after:
                kept.append(k)
                later = below[np.searchsorted(below, k + 1):]  # v must dip below threshold - hysteresis again
                armed_after = later[0] if later.size else len(v)
        k = np.asarray(kept, dtype=int)
        fraction = (threshold - v[k]) / (v[k + 1] - v[k])
        return t[k] + fraction * (t[k + 1] - t[k])


def _check_samples(where: str, t: np.ndarray, v: np.ndarray, current: np.ndarray) -> None:
    """At least MIN_SAMPLES samples, all finite, times strictly increasing; else a one-line error."""
    if t.size < MIN_SAMPLES:
        raise NeurospikeError(f"{where}: too few samples ({t.size}); a recording needs at least {MIN_SAMPLES}")
    for name, array in (("t", t), ("v", v), ("current", current)):
        bad = ~np.isfinite(array)
        if bad.any():
            first = int(np.argmax(bad))
            run = int(np.argmax(~bad[first:])) if not bad[first:].all() else int(bad.size - first)
            what = "NaN" if np.isnan(array[first]) else "inf"
            at = (f"sample {first} (after t = {t[first - 1]:g} ms)" if name == "t" and first > 0 else
                  f"sample {first}" if name == "t" else f"t = {t[first]:g} ms")
            raise NeurospikeError(f"{where}: {name} has a {what} run of {run} sample(s) from {at}; samples must be "
                                  f"finite numbers (cut them out or fill them)")
    steps = np.diff(t)
    if (steps <= 0).any():
        k = int(np.argmax(steps <= 0))
        problem = (f"time {t[k]:g} ms is repeated at samples {k} and {k + 1}" if steps[k] == 0 else
                   f"time goes back from {t[k]:g} to {t[k + 1]:g} ms at sample {k + 1}")
        raise NeurospikeError(f"{where}: {problem}; times must increase strictly")


def _sweeps_text(numbers) -> str:
    """'0–3, 7, 9–10' for [0, 1, 2, 3, 7, 9, 10]."""
    numbers = sorted(int(n) for n in numbers)
    parts, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}–{n}")
            start = None
    return ", ".join(parts)


def _choose_sweep(where: str, available, sweep):
    available = sorted(available)
    if not available:
        raise NeurospikeError(f"{where}: no current-clamp sweep in the file")
    if sweep is None:
        if len(available) > 1:
            raise NeurospikeError(f"{where} has {len(available)} sweeps ({_sweeps_text(available)}); choose one "
                                  f"with sweep=N")
        return available[0]
    if isinstance(sweep, bool) or not isinstance(sweep, (int, np.integer)) or int(sweep) not in available:
        raise NeurospikeError(f"{where}: sweep {sweep!r} is out of range; sweeps are {_sweeps_text(available)}")
    return int(sweep)


# --- loading -----------------------------------------------------------------------------------------------
def load_recording(path: str | os.PathLike, sweep: int | None = None, *, kind: str | None = None) -> Recording:
    """Read one current-clamp sweep from ``path``: ``kind`` "csv", "nwb" or "abf", by default from the suffix.

    ``sweep`` picks a sweep of an NWB file (its sweep number) or ABF file (0-based); a file with several sweeps
    needs one. CSV: columns t, v, I in any order, with units in the header (``t (ms),v (mV),I (pA)``) or in a
    second row (``ms,mV,pA``), or a file written by :meth:`neurospike.Trajectory.to_csv` (units from its model;
    it has no current column, so the current is 0 and ``metadata["note"]`` says so).
    """
    path = Path(path)
    where = f"recording {str(path)!r}"
    if kind is None:
        kind = path.suffix.lower().lstrip(".")
        if kind not in KINDS:
            raise NeurospikeError(f"{where}: unknown format {path.suffix or '(no suffix)'!r}; use .csv, .nwb or .abf "
                                  f"(or kind='csv', 'nwb', 'abf')")
    elif kind not in KINDS:
        raise NeurospikeError(f"{where}: unknown kind={kind!r}; use 'csv', 'nwb' or 'abf'")
    if not path.is_file():
        raise NeurospikeError(f"{where} does not exist" if not path.exists() else f"{where} is not a file")
    return {"csv": _load_csv, "nwb": _load_nwb, "abf": _load_abf}[kind](path, where, sweep)


_NAMES = {"t": ("t", "time"), "v": ("v", "vm", "v_m", "voltage", "membrane potential"),
          "I": ("i", "current", "i_inj", "i_ext", "stimulus")}
_HEADER_CELL = re.compile(r"^(?P<name>.*?)\s*[\(\[]\s*(?P<unit>[^\)\]]*?)\s*[\)\]]$")


def _load_csv(path: Path, where: str, sweep) -> Recording:
    if sweep not in (None, 0):
        raise NeurospikeError(f"{where}: sweep {sweep!r} is out of range; a CSV recording has one sweep (0)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise NeurospikeError(f"{where}: cannot read it as text ({exc.__class__.__name__})") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)]
    comments = [line for _, line in lines if line.lstrip().startswith("#")]
    rows = [(number, row) for number, row in zip(
        (n for n, line in lines if line.strip() and not line.lstrip().startswith("#")),
        csv.reader(line for _, line in lines if line.strip() and not line.lstrip().startswith("#")))]
    if not rows:
        raise NeurospikeError(f"{where}: no header row; a CSV recording needs columns t, v, I with units, e.g. "
                              f"'t (ms),v (mV),I (pA)'")
    metadata: dict[str, Any] = {"format": "csv"}
    header = rows[0][1]
    names, units = [], []
    for cell in header:
        match = _HEADER_CELL.match(cell.strip())
        names.append((match["name"] if match else cell).strip())
        units.append(match["unit"] if match else None)
    data_rows = rows[1:]
    if any(u is None for u in units) and data_rows and not _all_numbers(data_rows[0][1]):
        unit_row = [cell.strip() for cell in data_rows[0][1]]
        units = [u if u is not None else (unit_row[i] if i < len(unit_row) and unit_row[i] else None)
                 for i, u in enumerate(units)]
        data_rows = data_rows[1:]
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        for role, aliases in _NAMES.items():
            if name.strip().lower() in aliases:
                if role in columns:
                    raise NeurospikeError(f"{where}: two columns are {role} ({names[columns[role]]!r} and {name!r})")
                columns[role] = index
    trajectory = next((line for line in comments if line.lstrip("# ").startswith("model=")), None)
    if trajectory is not None:
        _trajectory_units(trajectory, names, units, columns, metadata)
    needed = ("t", "v") if trajectory is not None else ("t", "v", "I")  # a Trajectory CSV has no current
    missing = [role for role in needed if role not in columns]
    if missing:
        raise NeurospikeError(f"{where}: no column {', '.join(repr(m) for m in missing)}; columns are "
                              f"{', '.join(repr(n) for n in names)}; a CSV recording needs t, v and I (the injected "
                              f"current) with units, e.g. 't (ms),v (mV),I (pA)'")
    for role in ("t", "v", "I"):
        if role in columns and units[columns[role]] is None:
            raise NeurospikeError(f"{where}: no unit for column {names[columns[role]]!r}; give units in the header "
                                  f"('t (ms),v (mV),I (pA)') or as a second row ('ms,mV,pA')")
    used = sorted(columns.values())
    table = np.empty((len(data_rows), len(used)))
    for r, (number, row) in enumerate(data_rows):
        if len(row) < max(used) + 1:
            raise NeurospikeError(f"{where}: line {number} has {len(row)} cell(s) but the header has {len(names)}")
        for c, index in enumerate(used):
            try:
                table[r, c] = float(row[index])
            except ValueError:
                raise NeurospikeError(f"{where}: line {number}, column {names[index]!r}: {row[index]!r} is not a "
                                      f"number") from None
    column = {role: table[:, used.index(index)] for role, index in columns.items()}
    t_unit, t_factor = _unit("time", units[columns["t"]], f"{where}, column {names[columns['t']]!r}")
    v_unit, v_factor = _unit("voltage", units[columns["v"]], f"{where}, column {names[columns['v']]!r}")
    fallback = metadata.pop("_current_unit", "pA")
    if "I" in column:
        i_unit = _unit("current", units[columns["I"]], f"{where}, column {names[columns['I']]!r}")[0]
        current = column["I"]
    else:
        i_unit, current = fallback, np.zeros(len(data_rows))
    metadata["units_in_file"] = {"t": t_unit, "v": v_unit, "current": i_unit}
    t, v = column["t"] * t_factor, column["v"] * v_factor
    if trajectory is not None and t.size > 1:
        # a trajectory holds two points at a spike with a reset (before, after): keep the first (the peak)
        keep = np.concatenate([[True], np.diff(t) != 0])
        if not keep.all():
            metadata["dropped_reset_points"] = int(np.count_nonzero(~keep))
            t, v, current = t[keep], v[keep], current[keep]
    interval = float(np.median(np.diff(t))) if t.size >= 2 and np.all(np.isfinite(t)) else 0.0
    metadata["sampling_rate_hz"] = 1e3 / interval if interval > 0 else None
    return Recording(t, v, current, i_unit, str(path), None, metadata)


def _all_numbers(row) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def _trajectory_units(comment: str, names, units, columns, metadata) -> None:
    """Units of a Trajectory.to_csv file from its model (t in the model's time unit, v in its state unit)."""
    from .. import models

    fields = dict(item.split("=", 1) for item in comment.lstrip("# ").split(" spikes=")[0].split() if "=" in item)
    spikes = comment.split(" spikes=")[1].split() if " spikes=" in comment else []
    metadata.update(trajectory={**{k: fields.get(k) for k in ("model", "method", "dt")},
                                "spikes": [float(x) for x in spikes]})
    try:
        model = models.get(fields.get("model", ""))
    except NeurospikeError:
        model = None
    state_units = dict(zip(model.states, model.state_units)) if model else {}
    for role, unit in (("t", model.time_unit if model else "ms"), ("v", state_units.get("v", "mV"))):
        if role in columns and units[columns[role]] is None:
            units[columns[role]] = unit
    unit = (model.current_unit.split() or ["pA"])[0] if model else "pA"
    metadata["_current_unit"] = unit if current_unit(unit) else "pA"
    if "I" not in columns:
        metadata["note"] = ("a Trajectory CSV holds no input current: current is 0 here; put the run's input in "
                            "with dataclasses.replace(recording, current=..., current_unit=...)")
    if model is None:
        metadata["note"] = (metadata.get("note", "") + f"; model {fields.get('model')!r} is not registered, so t "
                            f"is taken in ms and v in mV").lstrip("; ")


def _load_nwb(path: Path, where: str, sweep) -> Recording:
    try:
        from pynwb import NWBHDF5IO
        from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries, IZeroClampSeries
    except ImportError:
        raise NeurospikeError(f"{where}: reading NWB needs pynwb (pip install 'neurospike[fit]')") from None
    io = None
    try:
        io = NWBHDF5IO(str(path), "r", load_namespaces=True)
        nwbfile = io.read()
    except Exception as exc:  # h5py / hdmf raise many types for a bad file
        if io is not None:
            io.close()
        raise NeurospikeError(f"{where}: not a readable NWB file ({_first_line(exc)})") from None
    with io:
        sweeps = _nwb_sweeps(nwbfile, where, CurrentClampSeries, CurrentClampStimulusSeries)
        number = _choose_sweep(where, sweeps, sweep)
        (response, r_slice), stimulus_ref, pairing = sweeps[number]
        try:
            t_s, volts, rate = _nwb_series(response, r_slice)
            v_unit, v_factor = _unit("voltage", response.unit, f"{where}, series {response.name!r}")
            metadata: dict[str, Any] = {
                "format": "nwb", "response": response.name, "sweep_pairing": pairing,
                "stimulus_description": getattr(response, "stimulus_description", None),
                "sampling_rate_hz": rate, "start_time_s": float(t_s[0]),
                "units_in_file": {"t": "seconds", "v": response.unit},
                "conversion": {"v": float(response.conversion)}}
            if stimulus_ref is None:
                if not isinstance(response, IZeroClampSeries):
                    raise NeurospikeError(f"{where}: sweep {number} ({response.name}) has no "
                                          f"CurrentClampStimulusSeries (none with its sweep_number in stimulus, "
                                          f"none in the recordings table)")
                amperes, metadata["stimulus"] = np.zeros(t_s.size), None
                metadata["note"] = "I=0 clamp: no current injected"
                i_unit = "amperes"
            else:
                stimulus, s_slice = stimulus_ref
                s_t, amperes, _ = _nwb_series(stimulus, s_slice)
                i_unit = stimulus.unit
                metadata.update(stimulus=stimulus.name)
                metadata["conversion"]["current"] = float(stimulus.conversion)
                if s_t.size != t_s.size or not np.allclose(s_t, t_s, rtol=0, atol=1e-9):
                    amperes = np.interp(t_s, s_t, amperes)
                    metadata["note"] = "the stimulus was resampled (linearly) onto the response's times"
            metadata["units_in_file"]["current"] = i_unit
            i_name, i_scale = _unit("current", i_unit, f"{where}, stimulus of sweep {number}")
        except NeurospikeError:
            raise
        except Exception as exc:
            raise NeurospikeError(f"{where}: cannot read sweep {number} ({_first_line(exc)})") from None
    relative = (np.arange(t_s.size) * 1e3 / rate) if rate else (t_s - t_s[0]) * 1e3
    unit = "µA/cm²" if i_name.endswith("/cm²") else "pA"  # SI amperes are awkward numbers: pA (or µA/cm²)
    amperes = amperes * (i_scale / current_unit(unit)[1])
    return Recording(relative, volts * v_factor, amperes, unit, str(path), number, metadata)


def _nwb_sweeps(nwbfile, where, response_type, stimulus_type) -> dict:
    """{sweep number: ((response, slice), (stimulus, slice) or None, how they were paired)}."""
    sweeps: dict[int, Any] = {}
    table = getattr(nwbfile, "intracellular_recordings", None)
    if table is not None and len(table) > 0:
        for row in range(len(table)):
            response = table["responses"]["response"][row]
            if response.timeseries is None or not isinstance(response.timeseries, response_type):
                continue
            stimulus = table["stimuli"]["stimulus"][row]
            number = response.timeseries.sweep_number
            number = row if number is None else int(number)
            if number in sweeps:
                raise NeurospikeError(f"{where}: sweep number {number} appears twice in the recordings table")
            stimulus_pair = None
            if stimulus.timeseries is not None and stimulus.idx_start >= 0:
                stimulus_pair = (stimulus.timeseries, slice(int(stimulus.idx_start),
                                                            int(stimulus.idx_start) + int(stimulus.count)))
            sweeps[number] = ((response.timeseries, slice(int(response.idx_start),
                                                          int(response.idx_start) + int(response.count))),
                              stimulus_pair, "intracellular_recordings table")
        if sweeps:
            return sweeps
    responses = sorted((s for s in nwbfile.acquisition.values() if isinstance(s, response_type)),
                       key=lambda s: s.name)
    if not responses:
        found = sorted({type(s).__name__ for s in nwbfile.acquisition.values()}) or ["nothing"]
        raise NeurospikeError(f"{where}: no current-clamp sweep (CurrentClampSeries) in acquisition; found "
                              f"{', '.join(found)}")
    stimuli = sorted((s for s in nwbfile.stimulus.values() if isinstance(s, stimulus_type)), key=lambda s: s.name)
    numbered = all(s.sweep_number is not None for s in responses)
    by_number = {int(s.sweep_number): s for s in stimuli if s.sweep_number is not None}
    sweep_table = getattr(nwbfile, "sweep_table", None)
    for index, response in enumerate(responses):
        number = int(response.sweep_number) if numbered else index
        if number in sweeps:
            raise NeurospikeError(f"{where}: sweep number {number} is used by two responses "
                                  f"({sweeps[number][0][0].name}, {response.name})")
        stimulus, how = None, "sweep_number"
        if numbered and number in by_number:
            stimulus = by_number[number]
        elif sweep_table is not None and numbered:
            try:
                stimulus = next((s for s in sweep_table.get_series(number) if isinstance(s, stimulus_type)), None)
                how = "sweep table"
            except Exception:  # no such sweep in the table
                stimulus = None
        if stimulus is None and len(stimuli) == len(responses) and not by_number:
            stimulus, how = stimuli[index], "name order"
        sweeps[number] = ((response, slice(None)), None if stimulus is None else (stimulus, slice(None)), how)
    return sweeps


def _nwb_series(series, part: slice):
    """(times in s, values in the series' unit (conversion and offset applied), rate in Hz or None)."""
    data = np.asarray(series.data[part], dtype=np.float64)
    if data.ndim != 1:
        raise NeurospikeError(f"series {series.name!r} has data of shape {data.shape}; a sweep is 1-d")
    values = data * float(series.conversion) + float(getattr(series, "offset", 0.0) or 0.0)
    first = part.start or 0
    if series.timestamps is not None:
        times = np.asarray(series.timestamps[part], dtype=np.float64)
        return times, values, None
    rate = float(series.rate)
    start = float(series.starting_time or 0.0)
    return start + (first + np.arange(values.size)) / rate, values, rate


def _load_abf(path: Path, where: str, sweep) -> Recording:
    try:
        import pyabf
    except ImportError:
        raise NeurospikeError(f"{where}: reading ABF needs pyabf (pip install 'neurospike[fit]')") from None
    try:
        abf = pyabf.ABF(str(path))
    except Exception as exc:  # pyabf raises many types for a bad file
        raise NeurospikeError(f"{where}: not a readable ABF file ({_first_line(exc)})") from None
    number = _choose_sweep(where, abf.sweepList, sweep)
    adc_units = [str(u).strip("\x00 ") for u in abf.adcUnits]
    channel = next((i for i, unit in enumerate(adc_units) if _key(unit) in _VOLTAGE), None)
    if channel is None:
        raise NeurospikeError(f"{where}: no channel records a voltage (channel units "
                              f"{', '.join(repr(u) for u in adc_units)}); a current-clamp recording is needed")
    try:
        abf.setSweep(number, channel=channel)
        volts, command = np.asarray(abf.sweepY, dtype=np.float64), np.asarray(abf.sweepC, dtype=np.float64)
    except Exception as exc:
        raise NeurospikeError(f"{where}: cannot read sweep {number} ({_first_line(exc)})") from None
    c_units = str(abf.sweepUnitsC or "").strip("\x00 ")
    if not c_units or not np.all(np.isfinite(command)):
        raise NeurospikeError(f"{where}: sweep {number} has no command waveform (stimulus) for channel {channel} "
                              f"(units {c_units!r}); neurospike needs the injected current")
    v_unit, v_factor = _unit("voltage", abf.sweepUnitsY, f"{where}, channel {channel}")
    i_unit = _unit("current", c_units, f"{where}, command of channel {channel}")[0]
    rate = float(abf.dataRate)
    t = np.arange(volts.size) * 1e3 / rate
    metadata = {"format": "abf", "abf_version": getattr(abf, "abfVersionString", None), "sampling_rate_hz": rate,
                "channel": channel, "protocol": getattr(abf, "protocol", None),
                "units_in_file": {"t": "s", "v": v_unit, "current": c_units}}
    return Recording(t, volts * v_factor, command[:volts.size], i_unit, str(path), number, metadata)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:200]}" if text else exc.__class__.__name__

"""The one result type of every method: :class:`Trajectory`."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .errors import NeurospikeError


@dataclass
class Trajectory:
    """A solution: times ``t``, named ``states`` (arrays over ``t``), spike times and how it was made.

    At a spike with a reset the trace holds two points at the spike time: the state just before the reset and
    the state just after it (``spike_states_before`` / ``spike_states_after`` hold them per spike).
    ``at(times)`` evaluates the method's own dense output: the step interpolant of a fixed-step method, the
    adaptive solver's dense output for ``reference``. ``status`` is ``"success"`` or says why the run stopped
    early (``message``); the arrays hold what was computed up to there.

    A population run (N neurons) has states of shape (len(t), N), ``spikes`` with the parallel array
    ``spike_neurons`` (sorted by time, like Brian2's SpikeMonitor ``t`` and ``i``) and ``spike_counts`` (N,).
    """

    t: np.ndarray
    states: dict[str, np.ndarray]
    spikes: np.ndarray
    model: str
    method: str
    params: dict[str, Any]
    preset: str | None = None
    dt: float | None = None
    events: str = "located"
    state_units: dict[str, str] = field(default_factory=dict)
    spike_states_before: np.ndarray | None = None
    spike_states_after: np.ndarray | None = None
    compile_time_s: float = 0.0
    run_time_s: float = 0.0
    status: str = "success"
    message: str = ""
    alpha: Any = None
    spike_neurons: np.ndarray | None = None
    spike_counts: np.ndarray | None = None
    training: dict[str, Any] | None = None  # PINN methods: losses, residual over time, times, options
    dense: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False, compare=False)
    sampled: bool = field(default=False, compare=False)  # t holds times picked by at()/save_at, not the steps

    def __getitem__(self, name: str) -> np.ndarray:
        return self.states[name]

    @property
    def state_names(self) -> list[str]:
        return list(self.states)

    @property
    def y(self) -> np.ndarray:
        """States stacked as an array of shape (len(t), n_states)."""
        return np.stack([self.states[s] for s in self.states], axis=-1)

    @property
    def wall_time_s(self) -> float:
        return self.compile_time_s + self.run_time_s

    def at(self, times) -> "Trajectory":
        """The trajectory evaluated at ``times`` (ms), by the method's dense output. At a spike time the
        state after the reset is returned."""
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if times.size and (times.min() < self.t[0] - 1e-9 or times.max() > self.t[-1] + 1e-9):
            raise NeurospikeError(
                f"requested time(s) outside the run [{self.t[0]:g}, {self.t[-1]:g}] ms: "
                f"{', '.join(f'{x:g}' for x in times[(times < self.t[0] - 1e-9) | (times > self.t[-1] + 1e-9)][:5])}"
            )
        if self.dense is not None:
            values = np.asarray(self.dense(times))
        else:
            values = np.stack([_right_continuous_interp(times, self.t, self.states[s]) for s in self.states], -1)
        states = {name: values[..., i] for i, name in enumerate(self.states)}
        return replace(self, t=times, states=states, sampled=True)

    def neuron(self, i: int) -> "Trajectory":
        """Neuron ``i`` of a population run as a one-neuron trajectory: its states, spikes, parameters and order
        (a population's spike records may hold fewer spikes than its counts: ``max_recorded_spikes``)."""
        if self.spike_counts is None:
            raise NeurospikeError("neuron(i) picks one neuron of a population run; this run has one neuron")
        count = len(self.spike_counts)
        if not (isinstance(i, (int, np.integer)) and -count <= i < count):
            raise NeurospikeError(f"neuron {i!r} is not one of the population's {count} neurons (0 … {count - 1})")
        one = lambda value: value[..., i] if np.ndim(value) and np.shape(value)[-1] == count else value  # noqa: E731
        alpha = self.alpha if not isinstance(self.alpha, Mapping) else {k: one(v) for k, v in self.alpha.items()}
        return replace(self, states={name: values[:, i] for name, values in self.states.items()},
                       spikes=np.asarray(self.spikes)[np.asarray(self.spike_neurons) == i % count],
                       params={k: one(v) for k, v in self.params.items()}, alpha=one(alpha) if not isinstance(
                           alpha, Mapping) else alpha, spike_neurons=None, spike_counts=None, dense=None,
                       spike_states_before=None, spike_states_after=None)

    # --- output -------------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "preset": self.preset,
            "method": self.method,
            "dt": self.dt,
            "events": self.events,
            "alpha": self.alpha,
            "params": {k: _plain(v) for k, v in self.params.items()},
            "state_units": self.state_units,
            "compile_time_s": self.compile_time_s,
            "run_time_s": self.run_time_s,
            "status": self.status,
            "message": self.message,
        }

    def to_json(self, path: str | os.PathLike) -> None:
        data = {
            "model": self.model,
            "preset": self.preset,
            "method": self.method,
            "dt": self.dt,
            "params": {k: _plain(v) for k, v in self.params.items()},
            "state_units": self.state_units,
            "t": self.t.tolist(),
            "states": {k: np.asarray(v).tolist() for k, v in self.states.items()},
            "spikes": _plain(self.spikes),
            **({} if self.spike_neurons is None else {"spike_neurons": _plain(self.spike_neurons),
                                                      "spike_counts": _plain(self.spike_counts)}),
            "compile_time_s": self.compile_time_s,
            "run_time_s": self.run_time_s,
            "events": self.events,
            "status": self.status,
            "message": self.message,
            **({} if self.alpha is None else {"alpha": self.alpha}),
            **({} if self.training is None else {"training": self.training}),
        }
        _atomic_write(path, lambda f: json.dump(data, f, allow_nan=True), text=True)

    def to_csv(self, path: str | os.PathLike) -> None:
        """Columns t and one per state; spikes are in the header comment line."""
        def write(f):
            f.write(f"# model={self.model} method={self.method} dt={self.dt} spikes="
                    f"{' '.join(f'{x:.17g}' for x in np.ravel(self.spikes))}\n")
            writer = csv.writer(f)
            writer.writerow(["t", *self.states])
            for row in zip(self.t, *(np.asarray(v) for v in self.states.values())):
                writer.writerow([f"{x:.17g}" for x in row])

        _atomic_write(path, write, text=True)

    def to_npz(self, path: str | os.PathLike) -> None:
        arrays = {"t": self.t, "spikes": np.asarray(self.spikes, dtype=float),
                  **({} if self.spike_neurons is None else {"spike_neurons": self.spike_neurons,
                                                            "spike_counts": self.spike_counts}),
                  **{f"state_{k}": np.asarray(v) for k, v in self.states.items()},
                  "metadata": np.asarray(json.dumps(self.metadata()))}
        _atomic_write(path, lambda f: np.savez(f, **arrays), text=False)

    def save(self, path: str | os.PathLike) -> None:
        """Write by extension: .json, .csv or .npz."""
        suffix = Path(path).suffix.lower()
        writers = {".json": self.to_json, ".csv": self.to_csv, ".npz": self.to_npz}
        if suffix not in writers:
            raise NeurospikeError(f"output {str(path)!r}: unknown format {suffix or '(none)'!r}; use .csv, .npz or .json")
        writers[suffix](path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Trajectory":
        """Read a trajectory written by ``to_json``, ``to_npz`` or ``to_csv`` (CSV keeps no parameters)."""
        path = Path(path)
        if path.suffix == ".csv":
            lines = path.read_text().splitlines()
            header = lines[0][2:] if lines and lines[0].startswith("# ") else ""
            fields, _, spikes = header.partition(" spikes=")
            meta = dict(item.split("=", 1) for item in fields.split() if "=" in item)
            rows = list(csv.reader(lines[1 if header else 0:]))
            table = np.array(rows[1:], dtype=float).reshape(-1, len(rows[0]))
            return cls(t=table[:, 0], states={name: table[:, i + 1] for i, name in enumerate(rows[0][1:])},
                       spikes=np.array(spikes.split(), dtype=float), model=meta.get("model", ""),
                       method=meta.get("method", ""), params={},
                       dt=None if meta.get("dt", "None") == "None" else float(meta["dt"]))
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            return cls(t=np.asarray(data["t"]), states={k: np.asarray(v) for k, v in data["states"].items()},
                       spikes=np.asarray(data["spikes"], dtype=float), model=data["model"], method=data["method"],
                       params=data["params"], preset=data.get("preset"), dt=data.get("dt"),
                       state_units=data.get("state_units", {}), compile_time_s=data.get("compile_time_s", 0.0), run_time_s=data.get("run_time_s", 0.0),
                       events=data.get("events", "located"), status=data.get("status", "success"),
                       message=data.get("message", ""), alpha=data.get("alpha"), training=data.get("training"),
                       spike_neurons=_optional_array(data.get("spike_neurons"), int),
                       spike_counts=_optional_array(data.get("spike_counts"), int))
        with np.load(path) as data:
            meta = json.loads(str(data["metadata"]))
            states = {k[len("state_"):]: data[k] for k in data.files if k.startswith("state_")}
            return cls(t=data["t"], states=states, spikes=data["spikes"], model=meta["model"], method=meta["method"],
                       params=meta["params"], preset=meta["preset"], dt=meta["dt"], events=meta["events"],
                       state_units=meta["state_units"], compile_time_s=meta["compile_time_s"],
                       run_time_s=meta["run_time_s"], status=meta["status"], message=meta["message"],
                       alpha=meta.get("alpha"), spike_neurons=data["spike_neurons"] if "spike_neurons" in data.files else None,
                       spike_counts=data["spike_counts"] if "spike_counts" in data.files else None)

    def plot(self, path: str | os.PathLike | None = None, states: list[str] | None = None, axes=None,
             reference: "Trajectory | None" = None, marked: "Trajectory | None" = None):
        """One panel per state (all by default) against t, the spike times ticked at the top; optionally over a
        ``reference`` and with ``marked`` (the same run sampled at a few times, e.g. its ``save_at`` points)
        drawn as markers on the trace. A trajectory that holds only sampled times (from ``at``/``save_at``) is
        drawn as markers, never as a polyline that would pass for the trace. With ``path`` the figure is written
        there (without pyplot: the backend is left alone); without, it is a pyplot figure. Returns the axes."""
        from .figures import axis_label, legend_outside, mark_spikes, save

        states = states or self.state_names
        if axes is None:
            if path is not None:
                from .figures import subplots
            else:
                from matplotlib.pyplot import subplots
            fig, axes = subplots(len(states), 1, sharex=True, figsize=(9, 2.2 * len(states) + 0.6), squeeze=False)
            fig.set_layout_engine("constrained")  # room for the legend beside the axes
            axes = axes[:, 0]
        points = dict(ls="none", marker="o", ms=3 if self.t.size <= 200 else 1)
        for ax, name in zip(axes, states):
            if reference is not None:
                ax.plot(reference.t, reference.states[name], color="0.6", lw=2.5, label=reference.method)
            style = points if self.sampled else dict(lw=1)
            ax.plot(self.t, self.states[name], label=self.method + (" (sampled times)" if self.sampled else ""),
                    **style)
            if marked is not None:
                ax.plot(marked.t, marked.states[name], ls="none", marker="o", ms=5, mfc="none", mew=1.2,
                        color="C3", label=f"saved points ({marked.t.size})")
            ax.set_ylabel(axis_label(name, self.state_units.get(name, "")))
        mark_spikes(axes[0], self.spikes)
        axes[0].set_title(f"{self.model}" + (f" [{self.preset}]" if self.preset else "")
                          + f" — {self.method}" + (f", dt = {self.dt:g} ms" if self.dt else "")
                          + f", {np.size(self.spikes)} spikes", fontsize=10)
        if reference is not None or marked is not None or self.sampled:
            legend_outside(axes[0])
        axes[-1].set_xlabel("t (ms)")
        if path is not None:
            save(axes[0].figure, path)
        return axes


def merge_spikes(nodes, trace, spike_times, before, after):
    """Insert (t*, state before reset) and (t*, state after reset) of each spike into the node trace."""
    if len(spike_times) == 0:
        return nodes, trace
    points = np.empty((2 * len(spike_times), trace.shape[1]))
    points[0::2], points[1::2] = before, after
    position = np.searchsorted(nodes, spike_times, side="left")
    return np.insert(nodes, np.repeat(position, 2), np.repeat(spike_times, 2)), np.insert(
        trace, np.repeat(position, 2), points, axis=0)


def insert_points(t, y, times, states):
    """Insert (times, states) into the trace (t, y), each after the points already at the same time."""
    if len(times) == 0:
        return t, y
    position = np.searchsorted(t, times, side="right")
    return np.insert(t, position, times), np.insert(y, position, states, axis=0)


def _right_continuous_interp(times, t, values):
    """Linear interpolation that takes the later of two points at the same time (the post-reset state)."""
    index = np.clip(np.searchsorted(t, times, side="right") - 1, 0, len(t) - 2)
    t0, t1 = t[index], t[index + 1]
    width = np.where(t1 > t0, t1 - t0, 1.0)
    theta = np.clip((times - t0) / width, 0.0, 1.0).reshape((-1,) + (1,) * (np.ndim(values) - 1))
    return values[index] + theta * (values[index + 1] - values[index])


def _optional_array(value, dtype):
    return None if value is None else np.asarray(value, dtype=dtype)


def _plain(value):
    value = np.asarray(value) if not isinstance(value, (str, type(None), dict)) else value
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else value.tolist()
    return value


def _atomic_write(path, write, text: bool) -> None:
    """Write to a temporary file beside ``path`` and rename it, so a failure leaves no partial file."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "w" if text else "wb", **({"newline": ""} if text else {})) as f:
            write(f)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()

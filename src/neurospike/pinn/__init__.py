"""Physics-informed neural networks for neuron models (``simulate(..., method="pinn" | "pinn-data" |
"pinn-marching" | "pinn-reset" | "splitting-pinn")``): every method returns the same
:class:`~neurospike.Trajectory` as the classical solvers, with the training record in ``Trajectory.training``.
The engine is :mod:`neurospike.pinn.engine`, the methods :mod:`neurospike.pinn.methods`; docs/pinn.md states
the algorithms and their equations.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import NeurospikeError
from ..trajectory import Trajectory, _atomic_write, merge_spikes
from .engine import PinnOptions, resolve_options
from .fractional import fpinn
from .methods import check_model, march, split_march
from .network import apply_network, parameter_count

MODES = {"pinn": "whole", "pinn-data": "whole", "pinn-marching": "marching", "pinn-reset": "reset"}
CHECKPOINT_VERSION = 1

__all__ = ["PinnOptions", "run", "run_fractional", "data_points", "load_checkpoint", "PinnSolution",
           "resolve_options"]


def run(model, method, values, current, start, t0, t_end, dt, options=None, progress=None, checkpoint=None,
        data=None):
    """Train the PINN ``method`` on ``model`` over [t0, t_end] and return its :class:`Trajectory`. ``data``
    (``pinn-data``: the (times, states) of a classical run, :func:`data_points`) is what the network also fits;
    the caller computes it. ``progress(t, loss)`` is called as windows complete (the largest final loss of the
    windows just trained); ``checkpoint`` (a path) saves the trained networks (npz, no pickle) for
    :func:`load_checkpoint`."""
    if any(np.ndim(v) for v in (*values.values(), *start.values())):
        raise NeurospikeError(f"method {method!r} trains on one neuron; give scalar parameters")
    options = resolve_options(method, options)
    check_model(model, method, values, options)
    if checkpoint is not None and Path(checkpoint).suffix != ".npz":  # before training, not after
        raise NeurospikeError(f"checkpoint {str(checkpoint)!r} must end in .npz")
    if method == "splitting-pinn":
        out = split_march(model, values, current, start, t0, t_end, options, progress)
        trajectory = _splitting_trajectory(model, method, values, out, options)
        solution = None
    else:
        if method == "pinn-data" and data is None:
            raise NeurospikeError("pinn-data fits a classical run: give data=data_points(trajectory)")
        out = march(model, values, current, start, t0, t_end, MODES[method], options, data, progress)
        solution = PinnSolution.from_march(model, method, values, current, options, out)
        trajectory = _march_trajectory(model, method, values, out, options, t_end, solution)
    if checkpoint is not None:
        save_checkpoint(checkpoint, trajectory, solution, out if solution is None else None)
    return trajectory


def run_fractional(model, method, values, current, start, t0, t_end, dt, orders, options=None, progress=None):
    """``fpinn``: the fractional PINN with the L1 scheme (:mod:`neurospike.pinn.fractional`) on the grid of
    step ``dt``, Caputo orders ``orders`` per state; a :class:`Trajectory` like the L1 solver's."""
    options = resolve_options(method, options)
    check_model(model, method, values, options)
    out = fpinn(model, values, current, start, t0, t_end, dt, np.asarray(orders, dtype=float), options, progress)
    t, y = merge_spikes(out["t"], out["y"], out["spike_times"], out["before"], out["after"])
    rule = model.spike
    resets = rule is not None and rule.reset is not None
    spikes = out["spike_times"] if resets else _crossings(rule, values, t, y[:, model.state_index(rule.state)]
                                                           ) if rule else np.zeros(0)
    training = {"method": method, "options": _plain_options(options), "windows": out["windows"],
                "window_length_ms": out["steps_per_window"] * dt, "loss": out["loss"].tolist(),
                "residual_t": out["window_end"].tolist(), "residual": np.sqrt(out["loss"]).tolist(),
                "groups": [list(g) for g in out["groups"]], "train_time_s": out["train_time_s"],
                "inference_time_s": 0.0,
                "optimiser_steps": int(out["windows"] * (options.adam_steps + options.lbfgs_steps))}
    return Trajectory(t=t, states={s: y[:, i] for i, s in enumerate(model.states)}, spikes=spikes,
                      model=model.name, method=method, params=dict(values), dt=dt, events="located",
                      state_units=dict(zip(model.states, model.state_units)),
                      spike_states_before=out["before"] if resets else None,
                      spike_states_after=out["after"] if resets else None, compile_time_s=out["compile_time_s"],
                      run_time_s=out["train_time_s"], alpha=dict(zip(model.states, np.asarray(orders).tolist())),
                      training=training)


def data_points(classical: Trajectory):
    """``pinn-data``'s data: a classical solution on its grid nodes, one value per time (the post-reset one),
    at most ~4000 points."""
    keep = np.concatenate([np.diff(classical.t) > 0, [True]])  # one value per time (the post-reset one)
    every = max(1, int(np.sum(keep)) // 4000)
    return classical.t[keep][::every], classical.y[keep][::every]


def _crossings(rule, values, t, v):
    """Upward crossings of the spike level on the piecewise-linear trace (times by linear interpolation)."""
    if rule is None:
        return np.zeros(0)
    level = float(values[rule.level])
    up = np.flatnonzero((v[:-1] < level) & (v[1:] >= level) & (t[1:] > t[:-1]))
    return t[up] + (level - v[up]) / (v[up + 1] - v[up]) * (t[up + 1] - t[up])


def _march_trajectory(model, method, values, out, options, t_end, solution):
    taus, length = out["taus"], out["length"]
    times, states, residuals, before, after, spikes = [], [], [], [], [], []
    previous_reset = False
    for w in range(len(out["t_start"])):
        keep = taus <= out["tau_end"][w] + 1e-12
        if w and not previous_reset:
            keep[0] = False  # the previous window's end point
        times.append(out["t_start"][w] + taus[keep] * length)
        states.append(out["y"][w][keep])
        residuals.append(out["residual"][w][keep])
        previous_reset = bool(out["spiked"][w])
        if previous_reset:
            t_spike = float(out["t_spike"][w])
            end = out["t_start"][w] + out["tau_end"][w] * length
            if out["tau_end"][w] < 1.0:  # pinn-reset: the window ends at the crossing, with the state there
                times.append(np.array([end]))
                states.append(out["before"][w][None])
                residuals.append(np.array([np.nan]))
            spikes.append(t_spike)
            before.append(out["before"][w])
            after.append(out["after"][w])
    t, y, residual = np.concatenate(times), np.concatenate(states), np.concatenate(residuals)
    inside = t <= t_end + 1e-9
    if not inside.all() and t[inside][-1] < t_end:  # the last window reaches beyond t_end: cut it there
        cut = solution.evaluate([t_end])[0]  # the network's own value at t_end
        t, y, residual = (np.append(t[inside], t_end), np.vstack([y[inside], cut]),
                          np.append(residual[inside], np.nan))
    else:
        t, y, residual = t[inside], y[inside], residual[inside]
    rule = model.spike
    n = model.n_states
    if rule is not None and rule.reset is not None and MODES[method] != "whole":
        spikes = np.asarray(spikes)
        keep = spikes <= t_end
        spikes, before, after = spikes[keep], np.reshape(before, (-1, n))[keep], np.reshape(after, (-1, n))[keep]
    else:
        spikes = _crossings(rule, values, t, y[:, model.state_index(rule.state)]) if rule else np.zeros(0)
        before = after = None
    began = time.perf_counter()
    solution.evaluate(t[:: max(1, len(t) // 2000)])  # inference: the trained networks at the output times
    inference = time.perf_counter() - began
    training = _training_record(method, options, out, t, residual, inference,
                                parameter_count(jax.tree_util.tree_map(lambda x: x[0], out["nets"])))
    return Trajectory(t=t, states={s: y[:, i] for i, s in enumerate(model.states)}, spikes=spikes,
                      model=model.name, method=method, params=dict(values), dt=None, events="located",
                      state_units=dict(zip(model.states, model.state_units)), spike_states_before=before,
                      spike_states_after=after, compile_time_s=out["compile_time_s"],
                      run_time_s=out["train_time_s"], status=out["status"],
                      message="" if out["status"] == "success" else
                      f"{model.name}/{method}: more than {len(out['t_start'])} windows (runaway resets); stopped",
                      training=training)


def _splitting_trajectory(model, method, values, out, options):
    t, y = out["t"], out["y"]
    rule = model.spike
    n = model.n_states
    spiked = out["spiked"].astype(bool)
    if rule is not None and rule.reset is not None and spiked.any():
        # at a window end with a reset: (t, before) then (t, after), as every trajectory holds a reset
        rows = np.flatnonzero(spiked) + 1
        t = np.insert(t, rows, t[rows])
        y = np.insert(y, rows, out["before"][spiked], axis=0)
        before, after = out["before"][spiked], out["after"][spiked]
    else:
        before = after = None
    spikes = out["t_spike"][spiked] if rule is not None else np.zeros(0)
    loss = out["loss"]
    residual_t = out["t"][1:]
    training = {
        "method": method, "options": _plain_options(options), "windows": len(residual_t),
        "stages": [list(stage) for stage in out["stages"]], "window_length_ms": out["length"],
        "loss": loss.max(axis=1).tolist(), "stage_loss": loss.tolist(), "residual_t": residual_t.tolist(),
        "residual": np.sqrt(loss.max(axis=1)).tolist(), "train_time_s": out["train_time_s"],
        "inference_time_s": 0.0, "network_parameters": parameter_count(out["final_nets"][0]),
        "optimiser_steps": int(len(residual_t) * len(out["stages"]) * (options.adam_steps + options.lbfgs_steps)),
    }
    return Trajectory(t=t, states={s: y[:, i] for i, s in enumerate(model.states)},
                      spikes=np.asarray(spikes, dtype=float), model=model.name, method=method, params=dict(values),
                      dt=out["length"], events="step", state_units=dict(zip(model.states, model.state_units)),
                      spike_states_before=before if before is None else np.reshape(before, (-1, n)),
                      spike_states_after=after if after is None else np.reshape(after, (-1, n)),
                      compile_time_s=out["compile_time_s"], run_time_s=out["train_time_s"], training=training)


def _plain_options(options):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(options).items()}


def _training_record(method, options, out, t, residual, inference, n_parameters):
    history = out["history"]
    return {
        "method": method, "options": _plain_options(options), "windows": int(len(out["t_start"])),
        "window_length_ms": out["length"], "loss": out["loss"].tolist(),
        "loss_history": history[0][np.isfinite(history[0])].tolist(),  # the first window's (the longest fit)
        "residual_t": t.tolist(), "residual": residual.tolist(),  # NaN at the cut of a window (a crossing)
        "train_time_s": out["train_time_s"], "inference_time_s": inference, "network_parameters": n_parameters,
        "optimiser_steps": int(len(out["t_start"]) * (options.adam_steps + options.lbfgs_steps)),
    }


class PinnSolution:
    """Trained window networks that evaluate anywhere in their windows: y(t) = y0 + τ·S·N(τ), τ = (t − t0)/H."""

    def __init__(self, meta: dict, t_start, tau_end, y0, scale, nets):
        self.meta, self.t_start, self.tau_end = meta, np.asarray(t_start), np.asarray(tau_end)
        self.y0, self.scale = np.asarray(y0), np.asarray(scale)
        self.nets = nets  # a list of (W, b) with a leading window axis

    @classmethod
    def from_march(cls, model, method, values, current, options, out):
        meta = {"version": CHECKPOINT_VERSION, "model": model.name, "method": method, "states": list(model.states),
                "params": {k: float(v) for k, v in values.items()}, "options": _plain_options(options),
                "length": out["length"]}
        return cls(meta, out["t_start"], out["tau_end"], out["y"][:, 0], out["scale"], out["nets"])

    def evaluate(self, times) -> np.ndarray:
        """The states (len(times), n) at ``times`` (ms), each from the window holding it (the last window whose
        start is at or before it: after a reset, the post-reset network)."""
        times = np.atleast_1d(np.asarray(times, dtype=float))
        window = np.clip(np.searchsorted(self.t_start, times, side="right") - 1, 0, len(self.t_start) - 1)
        tau = (times - self.t_start[window]) / self.meta["length"]
        options = self.meta["options"]
        evaluate = _evaluator(options["activation"], options["fourier"], options["initial"])
        return np.asarray(evaluate(jax.tree_util.tree_map(jnp.asarray, self.nets), jnp.asarray(window),
                                   jnp.asarray(tau), jnp.asarray(self.y0), jnp.asarray(self.scale)))


@functools.lru_cache(maxsize=None)
def _evaluator(activation: str, fourier: int, initial: str):
    """y(τ) = y0 + τ·S·N(τ) (or y0 + S·N(τ)) of each point's window, compiled once per network form (the weights
    and windows are traced: a new solution or new times do not recompile)."""
    def one(nets, w, s, y0, scale):
        net = jax.tree_util.tree_map(lambda leaf: leaf[w], nets)
        out = apply_network(net, s, activation, fourier)
        return y0[w] + (s * scale[w] * out if initial == "exact" else scale[w] * out)

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0, None, None)))


def save_checkpoint(path, trajectory: Trajectory, solution: PinnSolution | None, split_out=None) -> None:
    """The trained networks, their windows and the run's settings in one npz (arrays only; the settings as a
    JSON string): no pickle. ``splitting-pinn`` saves its last window's networks and its window-end states."""
    arrays = {}
    if solution is not None:
        meta = dict(solution.meta)
        arrays.update(t_start=solution.t_start, tau_end=solution.tau_end, y0=solution.y0, scale=solution.scale)
        for i, (weight, bias) in enumerate(solution.nets):
            arrays[f"layer{i}_W"], arrays[f"layer{i}_b"] = np.asarray(weight), np.asarray(bias)
    else:
        meta = {"version": CHECKPOINT_VERSION, "model": trajectory.model, "method": trajectory.method,
                "states": list(trajectory.states), "params": {k: float(v) for k, v in trajectory.params.items()},
                "options": trajectory.training["options"], "length": trajectory.training["window_length_ms"]}
        arrays.update(t=trajectory.t, y=trajectory.y)
        for s, net in enumerate(split_out["final_nets"]):
            for i, (weight, bias) in enumerate(net):
                arrays[f"stage{s}_layer{i}_W"], arrays[f"stage{s}_layer{i}_b"] = weight, bias
    arrays["meta"] = np.array(json.dumps(meta))
    path = Path(path)
    if path.suffix != ".npz":
        raise NeurospikeError(f"checkpoint {str(path)!r} must end in .npz")
    _atomic_write(path, lambda f: np.savez(f, **arrays), text=False)


def load_checkpoint(path: str | os.PathLike):
    """A saved PINN: a :class:`PinnSolution` (``evaluate(times)``) for the marching methods and ``pinn``; for
    ``splitting-pinn`` its window-end trajectory as (t, y)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {name: data[name] for name in data.files if name != "meta"}
    except (OSError, ValueError, KeyError) as error:
        raise NeurospikeError(f"{str(path)!r} is not a neurospike PINN checkpoint ({error})") from None
    if meta.get("version") != CHECKPOINT_VERSION:
        raise NeurospikeError(f"{str(path)!r}: checkpoint version {meta.get('version')!r}, expected "
                              f"{CHECKPOINT_VERSION}")
    if "t_start" not in arrays:
        return meta, arrays["t"], arrays["y"]
    layers = sum(1 for name in arrays if name.endswith("_W"))
    nets = [(jnp.asarray(arrays[f"layer{i}_W"]), jnp.asarray(arrays[f"layer{i}_b"])) for i in range(layers)]
    return PinnSolution(meta, arrays["t_start"], arrays["tau_end"], arrays["y0"], arrays["scale"], nets)

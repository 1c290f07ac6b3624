"""Fit a model's parameters — and, for a fractional model, its order α — to a recording.

``fit(model, recording, params=[...])`` minimises a loss between the recorded membrane potential (and its spikes)
and the run of ``model`` under the recorded input current, over a training segment, and scores the result on a
held-out test segment:

- ``loss="trace"``: the mean squared error of v at the recorded samples, (1/N) Σ (v_model(t_i) − v_data(t_i))²,
  optionally without the samples within ±``spike_mask`` ms of a recorded spike (for models whose spike shape is
  not physiological: LIF, Izhikevich);
- ``loss="spikes"``: the squared van Rossum distance D²(model spikes, data spikes; τ = ``tau``) of
  :mod:`neurospike.metrics`, differentiable through the located spike times;
- ``loss="both"``: trace MSE / var(v_data) + D² / N_data_spikes (each term made dimensionless);
- ``loss="timing"``: the mean squared difference of matched spike times, (1/N_data) Σ_i (t_model,i − t_data,i)²
  (ms²), the i-th model spike against the i-th recorded one, a missing spike of either train counted at the end
  of the segment. Continuous in the parameters (a spike that leaves or enters the segment does so at its end),
  smooth where the counts agree, and as a function of one parameter that moves every spike one way (α of a
  fractional LIF) unimodal, with no plateau where the model is silent; van Rossum's D² has none of these at a small
  τ and needs a τ of the whole segment to be unimodal (docs/fit.md).

Parameters are searched inside their ``Parameter.range`` through the smooth bounded map p = lo + (hi − lo)·σ(θ)
(σ the logistic function; θ unconstrained), α inside (``ALPHA_RANGE``). Methods (``method=``):

- ``"gradient"``: Adam (optax) on θ from every start at once (``starts`` K: the preset's values, then K − 1 points
  drawn uniformly in θ around it; the K runs are one compiled call per iteration), then L-BFGS-B (scipy)
  from the best start. Gradients are forward mode (``jax.jacfwd``) through :func:`neurospike.differentiable`'s run
  (fixed-step methods with located events; ``fast-l1``/``l1`` when α is fitted or fixed): with a handful of
  parameters forward mode costs a few runs, and it is the mode the fractional loops support.
  With ``grow`` the train segment is grown in stages: to halfway between each recorded spike
  and the next, then all of it, each stage starting from the
  previous one's optimum. A spiking model's loss over a long segment has a minimum for every way of misplacing
  its spikes (and a wide one with no spikes at all); over a segment with one more spike than the model has
  already matched, the model starts close and the next spike is found by descent. (One compiled program serves
  every stage: the stage's end is a traced argument that masks the later samples and spikes.)
- ``"cma"``: CMA-ES (the ``cma`` package, Hansen) on θ, each generation's population evaluated as one
  compiled call: the gradient-free baseline.
- ``"pinn"``: the inverse PINN (:func:`neurospike.pinn.inverse.fit_inverse`: networks on windows, the parameters
  trained beside them on data + residual losses; resets at the recorded spike times), trace loss, integer order.
  The reported loss and standard errors are those of the fixed-step run at the fitted values.

Forced resets (``forced_reset``; by default on for a model with a reset, a trace or both loss and recorded spikes
in the train segment): a first phase fits the trace loss of runs that are reset at the recorded spike times
(Jolivet, Lewis & Gerstner 2004; unless the model spiked itself within ``FORCED_RESET_WINDOW_MS`` before), so
every inter-spike interval starts from the reset state whatever the parameters. That loss is smooth in the
parameters: it has no minimum per way of misplacing the spikes and no no-spike plateau, which is where a free
run's trace loss traps descent and CMA-ES from 30 % off (docs/fit.md). ``gradient`` screens ``starts``
points (default ``FORCED_STARTS``) by the loss's value (runs without derivatives, cheap), runs Adam from the
``FORCED_KEEP`` best and least squares from the best of those; ``cma`` runs CMA-ES with σ0 =
``FORCED_CMA_SIGMA``. The second phase fits the free run's loss from there (least squares or L-BFGS without
Adam; CMA-ES with σ0 = ``POLISH_CMA_SIGMA``).

Uncertainty: for the trace and both losses the Gauss–Newton covariance of the trace's residuals s² (JᵀJ)⁻¹ with
J = ∂v_model/∂p at the optimum and s² = SSR/(N − P); otherwise the inverse Hessian of the loss (jax, forward
over forward) scaled the same way. When JᵀJ (or the Hessian) is numerically singular (condition number above
``SINGULAR_CONDITION``), the standard errors are NaN and the parameters that dominate its null directions are
named in ``Fit.notes``.

The fitted run over the whole recording and the coincidence factor Γ (Jolivet et al. 2008, Δ = 4 ms) on the
train and test segments are in the returned :class:`Fit`.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import metrics, models
from .differentiable import differentiable, jit
from .errors import NeurospikeError
from .simulate import fractional_orders, simulate

FIT_METHODS = ("gradient", "cma", "pinn")
LOSSES = ("trace", "spikes", "both", "timing")
RESIDUAL_LOSSES = ("trace", "timing")  # sums of squared residuals: least squares, Gauss–Newton standard errors
ALPHA_RANGE = (0.05, 0.999)  # the fitted Caputo order stays inside (0, 1)
SINGULAR_CONDITION = 1e12
BOUND_TOLERANCE = 1e-6  # a fitted value this close to a bound (fraction of its range) is reported at the bound
CMA_SIGMA = 0.3  # CMA-ES initial step in θ (the logistic coordinate): ~7 % of a range around its middle
INITIAL_RANGE = 15.0  # mV: the fitted initial v stays within this of the first sample
DEFAULT_TAU_MS = 10.0  # van Rossum time constant of the spike loss
COINCIDENCE_WINDOW_MS = 4.0  # Γ's Δ (Jolivet et al. 2008)
FORCED_RESET_WINDOW_MS = COINCIDENCE_WINDOW_MS  # a model spike this close before a recorded one stands for it
FORCED_STARTS = 64  # default starts of the forced-reset phase, screened by the loss's value (no derivatives)
FORCED_KEEP = 4  # the best screened starts that the forced-reset phase's Adam continues from
FORCED_ADAM_STEPS = 20  # default Adam steps of the forced-reset phase: enough to pick the start in the basin
ADAM_STEPS = 200  # default Adam steps otherwise
FORCED_CMA_SIGMA = 1.0  # CMA-ES initial step of the forced-reset phase (its loss is smooth: search widely)
POLISH_CMA_SIGMA = 0.05  # CMA-ES initial step of the free phase after the forced-reset one


@dataclass
class Fit:
    """The result of :func:`fit`: fitted values and standard errors (NaN where not identifiable), the loss
    history, the fitted run over the whole recording, Γ on the train and test segments, timings and notes."""

    model: str
    method: str
    loss: str
    values: dict[str, float]
    errors: dict[str, float]
    start: dict[str, float]
    loss_value: float
    history: list[dict[str, Any]]
    trajectory: Any
    train: tuple[float, float]
    test: tuple[float, float] | None
    gamma_train: float
    gamma_test: float | None
    data_spikes: np.ndarray
    compile_time_s: float
    fit_time_s: float
    evaluations: int
    solver: str
    dt: float
    notes: list[str] = field(default_factory=list)
    command: str = ""

    def summary(self) -> dict[str, Any]:
        """The JSON-ready record (``fit.json``)."""
        return {
            "model": self.model, "method": self.method, "loss": self.loss, "solver": self.solver, "dt": self.dt,
            "values": self.values, "standard_errors": {k: _plain(v) for k, v in self.errors.items()},
            "start": self.start, "loss_value": _plain(self.loss_value), "train_ms": list(self.train),
            "test_ms": list(self.test) if self.test else None, "gamma_train": _plain(self.gamma_train),
            "gamma_test": _plain(self.gamma_test), "data_spikes": len(self.data_spikes),
            "model_spikes": len(self.trajectory.spikes), "compile_time_s": self.compile_time_s,
            "fit_time_s": self.fit_time_s, "evaluations": self.evaluations, "notes": self.notes,
            "command": self.command,
            "history": [{"phase": h["phase"], "iteration": h["iteration"], "loss": _plain(h["loss"]),
                         "time_s": round(h["time_s"], 4),
                         "values": {n: _plain(x) for n, x in h["values"].items()}} for h in self.history],
        }


def _plain(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Space:
    """The fitted names (model parameters, then "alpha" when fitted) and their bounds; θ ↔ values."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray

    def values(self, theta):
        return self.low + (self.high - self.low) * jax.nn.sigmoid(theta)

    def theta(self, values):
        fraction = (np.asarray(values, dtype=float) - self.low) / (self.high - self.low)
        fraction = np.clip(fraction, 1e-9, 1 - 1e-9)
        return np.log(fraction / (1.0 - fraction))


def _space(model, names, bounds):
    low, high = [], []
    for name in names:
        if name in (bounds or {}):
            lo, hi = bounds[name]
        elif name == "alpha":
            lo, hi = ALPHA_RANGE
        else:
            parameter = model.params[name]
            if parameter.range is None:
                raise NeurospikeError(f"parameter {name!r} of {model.name!r} has no range; give bounds "
                                      f"{{'{name}': (low, high)}}")
            lo, hi = parameter.range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise NeurospikeError(f"bounds of {name!r} ({lo!r}, {hi!r}) must be finite with low < high")
        low.append(float(lo))
        high.append(float(hi))
    return Space(tuple(names), np.array(low), np.array(high))


def _segment(spec, t, label):
    if spec is None:
        return None
    start, stop = spec
    if not (start < stop):
        raise NeurospikeError(f"{label} segment {start:g}:{stop:g} must have start < stop (ms)")
    if start < t[0] - 1e-9 or stop > t[-1] + 1e-9:
        raise NeurospikeError(f"{label} segment {start:g}:{stop:g} is outside the recording "
                              f"[{t[0]:g}, {t[-1]:g}] ms")
    return float(start), float(stop)


def fit(model, recording, params: Sequence[str], *, alpha=None, method: str = "gradient", loss: str = "trace",
        solver: str | None = None, dt: float | None = None, preset: str | None = None,
        train: tuple[float, float] | None = None, test: tuple[float, float] | None = None,
        start: dict[str, float] | None = None, fixed: dict[str, float] | None = None,
        bounds: dict[str, tuple[float, float]] | None = None,
        starts: int | None = None, spike_mask: float | None = None, tau: float = DEFAULT_TAU_MS, area: float | None = None,
        adam_steps: int | None = None, learning_rate: float = 0.05, lbfgs_steps: int = 100, cma_generations: int = 60,
        cma_population: int | None = None, seed: int = 0, spike_threshold: float | None = None,
        spikes: Sequence[float] | None = None, grow: bool = False, fit_initial: bool = False,
        forced_reset: bool | None = None, progress: Callable[[int, float], None] | None = None, command: str = "") -> Fit:
    """Fit ``params`` (names of ``model``'s parameters) and, with ``alpha="fit"``, the fractional order, so that
    the run of ``model`` under ``recording``'s input reproduces its v (``loss``: "trace", "spikes" or "both")
    on the ``train`` segment (default: all of it); see the module docstring. ``alpha``: None (integer order), a
    number (a fixed order) or "fit" (fitted, starting from 0.8 unless ``start`` has "alpha"). ``solver``: the
    run's method (default rk4, or fast-l1 for a fractional model); ``dt``: its step (default: the recording's
    sampling interval, capped at the preset's step). ``start``: starting values (default the preset's);
    ``fixed``: values of parameters that are not fitted (default the preset's). The initial value of the recorded
    state is the first sample; with ``fit_initial`` (trace and both losses) it is fitted too, as "v(0)" within
    ±``INITIAL_RANGE`` mV (docs/fit.md: the median of the first five samples, on an HH run whose input starts at
    t0, biased g_L by −50 %). ``grow``: fit on growing segments (above).
    ``spikes``: the recorded spike times (ms), when v's upward crossings of ``spike_threshold`` (default 0 mV,
    or the model's level) do not show them (a recording of a reset model sampled between peak and reset).
    ``forced_reset``: a first phase with resets at the recorded spike times (module docstring); None: on where
    it applies. ``starts``: starting points (default 1, or ``FORCED_STARTS`` with a forced-reset phase);
    ``adam_steps``: default ``ADAM_STEPS``, or ``FORCED_ADAM_STEPS`` with a forced-reset phase.
    Returns a :class:`Fit`."""
    began_all = time.perf_counter()
    model = models.get(model)
    if method not in FIT_METHODS:
        raise NeurospikeError(f"method={method!r}: use {', '.join(FIT_METHODS)}")
    if loss not in LOSSES:
        raise NeurospikeError(f"loss={loss!r}: use {', '.join(LOSSES)}")
    names = list(params)
    if not names and alpha != "fit":
        raise NeurospikeError("nothing to fit: give params (e.g. a,b,c,d) or alpha='fit'")
    for name in names:
        if name not in model.params:
            raise NeurospikeError(f"unknown parameter {name!r} for model {model.name!r}; parameters are "
                                  f"{', '.join(model.params)}")
    if len(set(names)) != len(names):
        raise NeurospikeError(f"params {names!r} name a parameter twice")
    if method == "pinn":
        refused = [text for flag, text in ((alpha is not None, "a fractional order (alpha)"),
                                           (loss != "trace", f"loss {loss!r}"), (fit_initial, "fit_initial"),
                                           (grow, "grow"), (forced_reset, "forced_reset")) if flag]
        if refused:
            raise NeurospikeError(f"method 'pinn' fits the trace of an integer-order model; it does not take "
                                  f"{', '.join(refused)}")
    if not (starts is None or isinstance(starts, int) and starts >= 1):
        raise NeurospikeError(f"starts={starts!r} must be a positive integer")
    if not (tau > 0 and math.isfinite(tau)):
        raise NeurospikeError(f"tau={tau!r} must be a positive number of ms")
    fit_alpha = isinstance(alpha, str) and alpha == "fit"
    if alpha is not None and not fit_alpha:
        fractional_orders(model, alpha)  # one number or {state: order}, each in (0, 1]: else a one-line error
    fractional = alpha is not None
    grow = bool(grow)
    solver = solver or ("fast-l1" if fractional else "rk4")
    chosen = model.preset(preset)
    defaults = {**model.defaults(), **chosen.params}
    for name, value in (fixed or {}).items():
        if name not in defaults:
            raise NeurospikeError(f"unknown parameter {name!r} for model {model.name!r}; parameters are "
                                  f"{', '.join(defaults)}")
        if name in names:
            raise NeurospikeError(f"parameter {name!r} is both fitted and fixed; give its start value instead")
        defaults[name] = float(value)
    start = dict(start or {})
    for name in start:
        if name not in names and not (name == "alpha" and fit_alpha):
            raise NeurospikeError(f"start value for {name!r}, which is not fitted ({', '.join(names)})")
    alpha_start = float(start.pop("alpha", 0.8)) if fit_alpha else alpha
    space = _space(model, names + (["alpha"] if fit_alpha else []), bounds)
    start_values = {**{n: float(defaults[n]) for n in names}, **{k: float(v) for k, v in start.items()}}
    if fit_alpha:
        start_values["alpha"] = alpha_start
    for name, value in start_values.items():
        lo, hi = space.low[space.names.index(name)], space.high[space.names.index(name)]
        if not lo < value < hi:
            raise NeurospikeError(f"start value {name}={value:g} is outside its range ({lo:g}, {hi:g})")

    t, v = np.asarray(recording.t, dtype=float), np.asarray(recording.v, dtype=float)
    train = _segment(train, t, "train") or (float(t[0]), float(t[-1]))
    test = _segment(test, t, "test")
    interval = float(np.median(np.diff(t)))
    if dt is None:
        dt = interval if chosen.dt is None else min(interval, chosen.dt)
        dt = interval / math.ceil(interval / dt - 1e-9)  # a whole number of steps per sample
    current = recording.input_for(model, area=area)
    level, rule = spike_threshold, model.spike
    if level is None:  # the model's level; 0 mV or less for a reset model (its samples may miss the peak)
        level = 0.0 if rule is None else float(defaults[rule.level])
        if rule is not None and rule.reset is not None:
            level = min(level, float(np.max(v)) - 1e-6, 0.0)
    data_spikes = np.sort(np.asarray(spikes, dtype=float)) if spikes is not None else np.asarray(
        recording.spike_times(level))
    in_train = (t >= train[0] - 1e-9) & (t <= train[1] + 1e-9)
    sample_times = t[in_train]
    sample_v = v[in_train]
    train_spikes = data_spikes[(data_spikes >= train[0]) & (data_spikes <= train[1])]
    weights = np.ones_like(sample_v)
    if spike_mask:
        for s in train_spikes:
            weights[np.abs(sample_times - s) <= spike_mask] = 0.0
    if weights.sum() == 0:
        raise NeurospikeError(f"spike_mask={spike_mask!r} masks every sample of the train segment")
    max_spikes = max(8, 2 * len(train_spikes) + 8)
    observed = model.spike.state if model.spike else model.states[0]
    initial = {observed: float(sample_v[0])}
    if fit_initial and loss != "spikes":  # the recorded state at t0 is noisy: fitted too, from the first sample
        name = f"{observed}(0)"
        space = Space(space.names + (name,), np.append(space.low, sample_v[0] - INITIAL_RANGE),
                      np.append(space.high, sample_v[0] + INITIAL_RANGE))
        start_values[name] = float(sample_v[0])

    def traced_run(**options):  # the train segment's run, traced in the parameters
        return differentiable(model, method=solver, dt=dt, t0=train[0], t_end=train[1], save_at=sample_times,
                              max_spikes=max_spikes, preset=preset, current=lambda amplitude: current, **options)

    run = traced_run(alpha=alpha_start if fractional else None)
    state_index = model.state_index(observed)
    variance = float(np.var(sample_v)) or 1.0
    padded_data = np.full(max_spikes, np.nan)
    padded_data[:len(train_spikes)] = train_spikes
    weights_j, sample_v_j, data_j = jnp.asarray(weights), jnp.asarray(sample_v), jnp.asarray(padded_data)
    fixed = {k: float(v) for k, v in defaults.items()}
    resettable = model.spike is not None and model.spike.reset is not None
    forced_applies = resettable and loss in ("trace", "both") and len(train_spikes) > 0 and not fractional
    if forced_reset and not forced_applies:
        raise NeurospikeError("forced_reset needs a model with a reset, an integer-order run, a trace or both loss "
                              f"and recorded spikes in the train segment ({model.name!r}, loss {loss!r}, "
                              f"{len(train_spikes)} train spikes)")
    if forced_reset is None:
        forced_reset = forced_applies and method != "pinn"
    if starts is None:
        starts = FORCED_STARTS if forced_reset and method == "gradient" else 1
    if adam_steps is None:
        adam_steps = FORCED_ADAM_STEPS if forced_reset else ADAM_STEPS
    sample_times_j = jnp.asarray(sample_times)
    free = _losses(run, space, fixed, fractional, observed, initial, state_index, weights_j, sample_times_j,
                   sample_v_j, data_j, loss, tau, variance)
    phases = []  # (label, its losses, its stops)
    if forced_reset:
        forced_run = traced_run(forced_resets=train_spikes, forced_window=FORCED_RESET_WINDOW_MS)
        phases.append(("forced reset", _losses(forced_run, space, fixed, fractional, observed, initial, state_index,
                                               weights_j, sample_times_j, sample_v_j, data_j, "trace", tau,
                                               variance), [train[1]]))
    stops = [train[1]]
    if grow:  # one more recorded spike per stage (module docstring)
        ends = [(a + b) / 2 for a, b in zip(train_spikes[:-1], train_spikes[1:])]
        stops = [float(e) for e in ends if e > sample_times[0]] + [train[1]]
    phases.append(("", free, stops))
    theta0 = space.theta([start_values[n] for n in space.names])
    rng = np.random.default_rng(seed)
    thetas = np.stack([theta0] + [theta0 + rng.uniform(-1.5, 1.5, theta0.shape) for _ in range(starts - 1)])
    history: list[dict[str, Any]] = []
    compile_began = time.perf_counter()
    # compiled on first call; the calls below compile what this fit will use, so compile_time is theirs
    compiled = []
    for index, (label, (scaled_residuals, objective), phase_stops) in enumerate(phases):
        functions = {"batched": jit(_over_starts(objective)),
                     "residuals_and_jacobian": jit(lambda th, stop, r=scaled_residuals:
                                                   (r(th, stop), jax.jacfwd(r)(th, stop)))}
        least_squares = loss in RESIDUAL_LOSSES or label
        if method == "gradient":
            functions["value_and_gradient"] = jit(_over_starts(
                lambda th, stop, f=objective: (f(th, stop), jax.jacfwd(f)(th, stop))))
            adam = adam_steps if index == 0 else 0  # after a forced-reset phase the start is in the basin
            if label and len(thetas) > FORCED_KEEP:  # the forced starts are screened by value first
                jax.block_until_ready(functions["batched"](thetas, phase_stops[0]))
            if adam > 0 or not least_squares:  # Adam, or L-BFGS on a spike loss
                jax.block_until_ready(functions["value_and_gradient"](_screened(thetas, label), phase_stops[0]))
            if least_squares and lbfgs_steps > 0:
                jax.block_until_ready(functions["residuals_and_jacobian"](jnp.asarray(thetas[0]), phase_stops[0]))
        else:
            jax.block_until_ready(functions["batched"](thetas, phase_stops[0]))
        compiled.append(functions)
    if len(phases) == 1 or method != "gradient":  # the free phase's objective (final loss) when not yet compiled
        jax.block_until_ready(compiled[-1]["batched"](thetas[:1], train[1]))
    compile_time = time.perf_counter() - compile_began
    optimise_began = time.perf_counter()
    evaluations = 0
    if method == "pinn":
        theta, evaluations = _pinn(model, sample_times, sample_v, current, space, start_values, fixed, initial,
                                   observed, train_spikes if resettable else None, seed, history, progress)
        phases = []
    for index, ((label, _, phase_stops), functions) in enumerate(zip(phases, compiled)):
        least_squares = loss in RESIDUAL_LOSSES or label
        for stage, stop in enumerate(phase_stops):
            stage_label = " ".join(filter(None, [label, f"stage {stage + 1}/{len(phase_stops)}"
                                                 if len(phase_stops) > 1 else ""]))
            if method == "gradient":
                if label and len(thetas) > FORCED_KEEP:
                    screened = np.asarray(functions["batched"](jnp.asarray(thetas), stop))
                    evaluations += len(thetas)
                    thetas = thetas[np.argsort(np.where(np.isfinite(screened), screened, np.inf))[:FORCED_KEEP]]
                theta, count = _gradient(lambda th, stop=stop: functions["value_and_gradient"](th, stop), thetas,
                                         space, adam_steps if index == 0 else 0, learning_rate, lbfgs_steps,
                                         history, progress, stage_label,
                                         (lambda th, stop=stop: functions["residuals_and_jacobian"](th, stop))
                                         if least_squares else None)
            else:
                sigma = CMA_SIGMA if len(phases) == 1 else FORCED_CMA_SIGMA if index == 0 else POLISH_CMA_SIGMA
                theta, count = _cma(lambda th, stop=stop: functions["batched"](th, stop), thetas[0], space,
                                    cma_generations, cma_population, seed, history, progress, stage_label, sigma)
            thetas = np.asarray(theta)[None]  # the next stage goes on from the best point
            evaluations += count
    for entry in history:  # seconds since the optimisation began (compilation excluded)
        entry["time_s"] -= optimise_began
    batched_objective = compiled[-1]["batched"]
    residuals_and_jacobian = compiled[-1]["residuals_and_jacobian"]
    objective = lambda th: free[1](th, train[1])  # noqa: E731
    best_loss = float(batched_objective(jnp.asarray(theta)[None], train[1])[0])
    fitted = dict(zip(space.names, map(float, space.values(jnp.asarray(theta)))))
    errors, notes = _standard_errors(loss, lambda th: residuals_and_jacobian(th, train[1]), objective, theta, space,
                                     weights if loss != "timing" else padded_data <= train[1], best_loss)
    notes += _bound_notes(space, fitted)
    fit_time = time.perf_counter() - began_all - compile_time

    order = fitted.get("alpha", alpha_start) if fractional else None
    initial = {observed: fitted.get(f"{observed}(0)", initial[observed])}
    trajectory = simulate(model, preset=preset, params={**(fixed or {}), **{k: v for k, v in fitted.items()
                                                                             if k in model.params}},
                          current=current, t_end=float(t[-1]), t0=float(t[0]), initial=initial, dt=dt,
                          method=solver, alpha=order)
    fitted_train = len(_within(trajectory.spikes, train))
    if fitted_train != len(train_spikes):  # a fit may match the trace between spikes and not the spikes
        notes.append(f"the fitted run has {fitted_train} spikes in the train segment, the recording "
                     f"{len(train_spikes)}" + (" (the forced-reset phase does not ask the model to spike: try "
                                               "forced_reset=False with loss 'both' and cma)" if forced_reset else ""))
    gamma_train = metrics.coincidence_factor(train_spikes, _within(trajectory.spikes, train),
                                             COINCIDENCE_WINDOW_MS, duration=train[1] - train[0])
    gamma_test = None
    if test is not None:
        gamma_test = metrics.coincidence_factor(_within(data_spikes, test), _within(trajectory.spikes, test),
                                                COINCIDENCE_WINDOW_MS, duration=test[1] - test[0])
    return Fit(model=model.name, method=method, loss=loss, values=fitted, errors=errors, start=start_values,
               loss_value=best_loss, history=history, trajectory=trajectory, train=train, test=test,
               gamma_train=float(gamma_train), gamma_test=None if gamma_test is None else float(gamma_test),
               data_spikes=data_spikes, compile_time_s=compile_time, fit_time_s=fit_time, evaluations=evaluations,
               solver=solver, dt=dt, notes=notes, command=command)


def _losses(run, space, fixed, fractional, observed, initial, state_index, weights, sample_times, sample_v, data,
            loss, tau, variance):
    """(scaled_residuals(θ, stop), objective(θ, stop)) of the traced ``run``: the residuals r with Σ r² = the
    trace loss (or the timing loss), and the ``loss`` (module docstring) on the train samples and spikes up to
    ``stop`` (the growing stages; traced)."""

    def simulate_theta(theta):
        named = dict(zip(space.names, space.values(theta)))
        order = named.pop("alpha", None)  # None: the fixed orders given to differentiable
        start_state = {observed: named.pop(f"{observed}(0)", initial[observed])}
        point = {**fixed, **named}
        states, spikes = run(point, start_state, 1.0, order) if fractional else run(point, start_state, 1.0)
        return states[:, state_index], spikes

    def timing_residuals(spikes, stop):
        """The i-th model spike time minus the i-th recorded one, a missing spike (NaN, or after ``stop``) at
        ``stop``, over √N_data: Σ r² = the timing loss."""
        model_at = jnp.where(spikes <= stop, spikes, stop)
        data_at = jnp.where(data <= stop, data, stop)
        return (model_at - data_at) / jnp.sqrt(jnp.maximum(jnp.sum(data <= stop), 1.0))

    def scaled_residuals(theta, stop):
        trace, spikes = simulate_theta(theta)
        if loss == "timing":
            return timing_residuals(spikes, stop)
        weight = weights * (sample_times <= stop)
        return jnp.sqrt(weight / jnp.maximum(jnp.sum(weight), 1.0)) * (trace - sample_v)

    def objective(theta, stop):
        trace, spikes = simulate_theta(theta)
        weight = weights * (sample_times <= stop)
        mse = jnp.sum(weight * (trace - sample_v) ** 2) / jnp.maximum(jnp.sum(weight), 1.0)
        if loss == "trace":
            value = mse
        elif loss == "timing":
            value = jnp.sum(timing_residuals(spikes, stop) ** 2)
        else:
            data_until = jnp.where(data <= stop, data, jnp.nan)
            distance = metrics.van_rossum_squared(jnp.where(spikes <= stop, spikes, jnp.nan), data_until, tau)
            count = jnp.maximum(jnp.sum(data_until <= stop), 1)
            value = distance if loss == "spikes" else mse / variance + distance / count
        return jnp.where(jnp.isfinite(value), value, jnp.inf)

    return scaled_residuals, objective


def _screened(thetas, label):
    """The shape of the starts Adam runs on: the ``FORCED_KEEP`` best in a forced-reset phase."""
    return thetas[:FORCED_KEEP] if label and len(thetas) > FORCED_KEEP else thetas


def _over_starts(function):
    """``function(θ, stop)`` over the rows of θ (K starts or a CMA-ES population) in one compiled call: a loop
    (``jax.lax.map``), not ``jax.vmap``. Under vmap the fixed-step loop's bounds and branches depend on the lane,
    so every step selects the whole batched trace: 4 RS runs of 7000 steps took 0.5 s vmapped, 4 × 1.3 ms
    looped."""
    return lambda thetas, stop: jax.lax.map(lambda theta: function(theta, stop), thetas)


def _bound_notes(space, fitted, tolerance=BOUND_TOLERANCE):
    """A note naming the fitted values within ``tolerance`` (a fraction of the range) of a bound: there the
    logistic map is flat, so the standard errors are not finite, and the optimum may lie outside the range (a
    mismatched model, docs/fit.md)."""
    width = space.high - space.low
    at = [f"{name} {'low' if fitted[name] - lo < hi - fitted[name] else 'high'}"
          for name, lo, hi, w in zip(space.names, space.low, space.high, width)
          if min(fitted[name] - lo, hi - fitted[name]) <= tolerance * w]
    if not at:
        return []
    return [f"at a bound of the range: {', '.join(at)} (widen it with bounds={{name: (low, high)}} if the values "
            f"make sense there)"]


def _within(times, segment):
    times = np.asarray(times)
    return times[(times >= segment[0]) & (times <= segment[1])]


def _record(history, phase, iteration, loss, space, theta, progress, stage=""):
    values = dict(zip(space.names, map(float, space.values(jnp.asarray(theta)))))
    history.append({"phase": f"{stage} {phase}".strip(), "iteration": iteration, "loss": float(loss),
                    "values": values, "time_s": time.perf_counter()})  # made relative to the start by fit
    if progress is not None:
        progress(len(history), float(loss))


def _gradient(value_and_gradient, thetas, space, adam_steps, learning_rate, lbfgs_steps, history, progress, stage,
              residuals_and_jacobian=None):
    """Adam from every start (one compiled call per iteration), then L-BFGS-B from the best; a start whose loss
    or gradient is not finite keeps its last finite point."""
    import optax
    from scipy.optimize import minimize

    optimiser = optax.adam(learning_rate)
    state = optimiser.init(jnp.asarray(thetas))
    thetas = jnp.asarray(thetas)
    best_theta, best_loss = np.asarray(thetas[0]), np.inf
    evaluations = 0
    for iteration in range(adam_steps):
        losses, gradients = value_and_gradient(thetas)
        evaluations += thetas.shape[0]
        finite = jnp.isfinite(losses) & jnp.all(jnp.isfinite(gradients), axis=1)
        gradients = jnp.where(finite[:, None], gradients, 0.0)
        losses_np = np.asarray(losses)
        k = int(np.nanargmin(np.where(np.isfinite(losses_np), losses_np, np.inf)))
        if losses_np[k] < best_loss:
            best_loss, best_theta = float(losses_np[k]), np.asarray(thetas[k])
        _record(history, "adam", iteration, losses_np[k], space, thetas[k], progress, stage)
        updates, state = optimiser.update(gradients, state, thetas)
        thetas = jnp.where(finite[:, None], optax.apply_updates(thetas, updates), thetas)
    single = {"count": 0}

    def function(theta):
        value, gradient = value_and_gradient(jnp.asarray(theta)[None])
        single["count"] += 1
        value, gradient = float(value[0]), np.asarray(gradient[0], dtype=float)
        if not (math.isfinite(value) and np.all(np.isfinite(gradient))):
            return 1e300, np.zeros_like(gradient)
        _record(history, "lbfgs", single["count"], value, space, theta, progress, stage)
        return value, gradient

    if lbfgs_steps > 0 and residuals_and_jacobian is not None:  # least squares: a trust region on r(θ)
        from scipy.optimize import least_squares

        cache = {}

        def evaluate(theta):
            key = np.asarray(theta).tobytes()
            if key not in cache:
                r, j = residuals_and_jacobian(jnp.asarray(theta))
                cache.clear()
                cache[key] = (np.asarray(r, dtype=float), np.asarray(j, dtype=float))
                single["count"] += 1
                value = float(np.sum(cache[key][0] ** 2))
                if math.isfinite(value):
                    _record(history, "least-squares", single["count"], value, space, theta, progress, stage)
            return cache[key]

        def residual(theta):
            r = evaluate(theta)[0]
            return np.where(np.isfinite(r), r, 1e150)

        def jacobian(theta):
            j = evaluate(theta)[1]
            return np.where(np.isfinite(j), j, 0.0)

        result = least_squares(residual, best_theta, jac=jacobian, method="trf", x_scale="jac",
                               max_nfev=lbfgs_steps, ftol=1e-12, xtol=1e-12, gtol=1e-12)
        value = float(np.sum(residual(result.x) ** 2))
        if value < best_loss:
            best_theta, best_loss = np.asarray(result.x), value
    elif lbfgs_steps > 0:
        result = minimize(function, best_theta, jac=True, method="L-BFGS-B",
                          options={"maxiter": lbfgs_steps, "ftol": 1e-15, "gtol": 1e-10})
        if result.fun < best_loss:
            best_theta, best_loss = np.asarray(result.x), float(result.fun)
    return best_theta, evaluations + single["count"]


def _cma(batched_objective, theta0, space, generations, population, seed, history, progress, stage,
         sigma=CMA_SIGMA):
    """CMA-ES (``cma``) on θ from the start, σ0 = ``sigma`` in θ."""
    try:
        import cma
    except ImportError:
        raise NeurospikeError("method 'cma' needs the cma package (pip install 'neurospike[fit]')") from None

    options = {"seed": seed + 1, "verbose": -9, "maxiter": generations, "tolfun": 1e-12}
    if population:
        options["popsize"] = int(population)
    strategy = cma.CMAEvolutionStrategy(np.asarray(theta0, dtype=float), sigma, options)
    evaluations, generation = 0, 0
    while not strategy.stop():
        candidates = strategy.ask()
        losses = np.asarray(batched_objective(jnp.asarray(np.stack(candidates))), dtype=float)
        losses = np.where(np.isfinite(losses), losses, 1e300)
        strategy.tell(candidates, losses.tolist())
        evaluations += len(candidates)
        _record(history, "cma", generation, float(strategy.result.fbest), space, strategy.result.xbest, progress,
                stage)
        generation += 1
    return np.asarray(strategy.result.xbest), evaluations


def _pinn(model, sample_times, sample_v, current, space, start_values, fixed, initial, observed, spikes, seed,
          history, progress):
    """The inverse PINN (:func:`neurospike.pinn.inverse.fit_inverse`) from the start values; its history is
    appended to ``history``. Returns (θ of the fitted values, the optimiser's evaluations)."""
    from .pinn.inverse import fit_inverse

    names = list(space.names)
    began = time.perf_counter()
    outcome = fit_inverse(model, sample_times, sample_v, current, names, space.low, space.high,
                          {n: start_values[n] for n in names}, {k: v for k, v in fixed.items() if k not in names},
                          initial, observed=observed, spikes=spikes, seed=seed, progress=progress)
    for entry in outcome["history"]:  # no clock per entry: each carries the start, the last one the end
        history.append({"phase": f"pinn {entry['phase']}", "iteration": entry["iteration"],
                        "loss": float(entry["loss"]), "values": dict(entry["values"]), "time_s": began})
    if outcome["history"]:
        history[-1]["time_s"] = time.perf_counter()
    return space.theta([outcome["values"][n] for n in names]), int(outcome["evaluations"])


def _standard_errors(loss, residuals_and_jacobian, objective, theta, space, weights, loss_value):
    """Standard errors in the parameters' own units (Gauss–Newton on the trace residuals for the trace and both
    losses, on the matched spike times for the timing loss, n the recorded spikes given by ``weights``: s² (JᵀJ)⁻¹
    with s² = Σr²/(n − p), unchanged by the residuals' common scale; the inverse Hessian of the
    spike loss, whose value at the optimum is ``loss_value``), NaN and a note naming the parameters when the matrix
    is singular."""
    theta = jnp.asarray(theta)
    values_of = lambda th: space.values(th)  # noqa: E731
    d_values = np.asarray(jax.jacfwd(values_of)(theta))  # diagonal: dp/dθ
    notes = []
    n = int(np.sum(weights > 0))
    p = len(space.names)
    if loss in ("trace", "both", "timing"):
        residual, jacobian = (np.asarray(a) for a in residuals_and_jacobian(theta))
        with np.errstate(divide="ignore", invalid="ignore"):  # dp/dθ = 0 at a bound: not finite, noted below
            jacobian = jacobian / np.diag(d_values)[None, :]
        ssr = float(np.sum(residual ** 2))
        matrix = jacobian.T @ jacobian
        scale = ssr / max(1, n - p)
    else:
        hessian = np.asarray(jit(jax.jacfwd(jax.jacfwd(objective)))(theta))
        inverse_d = np.diag(1.0 / np.diag(d_values))
        matrix = inverse_d @ hessian @ inverse_d / 2.0
        scale = loss_value / max(1, n - p)
    if not np.all(np.isfinite(matrix)):
        notes.append("the curvature at the optimum is not finite: no standard errors")
        return {name: math.nan for name in space.names}, notes
    eigenvalues, vectors = np.linalg.eigh(matrix)
    top = max(float(eigenvalues[-1]), 1e-300)
    singular = eigenvalues < top / SINGULAR_CONDITION
    if np.any(singular):
        weak = sorted({space.names[int(np.argmax(np.abs(vectors[:, i])))] for i in np.flatnonzero(singular)})
        notes.append(f"the curvature is singular at the optimum: {', '.join(weak)} not identifiable from these data "
                     f"(no standard errors)")
        return {name: math.nan for name in space.names}, notes
    covariance = scale * np.linalg.inv(matrix)
    return {name: float(math.sqrt(max(covariance[i, i], 0.0))) for i, name in enumerate(space.names)}, notes


# --- report ---------------------------------------------------------------------------------------------------
def write_report(result: Fit, recording, out: str | os.PathLike) -> list[str]:
    """``fit.json``, ``fit.md`` and the figures (data vs fitted v with the train/test segments, the spike raster
    of both, loss against iteration, parameter traces) into the report folder ``out``, all or nothing
    (:func:`neurospike.reports.write`); returns the written paths."""
    from . import reports

    return [str(path) for path in reports.write(out, lambda folder: _write_report_files(result, recording, folder))]


def _write_report_files(result: Fit, recording, out) -> list[str]:
    from .figures import save

    written = []
    path = os.path.join(out, "fit.json")
    with open(path, "w") as handle:
        json.dump(result.summary(), handle, indent=2)
    written.append(path)

    for name, figure in fit_figures(result, recording).items():
        path = os.path.join(out, name)
        save(figure, path)
        written.append(path)

    rows = "\n".join(f"| {name} | {result.start[name]:.6g} | {value:.6g} | {_format_error(result.errors[name])} |"
                     for name, value in result.values.items())
    gamma_test = "—" if result.gamma_test is None else f"{result.gamma_test:.3f}"
    text = (f"# Fit of {result.model} ({result.method}, loss {result.loss})\n\n"
            f"Solver {result.solver}, dt {result.dt:g} ms; train {result.train[0]:g}–{result.train[1]:g} ms"
            + (f", test {result.test[0]:g}–{result.test[1]:g} ms" if result.test else "") + ".\n\n"
            f"| parameter | start | fitted | standard error |\n|---|---|---|---|\n{rows}\n\n"
            f"Loss {result.loss_value:.6g}; coincidence factor Γ (Δ = {COINCIDENCE_WINDOW_MS:g} ms): train "
            f"{result.gamma_train:.3f}, test {gamma_test}; {len(result.data_spikes)} recorded spikes, "
            f"{len(result.trajectory.spikes)} fitted.\n\n"
            f"Compile {result.compile_time_s:.1f} s, fit {result.fit_time_s:.1f} s, {result.evaluations} runs.\n\n"
            + "".join(f"- {note}\n" for note in result.notes)
            + (f"\nCommand: `{result.command}`\n" if result.command else "")
            + "\n![trace](fit_trace.png)\n\n![history](fit_history.png)\n")
    path = os.path.join(out, "fit.md")
    with open(path, "w") as handle:
        handle.write(text)
    written.append(path)
    return written


def fit_figures(result: Fit, recording) -> dict:
    """The report's figures by file name: ``fit_trace.png`` (data and fitted trace with the train/test segments,
    the spike raster of both) and ``fit_history.png`` (loss and parameter values against iteration)."""
    from .figures import axis_label, legend_outside, subplots

    t, v = np.asarray(recording.t), np.asarray(recording.v)
    traj = result.trajectory
    state = traj.state_names[0]
    unit = traj.state_units.get(state, "mV")
    trace, axes = subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    axes[0].plot(t, v, color="0.5", lw=0.8, label="data")
    axes[0].plot(traj.t, traj[state], color="C3", lw=0.8, label=f"fit ({result.method})")
    axes[0].axvspan(*result.train, color="C0", alpha=0.06, label="train")
    if result.test:
        axes[0].axvspan(*result.test, color="C2", alpha=0.08, label="test")
    axes[0].set_ylabel(axis_label(state, unit))
    legend_outside(axes[0])
    axes[1].eventplot([result.data_spikes, traj.spikes], lineoffsets=[1, 0], colors=["0.3", "C3"], linelengths=0.8)
    axes[1].set_yticks([1, 0], ["data", "fit"])
    axes[1].set_ylabel("spikes")
    axes[1].set_xlabel("t (ms)")
    axes[0].set_title(f"{result.model}: recording and fit ({result.method}, loss {result.loss})", fontsize=10)

    history, axes = subplots(1, 2, figsize=(12, 4))
    iterations = np.arange(len(result.history))
    losses = np.array([h["loss"] for h in result.history])
    axes[0].semilogy(iterations, np.where(losses > 0, losses, np.nan))
    for phase in sorted({h["phase"] for h in result.history}):
        first = next(i for i, h in enumerate(result.history) if h["phase"] == phase)
        axes[0].axvline(first, color="0.8", lw=0.8)
        axes[0].text(first, 1, f" {phase}", transform=axes[0].get_xaxis_transform(), va="top", fontsize=8)
    loss_unit = {"trace": f"{unit}²" if unit not in ("", "1") else "1", "timing": "ms²"}.get(result.loss, "1")
    axes[0].set_xlabel("iteration, all phases (number)")
    axes[0].set_ylabel(axis_label(f"{result.loss} loss", loss_unit))
    for name in result.values:
        values = np.array([h["values"][name] for h in result.history])
        reference = result.start[name] if result.start.get(name) else 1.0
        axes[1].plot(iterations, values / reference, label=name)
    axes[1].set_xlabel("iteration, all phases (number)")
    axes[1].set_ylabel(axis_label("value / start value", "1"))
    legend_outside(axes[1])
    history.suptitle(f"{result.model}: fit history ({result.method}, loss {result.loss})", fontsize=10)
    return {"fit_trace.png": trace, "fit_history.png": history}


def _format_error(value):
    return "—" if not math.isfinite(value) else f"{value:.3g}"

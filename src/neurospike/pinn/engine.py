"""The PINN engine: one network per window and sub-problem, trained on the model's own right-hand side.

On a window [t0, t0 + H] the network sees the scaled time τ = (t − t0)/H ∈ [0, 1] and gives the states of a
sub-problem (all states, or one group of an operator splitting, the others frozen at their window-start values):

    y(τ) = y0 + τ · S · N(τ)        (initial condition exact; ``initial="soft"``: y0 + S·N(τ) plus a loss on y(0)),

S the per-state output scale (the change expected over the window, H·|f(t0, y0)|, clipped to between 10⁻³ and 1
times the model's ``state_scales``). The residual of dy/dt = f(t, y) in τ, normalised per state,

    r(τ) = (dy/dτ − H · f(t0 + Hτ, y(τ))) / S,

takes dy/dτ from ``jax.jvp`` of the network (forward mode; no hand derivatives, the model's ``derivatives`` is the
only source of the equations). Loss: the mean of |r|² over the collocation points, optionally with causal weights
w_i = exp(−ε Σ_{j<i} |r_j|²) on points sorted in τ (Wang, Sankaran & Perdikaris, CMAME 421 (2024) 116813), plus
a data term for ``pinn-data`` and the inverse PINN (:mod:`neurospike.pinn.inverse`). Training: Adam, then
L-BFGS (``optax.lbfgs`` with its zoom line search), each a ``lax.scan`` so the whole fit is one compiled function;
windows are marched in compiled chunks (``lax.scan``) with every network warm-started from the previous window's
(transfer learning).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpy.polynomial.legendre import leggauss

from ..errors import NeurospikeError
from ..solvers import events
from .network import ACTIVATIONS, apply_network



@dataclass(frozen=True)
class PinnOptions:
    """Everything a PINN run can be told (``None``: the method's default, :data:`METHOD_DEFAULTS`).

    ``widths`` hidden layer sizes; ``activation`` "tanh" or "sin"; ``fourier`` Fourier-feature frequencies;
    ``initial`` "exact" or "soft"; ``collocation`` points per window (Gauss–Legendre nodes, or uniform random
    points resampled every ``resample_every`` Adam steps when that is > 0); ``adam_steps``, ``lbfgs_steps``,
    ``learning_rate``; ``warmup`` extra (Adam, L-BFGS) steps on the first window; ``window`` (ms); ``splitting``
    "lie" or "strang"; ``causal`` ε of the causal weights (0: off); ``data_method``/``data_weight`` for
    ``pinn-data``; ``seed``; ``eval_points`` per window for the output and the residual; ``chunk`` windows per
    compiled call (the progress bar moves between calls).
    """

    widths: tuple[int, ...] | None = None
    activation: str | None = None
    fourier: int | None = None
    initial: str | None = None
    collocation: int | None = None
    resample_every: int | None = None
    adam_steps: int | None = None
    lbfgs_steps: int | None = None
    learning_rate: float | None = None
    warmup: tuple[int, int] | None = None
    window: float | None = None
    splitting: str | None = None
    causal: float | None = None
    data_method: str | None = None
    data_weight: float | None = None
    seed: int | None = None
    eval_points: int | None = None
    chunk: int | None = None


COMMON = dict(activation="tanh", fourier=0, initial="exact", resample_every=0, learning_rate=1e-3, causal=0.0,
              data_method="rk4", data_weight=1.0, seed=0, chunk=32, splitting="strang")
WHOLE = dict(COMMON, widths=(64, 64, 64), fourier=8, collocation=1024, resample_every=250, adam_steps=4000,
             lbfgs_steps=1000, warmup=(0, 0), window=None, eval_points=4001)
MARCHING = dict(COMMON, widths=(32, 32), collocation=48, adam_steps=150, lbfgs_steps=100, warmup=(1000, 300),
                window=None, eval_points=41)  # window None: the model's pinn_window
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "pinn": WHOLE,
    "pinn-data": WHOLE,
    "pinn-marching": MARCHING,
    "pinn-reset": MARCHING,
    "splitting-pinn": dict(COMMON, widths=(16,), collocation=8, adam_steps=0, lbfgs_steps=30, warmup=(1000, 300),
                           window=0.02, eval_points=2, chunk=250),
    "fpinn": dict(COMMON, widths=(16, 16), collocation=2, adam_steps=100, lbfgs_steps=100, warmup=(1000, 300),
                  window=None, eval_points=2, splitting="none", chunk=50),
}
SPLITTING_CHOICES = ("lie", "strang", "none")


def parse_option(name: str, text: str):
    """A ``NAME=VALUE`` PINN option from the command line, converted to its field's type."""
    known = {f.name: f for f in fields(PinnOptions)}
    if name not in known:
        raise NeurospikeError(f"unknown PINN option {name!r}; options are {', '.join(sorted(known))}")
    kind = str(known[name].type)
    try:
        if "tuple" in kind:
            return tuple(int(item) for item in text.split(",") if item.strip())
        if "int" in kind:
            return int(text)
        if "float" in kind:
            return float(text)
    except ValueError:
        raise NeurospikeError(f"PINN option {name}={text!r} is not {kind.split(' |')[0]}") from None
    return text


def resolve_options(method: str, options) -> PinnOptions:
    """The method's defaults overridden by ``options`` (a :class:`PinnOptions` or a mapping), checked."""
    if options is None:
        options = {}
    if isinstance(options, PinnOptions):
        options = {f.name: getattr(options, f.name) for f in fields(PinnOptions)}
    known = {f.name for f in fields(PinnOptions)}
    for name in options:
        if name not in known:
            raise NeurospikeError(f"unknown PINN option {name!r}; options are {', '.join(sorted(known))}")
    merged = dict(METHOD_DEFAULTS[method])
    merged.update({k: v for k, v in options.items() if v is not None})
    resolved = PinnOptions(**merged)
    _check(resolved)
    return resolved


def _check(o: PinnOptions) -> None:
    def positive_int(name, value, minimum=1):
        if not (isinstance(value, (int, np.integer)) and value >= minimum):
            raise NeurospikeError(f"PINN option {name}={value!r} must be an integer >= {minimum}")

    if not o.widths or any(not (isinstance(w, (int, np.integer)) and w >= 1) for w in o.widths):
        raise NeurospikeError(f"PINN option widths={o.widths!r} must be positive integers, e.g. 32,32")
    if o.activation not in ACTIVATIONS:
        raise NeurospikeError(f"PINN option activation={o.activation!r}: use {' or '.join(ACTIVATIONS)}")
    if o.initial not in ("exact", "soft"):
        raise NeurospikeError(f"PINN option initial={o.initial!r}: use 'exact' or 'soft'")
    if o.splitting not in SPLITTING_CHOICES:
        raise NeurospikeError(f"splitting={o.splitting!r}: use {', '.join(map(repr, SPLITTING_CHOICES))}")
    if o.window is not None and not (isinstance(o.window, (int, float)) and np.isfinite(o.window) and o.window > 0):
        raise NeurospikeError(f"window={o.window!r} must be a positive number of ms")
    positive_int("fourier", o.fourier, 0)
    positive_int("collocation", o.collocation, 2)
    positive_int("resample_every", o.resample_every, 0)
    positive_int("adam_steps", o.adam_steps, 0)
    positive_int("lbfgs_steps", o.lbfgs_steps, 0)
    positive_int("eval_points", o.eval_points, 2)
    positive_int("chunk", o.chunk, 1)
    positive_int("seed", o.seed, 0)
    if o.adam_steps + o.lbfgs_steps < 1:
        raise NeurospikeError("adam_steps + lbfgs_steps must be at least 1")
    if len(o.warmup) != 2 or any(not isinstance(w, (int, np.integer)) or w < 0 for w in o.warmup):
        raise NeurospikeError(f"PINN option warmup={o.warmup!r} must be two integers >= 0 (Adam, L-BFGS)")
    for name in ("learning_rate", "data_weight"):
        value = getattr(o, name)
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise NeurospikeError(f"PINN option {name}={value!r} must be a positive number")
    if not (isinstance(o.causal, (int, float)) and np.isfinite(o.causal) and o.causal >= 0):
        raise NeurospikeError(f"PINN option causal={o.causal!r} must be a number >= 0")


class Window(NamedTuple):
    """A sub-problem on one window (a pytree: every field is traced)."""

    t0: Any       # window start (ms)
    length: Any   # H (ms)
    frozen: Any   # the full state at the window start: the states outside the sub-problem stay there
    y0: Any       # the sub-problem's states at the window start
    scale: Any    # S per sub-problem state
    data_tau: Any  # (pinn-data) data times in τ, (M,), and values (M, n_sub); zero-size when unused
    data_y: Any
    weight: Any = None  # per-state weights of the squared residual (None: all 1)


@dataclass(frozen=True)
class SubProblem:
    """What stays fixed while windows march: the model, the states solved, the network form and the loss."""

    derivatives: Any
    indices: tuple[int, ...]
    typical: tuple[float, ...]  # model.state_scales of the sub-problem's states
    activation: str
    fourier: int
    initial: str
    causal: float
    data_weight: float

    def field(self, params, current, t, y_full):
        state = tuple(y_full[i] for i in range(y_full.shape[0]))
        return jnp.stack(self.derivatives(t, state, params, current(t, t, jnp), jnp))

    def window(self, params, current, t0, length, frozen, data_tau=None, data_y=None):
        """The :class:`Window` starting at ``t0`` from the full state ``frozen``, with its output scale."""
        index = jnp.asarray(self.indices)
        scale = output_scale(lambda t, y: self.field(params, current, t, y), t0, length, frozen, index,
                             jnp.asarray(self.typical, dtype=frozen.dtype))
        empty = jnp.zeros((0,), dtype=frozen.dtype)
        return Window(t0, length, frozen, frozen[index], scale, empty if data_tau is None else data_tau,
                      jnp.zeros((0, len(self.indices)), dtype=frozen.dtype) if data_y is None else data_y)

    def solution(self, net, window: Window, tau):
        out = apply_network(net, tau, self.activation, self.fourier)
        if self.initial == "exact":
            return window.y0 + tau * window.scale * out
        return window.y0 + window.scale * out

    def residual(self, net, params, current, window: Window, tau):
        y, dy = jax.jvp(lambda s: self.solution(net, window, s), (tau,), (jnp.ones_like(tau),))
        full = window.frozen.at[jnp.asarray(self.indices)].set(y)
        f = self.field(params, current, window.t0 + window.length * tau, full)[jnp.asarray(self.indices)]
        return (dy - window.length * f) / window.scale

    def loss(self, net, params, current, window: Window, tau):
        squared = jax.vmap(lambda s: self.residual(net, params, current, window, s))(tau) ** 2
        squared = jnp.sum(squared if window.weight is None else squared * window.weight, axis=1)
        if self.causal > 0:  # points are sorted in τ: a later point counts once the earlier ones are solved
            before = jnp.concatenate([jnp.zeros((1,), squared.dtype), jnp.cumsum(squared)[:-1]])
            squared = jax.lax.stop_gradient(jnp.exp(-self.causal * before)) * squared
        total = jnp.mean(squared)
        if self.initial == "soft":
            total = total + jnp.sum(((self.solution(net, window, 0.0) - window.y0) / window.scale) ** 2)
        if window.data_tau.shape[0]:
            total = total + self.data_weight * self.data_loss(net, window)
        return total

    def data_loss(self, net, window: Window):
        """The mean over the data points of Σ_states ((y(τ_i) − data_i)/typical)², where a NaN in ``data_y``
        is a state not observed there (the inverse PINN observes v only, and pads its windows with NaN rows):
        the sum runs over the observed entries and the mean over the rows with one at least."""
        typical = jnp.asarray(self.typical, dtype=window.data_y.dtype)
        fitted = jax.vmap(lambda s: self.solution(net, window, s))(window.data_tau)
        seen = jnp.isfinite(window.data_y)
        difference = jnp.where(seen, fitted - jnp.where(seen, window.data_y, 0.0), 0.0)  # no NaN in the gradient
        rows = jnp.maximum(jnp.sum(jnp.any(seen, axis=1)), 1)
        return jnp.sum((difference / typical) ** 2) / rows


def output_scale(field, t0, length, frozen, index, typical):
    """S per state of ``index``: the change expected over the window, H times the larger slope at its start and
    at the end of an explicit Euler predictor (a state at a turning point, zero slope at t0, still gets the scale
    of its change), clipped to [10⁻³, 1] × its typical range."""
    slope = field(t0, frozen)[index]
    ahead = frozen.at[index].add(length * slope)
    slope_end = field(t0 + length, ahead)[index]
    change = length * jnp.maximum(jnp.abs(slope), jnp.abs(slope_end))
    return jnp.clip(change, 1e-3 * typical, typical)


def gauss_legendre(count: int) -> np.ndarray:
    """Gauss–Legendre nodes on [0, 1], sorted (collocation points of a window)."""
    nodes, _ = leggauss(count)
    return (nodes + 1.0) / 2.0


def train(loss, net, adam_steps, lbfgs_steps, learning_rate, tau, key=None, resample_every: int = 0,
          capacity: tuple[int, int] | None = None):
    """Adam for ``adam_steps`` then L-BFGS for ``lbfgs_steps`` on ``loss(net, tau)``; returns the trained net,
    its final loss and the loss history (``capacity`` = (most Adam steps, most L-BFGS steps) entries, NaN where
    no step ran). The step counts may be traced (one compiled function serves a long first fit and the short
    warm-started ones). With ``resample_every`` > 0 Adam draws new uniform collocation points (sorted) every that
    many steps from ``key``; L-BFGS keeps ``tau``. Pure: runs inside jit / scan."""
    most_adam, most_lbfgs = capacity if capacity is not None else (int(adam_steps), int(lbfgs_steps))
    start = net
    history = jnp.full((most_adam + most_lbfgs,), jnp.nan, dtype=tau.dtype)
    if most_adam:
        optimiser = optax.adam(learning_rate)

        def adam_step(step, carry):
            current, state, history = carry
            points = tau
            if resample_every:
                draw = jax.random.fold_in(key, step // resample_every)
                points = jnp.sort(jax.random.uniform(draw, tau.shape, dtype=tau.dtype))
            value, grad = jax.value_and_grad(loss)(current, points)
            updates, state = optimiser.update(grad, state, current)
            return optax.apply_updates(current, updates), state, history.at[step].set(value)

        net, _, history = jax.lax.fori_loop(0, adam_steps, adam_step, (net, optimiser.init(net), history))
    if most_lbfgs:
        optimiser = optax.lbfgs()
        objective = lambda q: loss(q, tau)  # noqa: E731
        value_and_grad = optax.value_and_grad_from_state(objective)

        def lbfgs_step(step, carry):
            current, state, history = carry
            value, grad = value_and_grad(current, state=state)
            updates, state = optimiser.update(grad, state, current, value=value, grad=grad, value_fn=objective)
            return optax.apply_updates(current, updates), state, history.at[most_adam + step].set(value)

        net, _, history = jax.lax.fori_loop(0, lbfgs_steps, lbfgs_step, (net, optimiser.init(net), history))
    final = loss(net, tau)
    # an optimiser that diverged (NaN / inf loss) leaves the window's starting weights, not NaN weights
    diverged = ~jnp.isfinite(final)
    net = jax.tree_util.tree_map(lambda trained, first: jnp.where(diverged, first, trained), net, start)
    return net, jnp.where(diverged, loss(start, tau), final), history


@dataclass(frozen=True)
class WindowPath:
    """A network's solution between the window fractions ``low`` and ``high``, at θ ∈ [0, 1] of that span: the
    ``evaluate`` of an :class:`neurospike.solvers.events.Interpolant` with coefficients (net, window, low, high)."""

    sub: "SubProblem"

    def __call__(self, theta, coefficients):
        net, window, low, high = coefficients
        return self.sub.solution(net, window, low + theta * (high - low))


def locate_crossing(sub, net, window, rule, level, values, taus):
    """The first event of ``rule`` (an :class:`~neurospike.solvers.events.EventRule`) between the samples
    ``values`` of the spike state at the window fractions ``taus`` (sorted), located on the network's own
    solution by :func:`neurospike.solvers.events.locate`: (found, τ*)."""
    up = events.crossing(rule, level, values[:-1], values[1:])
    found = jnp.any(up)
    first = jnp.argmax(up)
    low, high = taus[first], taus[first + 1]
    theta, _ = events.locate(events.Interpolant(WindowPath(sub), (net, window, low, high)), rule.spike_index, level)
    return found, jnp.where(found, low + theta * (high - low), jnp.nan)
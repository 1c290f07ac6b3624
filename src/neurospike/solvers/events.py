"""Spike events of one neuron in one step, written once: crossing, location, reset, refractory hold, the rest of
the step with further spikes, and the run guards. The single-neuron loop (``fixed_step``) calls
:func:`step_events` for a step that crossed; the population loop (``population``) calls the very same function
``jax.vmap``-ed over the batch of neurons that crossed in a step, each with its own status, so a neuron in a
population does exactly what it does alone (several spikes in one step included).

Scheme. A step of the method takes the state from ``y`` at ``start`` to ``y_next`` at ``t_next = start + span``.
With ``located`` events a spike happens where the spike state (index ``k``) crosses its level upwards inside the
step: ``y[k] < level <= y_next[k]``. Its fraction θ ∈ (0, 1] of the step is found on the step's dense interpolant
(the method's: linear, order 1, or cubic Hermite on y and f at both ends, order 3) by ``BISECTION_STEPS`` = 60
halvings of [0, 1] (θ to machine precision: the upper end of the last bracket, where the interpolant is at or above
the level; why: docs/design.md#spike-location-by-bisection); the spike time is ``start + θ·span``. The reset map is
applied to the interpolated state there; with a refractory period the state is held until ``t_spike + period`` (no
stepping, no spike), then the rest of the step is integrated by the method from the reset state, which may cross
again: up to ``MAX_EVENTS_PER_STEP`` = 16 spikes per step, then the run halts (rate exceeded). Without a reset map
only the crossing time is recorded and the step's end state is kept. With ``events="step"`` (``located=False``) a
step that ends at or above the level spikes at its end ``t_next``: the reset is applied after the step
(Izhikevich's figure1.m), once per step; without a reset map only upward crossings count. Spike times are therefore
exact to the interpolant's order with located events, and on the grid with step events.

Derivatives. θ is defined implicitly by g(θ) = interpolant_k(θ) − level = 0, so :func:`crossing_fraction` has a
``jax.custom_jvp``: dθ = −(∂g/∂c · dc + ∂g/∂level · dlevel)/(∂g/∂θ) for the interpolant's coefficients c (the
implicit function theorem, not a derivative of the bisection). The reset map and the rest of the step carry it
on, so ``jax.jvp`` of a loop built from these functions gives the derivatives of states and spike times.

Guards (per neuron). A spike sooner than ``min_interval`` (1000/max_rate ms) after the previous one halts the
neuron with ``RATE_EXCEEDED`` at the spike time (the spike is recorded, the state after its reset kept), as does
a 17th crossing in one step (at the step's end); :func:`guard_finite` halts with ``NON_FINITE`` at the step's
start and keeps the last finite state. A halted neuron is stepped with span 0 (its state stays).

API (every function is pure JAX on one neuron; vmap it for several):

- ``EventRule(spike_index, level_name, reset, refractory_name, located)``: the static choices (``LoopConfig``
  of ``fixed_step`` has the same fields and its ``.events`` is one).
- ``crossing(rule, level, before, after, span=None)``: whether a step with spike-state values ``before`` →
  ``after`` (and length ``span``, ``None`` to skip that test) has an event; elementwise, for any shape.
- ``Interpolant(evaluate, coefficients)``: ``evaluate(θ, coefficients)`` gives the state at fraction θ of the
  step; :func:`linear`, :func:`cubic_hermite` and :func:`method_interpolant` build one; another loop (the
  fractional L1 / PECE steps, a PINN window) passes its own.
- ``locate(interpolant, k, level) -> (θ, state at θ)``; ``crossing_fraction(g, coefficients)``: the bisection
  with the implicit-function derivative, for any scalar ``g(θ, coefficients)`` rising through 0 on [0, 1];
  ``locate_on_line(y0, y1, k, level, crossed)``: the same on a straight line, in closed form.
- ``new_status(min_interval, refractory_end=-inf, last=-inf)``: a neuron's status (``refractory_end``, ``last``
  spike, ``min_interval``, ``halted``, ``halt_time``, ``halt_code``); :func:`halt`, :func:`guard_rate`,
  :func:`guard_finite`, :func:`spike_status` (refractory end and rate guard of one spike).
- ``reset_state(rule, params, y)``: the reset map on a state vector; ``no_events(y)``: empty records.
- ``step_events(rule, params, status, start, y, y_next, span, t_next, interpolant_of, advance, bounded=False)``
  → ``(y_end, status, (times, before, after), count)``: every spike of a step that crossed (call it only then:
  it records one spike at least), with ``interpolant_of(s, y0, y1, h) -> Interpolant`` and ``advance(s, y, h)
  -> y`` the loop's own; records are ``MAX_EVENTS_PER_STEP`` long, NaN-padded, ``count`` valid. ``bounded``:
  a fixed number of conditional passes instead of the while loop (same results; ``jax.grad`` goes through).

Another loop reuses it with its own interpolant and step: a loop that can finish a step from the reset state
passes ``interpolant_of`` (e.g. ``lambda s, y0, y1, h: linear(y0, y1)``) and ``advance`` to
:func:`step_events`; one that cannot (a fractional step, whose history fixes the step) takes the pieces:
``crossing`` → ``locate(its interpolant, k, level)`` (the fractional loops: ``locate_on_line``) →
``reset_state``, and its own refractory bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

OK, RATE_EXCEEDED, NON_FINITE = 0, 1, 2
BISECTION_STEPS = 60
MAX_EVENTS_PER_STEP = 16


@dataclass(frozen=True)
class EventRule:
    """The static event choices of a loop: the spike state's index, the names of the level, refractory-period
    parameters, the reset map ``reset(state tuple, params) -> state tuple`` (None: record crossings only), and
    whether events are located inside the step (else reset after the step)."""

    spike_index: int | None
    level_name: str | None
    reset: Any
    refractory_name: str | None
    located: bool


def crossing(rule, level, before, after, span=None):
    """Whether a step whose spike state goes from ``before`` to ``after`` has an event (elementwise): an upward
    crossing of ``level``, or with step events and a reset map any step ending at or above it; only steps of
    positive ``span`` (a held or halted neuron's step has span 0)."""
    crossed = after >= level
    if rule.located or rule.reset is None:
        crossed = crossed & (before < level)
    return crossed if span is None else crossed & (span > 0)


def hermite(theta, y0, f0, y1, f1, h):
    """Cubic Hermite interpolant on one step at fraction theta ∈ [0, 1] (order 3)."""
    t2, t3 = theta * theta, theta * theta * theta
    return ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + theta) * h * f0
            + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * f1)


@dataclass(frozen=True)
class Interpolant:
    """A step's dense output: ``evaluate(theta, coefficients)`` (pure, so its derivative in the coefficients is
    taken by :func:`crossing_fraction`); calling it evaluates at ``theta``."""

    evaluate: Callable
    coefficients: Any

    def __call__(self, theta):
        return self.evaluate(theta, self.coefficients)


def _linear(theta, c):
    y0, y1 = c
    return y0 + theta * (y1 - y0)


def _hermite(theta, c):
    return hermite(theta, *c)


def linear(y0, y1) -> Interpolant:
    """The straight line from y0 to y1 (order 1)."""
    return Interpolant(_linear, (y0, y1))


def cubic_hermite(y0, f0, y1, f1, h) -> Interpolant:
    """The cubic Hermite interpolant on values and slopes at both ends of a step of length h (order 3)."""
    return Interpolant(_hermite, (y0, f0, y1, f1, h))


def method_interpolant(method, field, s, y0, y1, h) -> Interpolant:
    """The interpolant of a fixed-step method (its ``interpolation``: "linear" or "hermite", with f from
    ``field`` at both ends) on the step from (s, y0) to (s + h, y1)."""
    if method.interpolation == "hermite":
        return cubic_hermite(y0, field(s, y0), y1, field(s + h, y1), h)
    return linear(y0, y1)


def _bisect_raw(g, coefficients):
    def halve(_, bracket):
        low, high = bracket
        mid = 0.5 * (low + high)
        above = g(mid, coefficients) >= 0
        return jnp.where(above, low, mid), jnp.where(above, mid, high)

    zero = jnp.zeros_like(g(0.0, coefficients))
    return jax.lax.fori_loop(0, BISECTION_STEPS, halve, (zero, zero + 1))[1]


_bisect = jax.custom_jvp(_bisect_raw, nondiff_argnums=(0,))


@_bisect.defjvp
def _bisect_jvp(g, primals, tangents):
    (coefficients,), (d_coefficients,) = primals, tangents
    theta = _bisect(g, coefficients)
    _, d_g = jax.jvp(lambda c: g(theta, c), (coefficients,), (d_coefficients,))
    _, slope = jax.jvp(lambda th: g(th, coefficients), (theta,), (jnp.ones_like(theta),))
    return theta, -d_g / slope


def crossing_fraction(g, coefficients):
    """The fraction θ ∈ (0, 1] where ``g(θ, coefficients)`` (negative at 0, ≥ 0 at 1) rises through 0, by
    bisection to machine precision (the upper end of the last bracket); its derivative is the implicit one,
    dθ = −(∂g/∂c · dc)/(∂g/∂θ). ``g`` must be hashable (a module-level function or a frozen dataclass)."""
    return _bisect(g, coefficients)


@dataclass(frozen=True)
class _Gap:
    """g(θ, (c, level)) = evaluate(θ, c)[k] − level, hashable (a static argument of the custom derivative)."""

    evaluate: Callable
    k: int

    def __call__(self, theta, args):
        coefficients, level = args
        return self.evaluate(theta, coefficients)[self.k] - level


def locate(interpolant: Interpolant, k: int, level):
    """The fraction θ of the step where state ``k`` of ``interpolant`` crosses ``level`` upwards, and the
    state there (θ's derivative from the implicit function theorem, see :func:`crossing_fraction`)."""
    theta = _bisect(_Gap(interpolant.evaluate, k), (interpolant.coefficients, level))
    return theta, interpolant(theta)


def locate_on_line(y0, y1, k, level, crossed):
    """The fraction θ ∈ [0, 1] where state ``k`` of the straight line from ``y0`` to ``y1`` reaches ``level``, in
    closed form, and the state there: :func:`locate` on :func:`linear` up to rounding, without the bisection, for
    a loop that evaluates it on every step (the fractional L1 and PECE steps, whose interpolant is the line).
    ``crossed``: whether the step crossed (elsewhere θ is meaningless but finite). Its derivative is that of the
    formula θ = (level − y0_k)/(y1_k − y0_k), the implicit one."""
    theta = jnp.clip((level - y0[k]) / jnp.where(crossed, y1[k] - y0[k], 1.0), 0.0, 1.0)
    return theta, y0 + theta * (y1 - y0)


def new_status(min_interval, refractory_end=-jnp.inf, last=-jnp.inf, dtype=jnp.float64):
    """A neuron's event status at the start of a run (``refractory_end``/``last`` carried over from an earlier
    run continue it)."""
    return {
        "refractory_end": jnp.asarray(refractory_end, dtype=dtype),
        "min_interval": jnp.asarray(min_interval, dtype=dtype),
        "last": jnp.asarray(last, dtype=dtype),
        "halted": jnp.asarray(False),
        "halt_time": jnp.asarray(jnp.nan, dtype=dtype),
        "halt_code": jnp.asarray(OK),
    }


def halt(status, condition, time, code):
    """Halt where ``condition`` holds; the first halt's time and code are kept."""
    fresh = condition & ~status["halted"]
    return dict(
        status,
        halted=status["halted"] | condition,
        halt_time=jnp.where(fresh, time, status["halt_time"]),
        halt_code=jnp.where(fresh, code, status["halt_code"]),
    )


def guard_rate(status, t_spike):
    """A spike at ``t_spike``: halt with RATE_EXCEEDED if it comes sooner than ``min_interval`` after the last."""
    too_fast = t_spike - status["last"] < status["min_interval"]
    return halt(dict(status, last=t_spike), too_fast, t_spike, RATE_EXCEEDED)


def guard_finite(status, y_new, y, time):
    """Halt with NON_FINITE at ``time`` if ``y_new`` is not finite; returns the status and the state to keep."""
    finite = jnp.all(jnp.isfinite(y_new))
    return halt(status, ~finite, time, NON_FINITE), jnp.where(finite, y_new, y)


def spike_status(rule, params, status, t_spike):
    """The status after a spike at ``t_spike``: the refractory period it opens, and the rate guard."""
    if rule.refractory_name is not None and rule.reset is not None:
        status = dict(status, refractory_end=t_spike + params[rule.refractory_name])
    return guard_rate(status, t_spike)


def reset_state(rule, params, y):
    """The reset map on a state vector (the identity without one)."""
    if rule.reset is None:
        return y
    return jnp.stack(rule.reset(tuple(y[i] for i in range(y.shape[0])), params))


def _empty_records(y):
    n = y.shape[0]
    return (jnp.full((MAX_EVENTS_PER_STEP,), jnp.nan, dtype=y.dtype),
            jnp.full((MAX_EVENTS_PER_STEP, n), jnp.nan, dtype=y.dtype),
            jnp.full((MAX_EVENTS_PER_STEP, n), jnp.nan, dtype=y.dtype))


def no_events(y):
    """The records of a step without spikes: NaN-padded, count 0."""
    return _empty_records(y), 0


def step_events(rule: EventRule, params, status, start, y, y_next, span, t_next, interpolant_of, advance,
                bounded: bool = False):
    """Every spike of one step that has an event (see the module docstring): the end-of-step state, the status,
    the spike records (times, states before and after each reset; NaN-padded) and their count. ``bounded``
    (static): the spikes in ``MAX_EVENTS_PER_STEP`` conditional passes instead of a while loop (same results;
    reverse-mode differentiable)."""
    k = rule.spike_index
    level = params[rule.level_name]
    records = _empty_records(y)

    def record(status, records, count, t_spike, y_before, y_after):
        status = spike_status(rule, params, status, t_spike)
        records = (records[0].at[count].set(t_spike), records[1].at[count].set(y_before),
                   records[2].at[count].set(y_after))
        return status, records, count + 1

    if not rule.located:  # the reset after the step, at its end
        y_after = reset_state(rule, params, y_next)
        status, records, count = record(status, records, 0, t_next, y_next, y_after)
        return y_after, status, records, count

    if rule.reset is None:  # only record the crossing; the trajectory is untouched
        theta, y_cross = locate(interpolant_of(start, y, y_next, span), k, level)
        status, records, count = record(status, records, 0, start + theta * span, y_cross, y_cross)
        return y_next, status, records, count

    def another(loop):
        status, _, count, _, _, _, _, crossed = loop
        return crossed & ~status["halted"] & (count < MAX_EVENTS_PER_STEP)

    def handle(loop):
        status, records, count, s, y0, y1, h, _ = loop
        theta, y_before = locate(interpolant_of(s, y0, y1, h), k, level)
        t_spike = s + theta * h
        y_after = reset_state(rule, params, y_before)
        status, records, count = record(status, records, count, t_spike, y_before, y_after)
        resume = t_spike
        if rule.refractory_name is not None:
            resume = jnp.minimum(jnp.maximum(t_spike, status["refractory_end"]), t_next)
        rest = jnp.where(status["halted"], 0.0, t_next - resume)
        y_end = advance(resume, y_after, rest)
        crossed = crossing(rule, level, y_after[k], y_end[k], rest)
        return status, records, count, resume, y_after, y_end, rest, crossed

    loop = (status, records, jnp.asarray(0), start, y, y_next, span, jnp.asarray(True))
    if bounded:
        loop = jax.lax.fori_loop(0, MAX_EVENTS_PER_STEP,
                                 lambda _, loop: jax.lax.cond(another(loop), handle, lambda loop: loop, loop), loop)
    else:
        loop = jax.lax.while_loop(another, handle, loop)
    status, records, count, _, _, y_end, _, crossed = loop
    status = halt(status, crossed & (count >= MAX_EVENTS_PER_STEP), t_next, RATE_EXCEEDED)
    return y_end, status, records, count

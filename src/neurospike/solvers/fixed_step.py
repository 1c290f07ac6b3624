"""The one time loop for every fixed-step method: ``lax.scan`` over the steps, spike events inside.

Grid: uniform steps of ``dt`` from t0, with every discontinuity of the input inserted as a node, so no step
straddles a jump; each step evaluates the input on its own piece (its midpoint is the ``t_ref``).

Events (``events="located"``): when a step carries the spike state across its level, the crossing time is found
on the step's dense interpolant (bisection to machine precision), the spike is recorded there with the state
just before and after the reset, and the step is finished from the reset state, possibly with more spikes. With
``events="step"`` the reset is applied after the step, as the seed study (and figure1.m) did.

Guards: a state that turns non-finite or spikes faster than ``max_rate`` (a Zeno cascade of resets) halts the
run; what was computed up to there is kept and the status says when and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .methods import VectorField

OK, RATE_EXCEEDED, NON_FINITE = 0, 1, 2
BISECTION_STEPS = 60
MAX_EVENTS_PER_STEP = 16
BLOCK = 64


def time_grid(t0: float, t_end: float, dt: float, breaks=()) -> np.ndarray:
    """Nodes t0, t0 + dt, … , t_end with every break in (t0, t_end) inserted (nodes closer than 1e-9·dt to a
    break are moved onto it)."""
    count = int(math.floor((t_end - t0) / dt + 1e-9))
    nodes = t0 + dt * np.arange(count + 1)
    breaks = np.asarray([b for b in breaks if t0 < b < t_end], dtype=float)
    nodes = np.concatenate([nodes, breaks, [t_end]])
    nodes = np.sort(nodes)
    keep = np.concatenate([[True], np.diff(nodes) > 1e-9 * dt])
    nodes = nodes[keep]
    nodes[-1] = t_end
    for b in breaks:  # snap the nearest node exactly onto each break
        nodes[np.argmin(np.abs(nodes - b))] = b
    return nodes


def hermite(theta, y0, f0, y1, f1, h):
    """Cubic Hermite interpolant on one step at fraction theta ∈ [0, 1]."""
    t2, t3 = theta * theta, theta * theta * theta
    return ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + theta) * h * f0
            + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * f1)


@dataclass(frozen=True)
class LoopConfig:
    """The static (compile-time) choices of one run."""

    method: Any
    derivatives: Any
    groups: Any
    spike_index: int | None
    level_name: str | None
    reset: Any
    refractory_name: str | None
    located: bool
    input_at_step_start: bool  # the input read at the step's start t (figure1.m), not on its midpoint's piece
    spike_capacity: int  # spikes one block may hold (beyond MAX_EVENTS_PER_STEP)
    record_trace: bool


def _interpolant(config: LoopConfig, field, s, y0, y1, h):
    if config.method.interpolation == "hermite":
        f0, f1 = field(s, y0), field(s + h, y1)
        return lambda theta: hermite(theta, y0, f0, y1, f1, h)
    return lambda theta: y0 + theta * (y1 - y0)


def locate(config: LoopConfig, field, level, s, y0, y1, h):
    """The fraction θ of the step where the spike state crosses ``level`` upwards, and the state there."""
    interpolant = _interpolant(config, field, s, y0, y1, h)
    k = config.spike_index

    def bisect(_, bracket):
        low, high = bracket
        mid = 0.5 * (low + high)
        above = interpolant(mid)[k] >= level
        return jnp.where(above, low, mid), jnp.where(above, mid, high)

    _, theta = jax.lax.fori_loop(0, BISECTION_STEPS, bisect, (jnp.zeros_like(h), jnp.ones_like(h)))
    return theta, interpolant(theta)


def _halt(state, condition, time, code):
    fresh = condition & ~state["halted"]
    return dict(
        state,
        halted=state["halted"] | condition,
        halt_time=jnp.where(fresh, time, state["halt_time"]),
        halt_code=jnp.where(fresh, code, state["halt_code"]),
    )


def _events_in_step(config: LoopConfig, params, field, status, start, y, y_next, span, t_next):
    """Handle the spikes of one step. Returns the end-of-step state, the updated status and a block of up to
    ``MAX_EVENTS_PER_STEP`` spike records (time, state before, state after; NaN-padded) with their count."""
    method, k = config.method, config.spike_index
    level = params[config.level_name]
    n = y.shape[0]
    block = (jnp.full((MAX_EVENTS_PER_STEP,), jnp.nan), jnp.full((MAX_EVENTS_PER_STEP, n), jnp.nan),
             jnp.full((MAX_EVENTS_PER_STEP, n), jnp.nan))

    def record(status, block, count, t_spike, y_before, y_after):
        too_fast = t_spike - status["last"] < status["min_interval"]
        status = _halt(dict(status, last=t_spike), too_fast, t_spike, RATE_EXCEEDED)
        block = (block[0].at[count].set(t_spike), block[1].at[count].set(y_before), block[2].at[count].set(y_after))
        return status, block, count + 1

    if config.reset is None:  # only record the crossing; the trajectory is untouched
        theta, y_cross = locate(config, field, level, start, y, y_next, span)
        status, block, count = record(status, block, 0, start + theta * span, y_cross, y_cross)
        return y_next, status, block, count

    def another(loop):
        status, _, count, _, _, _, _, crossed = loop
        return crossed & ~status["halted"] & (count < MAX_EVENTS_PER_STEP)

    def handle(loop):
        status, block, count, s, y0, y1, h, _ = loop
        theta, y_before = locate(config, field, level, s, y0, y1, h)
        t_spike = s + theta * h
        y_after = jnp.stack(config.reset(tuple(y_before[i] for i in range(n)), params))
        status, block, count = record(status, block, count, t_spike, y_before, y_after)
        resume = t_spike
        if config.refractory_name is not None:
            status = dict(status, refractory_end=t_spike + params[config.refractory_name])
            resume = jnp.minimum(jnp.maximum(t_spike, status["refractory_end"]), t_next)
        rest = jnp.where(status["halted"], 0.0, t_next - resume)
        y_end = method.step(field, resume, y_after, rest)
        crossed = (y_after[k] < level) & (y_end[k] >= level) & (rest > 0)
        return status, block, count, resume, y_after, y_end, rest, crossed

    loop = (status, block, 0, start, y, y_next, span, True)
    status, block, count, _, _, y_end, _, crossed = jax.lax.while_loop(another, handle, loop)
    status = _halt(status, crossed & (count >= MAX_EVENTS_PER_STEP), t_next, RATE_EXCEEDED)
    return y_end, status, block, count


def _step(config: LoopConfig, params, current, carry, node):
    t, h, t_ref = node
    field = VectorField(config.derivatives, params, current, t_ref, config.groups)
    y, status = carry["y"], carry["status"]
    t_next = t + h
    start = jnp.maximum(t, status["refractory_end"]) if config.refractory_name is not None else t
    start = jnp.minimum(start, t_next)
    span = jnp.where(status["halted"], 0.0, t_next - start)
    y_next = config.method.step(field, start, y, span)

    if config.spike_index is not None:
        k, level = config.spike_index, params[config.level_name]
        if config.located:
            crossed = (y[k] < level) & (y_next[k] >= level) & (span > 0)
            handle = lambda status: _events_in_step(config, params, field, status, start, y, y_next, span, t_next)
        else:
            if config.reset is None:
                crossed = (y[k] < level) & (y_next[k] >= level) & (span > 0)
            else:
                crossed = (y_next[k] >= level) & (span > 0)

            def handle(status):
                y_after = y_next if config.reset is None else jnp.stack(
                    config.reset(tuple(y_next[i] for i in range(y.shape[0])), params))
                if config.refractory_name is not None:
                    status = dict(status, refractory_end=t_next + params[config.refractory_name])
                too_fast = t_next - status["last"] < status["min_interval"]
                status = _halt(dict(status, last=t_next), too_fast, t_next, RATE_EXCEEDED)
                block = (jnp.full((MAX_EVENTS_PER_STEP,), jnp.nan).at[0].set(t_next),
                         jnp.full((MAX_EVENTS_PER_STEP, y.shape[0]), jnp.nan).at[0].set(y_next),
                         jnp.full((MAX_EVENTS_PER_STEP, y.shape[0]), jnp.nan).at[0].set(y_after))
                return y_after, status, block, 1

        def quiet(status):
            n = y.shape[0]
            return y_next, status, (jnp.full((MAX_EVENTS_PER_STEP,), jnp.nan),
                                    jnp.full((MAX_EVENTS_PER_STEP, n), jnp.nan),
                                    jnp.full((MAX_EVENTS_PER_STEP, n), jnp.nan)), 0

        y_new, status, block, count = jax.lax.cond(crossed, handle, quiet, status)
        spikes = carry["spikes"]
        index = jnp.minimum(status["count"], spikes[0].shape[0] - MAX_EVENTS_PER_STEP)
        status = _halt(status, status["count"] + count > spikes[0].shape[0] - MAX_EVENTS_PER_STEP, t_next,
                       RATE_EXCEEDED)
        spikes = tuple(jax.lax.dynamic_update_slice_in_dim(buffer, part, index, 0)
                       for buffer, part in zip(spikes, block))
        status = dict(status, count=status["count"] + count)
        carry = dict(carry, spikes=spikes)
    else:
        y_new = y_next

    finite = jnp.all(jnp.isfinite(y_new))
    status = _halt(status, ~finite, t, NON_FINITE)
    y_new = jnp.where(finite, y_new, y)
    carry = dict(carry, y=y_new, status=status)
    return carry, (y_new if config.record_trace else None)


def _fast_block(config: LoopConfig, params, current, y, block):
    """Step through a block with no event handling; flag whether anything (a crossing, a non-finite state)
    needs the careful loop."""
    k = config.spike_index

    def body(state, node):
        y, flagged = state
        t, h, t_ref = node
        y_next = config.method.step(VectorField(config.derivatives, params, current, t_ref, config.groups), t, y, h)
        flagged = flagged | ~jnp.all(jnp.isfinite(y_next))
        if k is not None:
            level = params[config.level_name]
            flagged = flagged | (y_next[k] >= level) & ((y[k] < level) | (config.reset is not None))
        return (y_next, flagged), y_next

    (y_end, flagged), trace = jax.lax.scan(body, (y, jnp.asarray(False)), block)
    return y_end, flagged, trace


def run(config: LoopConfig, params, current, y0, nodes, min_interval):
    """Integrate over ``nodes`` in blocks of ``BLOCK`` steps. A block is first stepped without event handling;
    only a block in which a spike (or a non-finite state, a halt, a refractory period) occurs is redone step by
    step with events, so the common case costs no more than the bare method.

    Returns the trace (one state per node after the first; padded to whole blocks), the spike records per block
    (NaN-padded, with counts) and the final status. Compiled once per (config, shapes); parameters and input
    are traced."""
    nodes = jnp.asarray(nodes)
    steps = nodes[1:] - nodes[:-1]
    n_steps = steps.shape[0]
    n_blocks = -(-n_steps // BLOCK)
    pad = n_blocks * BLOCK - n_steps
    t_start = jnp.concatenate([nodes[:-1], jnp.full((pad,), nodes[-1])])
    steps = jnp.concatenate([steps, jnp.zeros((pad,))])
    t_ref = t_start if config.input_at_step_start else t_start + steps / 2
    blocks = tuple(x.reshape(n_blocks, BLOCK) for x in (t_start, steps, t_ref))
    n = y0.shape[0]
    capacity = config.spike_capacity + MAX_EVENTS_PER_STEP
    fresh_spikes = (jnp.full((capacity,), jnp.nan), jnp.full((capacity, n), jnp.nan), jnp.full((capacity, n), jnp.nan))
    status = {
        "refractory_end": jnp.asarray(-jnp.inf),
        "min_interval": jnp.asarray(min_interval, dtype=y0.dtype),
        "last": jnp.asarray(-jnp.inf),
        "count": jnp.asarray(0),
        "halted": jnp.asarray(False),
        "halt_time": jnp.asarray(jnp.nan),
        "halt_code": jnp.asarray(OK),
    }

    def one_block(carry, block):
        y, status = carry
        y_end, flagged, trace = _fast_block(config, params, current, y, block)
        careful = flagged | status["halted"]
        if config.refractory_name is not None:
            careful = careful | (status["refractory_end"] > block[0][0])

        def redo(_):
            inner = {"y": y, "status": dict(status, count=jnp.asarray(0)), "spikes": fresh_spikes}
            inner, trace = jax.lax.scan(lambda c, node: _step(config, params, current, c, node), inner, block)
            return inner["y"], inner["status"], trace, inner["spikes"]

        def accept(_):
            return y_end, dict(status, count=jnp.asarray(0)), trace, fresh_spikes

        y_end, status, trace, spikes = jax.lax.cond(careful, redo, accept, None)
        return (y_end, status), (trace, spikes, status["count"])

    (y_end, status), (trace, spikes, counts) = jax.lax.scan(one_block, (y0, status), blocks)
    trace = trace.reshape(n_blocks * BLOCK, n)[:n_steps]
    return trace, spikes, counts, status

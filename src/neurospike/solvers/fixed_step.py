"""The one time loop for every fixed-step method: blocks of steps run without events, spike events inside.

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
BLOCK = 256


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


def _node(config: LoopConfig, nodes, i):
    """Step i as (start t, length h, the time t_ref whose input piece the step reads)."""
    t = nodes[i]
    h = nodes[i + 1] - t
    return t, h, t if config.input_at_step_start else t + h / 2


def _state_before(trace, y0, i):
    """The state at the start of step i: row i − 1 of the trace (row i holds the state after step i), y0 for i = 0."""
    return jnp.where(i == 0, y0, jax.lax.dynamic_index_in_dim(trace, jnp.maximum(i - 1, 0), 0, keepdims=False))


def _fast_steps(config: LoopConfig, params, current, trace, y0, nodes, start, stop, refractory_end):
    """Steps ``start`` … ``stop − 1`` with no event handling. Each step reads the row before and writes its own
    row of ``trace`` in place: XLA:CPU launches every fused kernel of a loop body separately, and a state both
    carried and written to the trace would cost an extra kernel and a copy per step.

    A step that starts before ``refractory_end`` starts there, as in ``_step`` (a step wholly inside the period
    has length 0 and leaves the state as it is), so refractory periods need no careful steps."""

    def body(i, trace):
        t, h, t_ref = _node(config, nodes, i)
        if config.refractory_name is not None:
            t_next = t + h
            resume = jnp.minimum(refractory_end, t_next)
            t, h = jnp.where(refractory_end > t, resume, t), jnp.where(refractory_end > t, t_next - resume, h)
        y = _state_before(trace, y0, i)
        y = config.method.step(VectorField(config.derivatives, params, current, t_ref, config.groups), t, y, h)
        return jax.lax.dynamic_update_index_in_dim(trace, y, i, 0)

    return jax.lax.fori_loop(start, stop, body, trace)


def _first_flagged(config: LoopConfig, params, trace, y0, first, start, stop):
    """The index in the block beginning at step ``first`` of the first step in ``start`` … ``stop − 1`` that needs
    the careful loop (a crossing as ``_step`` detects it, or a non-finite state), ``BLOCK`` if none; found at
    once from the rows of fast steps, not in every step."""
    size = min(BLOCK, trace.shape[0])
    base = jnp.minimum(first, trace.shape[0] - size)  # the rows looked at: the block's, shifted back at the end
    after = jax.lax.dynamic_slice_in_dim(trace, base, size, 0)
    bad = jnp.any(~jnp.isfinite(after), axis=1)
    if config.spike_index is not None:
        k, level = config.spike_index, params[config.level_name]
        crossed = after[:, k] >= level
        if config.located or config.reset is None:
            before = jnp.concatenate([_state_before(trace, y0, base)[k:k + 1], after[:-1, k]])
            crossed = crossed & (before < level)
        bad = bad | crossed
    steps = base + jnp.arange(size)
    return jnp.min(jnp.where(bad & (steps >= start) & (steps < stop), steps - first, BLOCK))


def _careful_steps(config: LoopConfig, params, current, trace, y0, status, nodes, first, stop, offset, capacity):
    """Finish the block of steps ``first`` … ``stop − 1`` from step ``first + offset`` on: each step that needs
    care (a flagged step, and every step once halted) goes through ``_step`` with events; after those, the rest
    of the block is stepped fast again up to the next flagged step. Returns the trace, the
    status and the block's ``capacity`` spike records (NaN-padded)."""

    def careful_step(loop):
        i, trace, inner = loop
        inner, _ = _step(config, params, current, inner, _node(config, nodes, i))
        return i + 1, jax.lax.dynamic_update_index_in_dim(trace, inner["y"], i, 0), inner

    def body(loop):  # a flagged step and the steps needing care after it, then fast to the next flagged step
        i, trace, inner = loop
        loop = careful_step((i, trace, dict(inner, y=_state_before(trace, y0, i))))
        i, trace, inner = jax.lax.while_loop(lambda loop: (loop[0] < stop) & loop[2]["status"]["halted"],
                                             careful_step, loop)
        trace = _fast_steps(config, params, current, trace, y0, nodes, i, stop, inner["status"]["refractory_end"])
        return first + _first_flagged(config, params, trace, y0, first, i, stop), trace, inner

    n = y0.shape[0]
    spikes = (jnp.full((capacity,), jnp.nan), jnp.full((capacity, n), jnp.nan), jnp.full((capacity, n), jnp.nan))
    inner = {"y": y0, "status": dict(status, count=jnp.asarray(0)), "spikes": spikes}
    start = jnp.where(status["halted"], first, first + offset)
    _, trace, inner = jax.lax.while_loop(lambda loop: loop[0] < stop, body, (start, trace, inner))
    return trace, inner["status"], inner["spikes"]


def run(config: LoopConfig, params, current, y0, nodes, min_interval, carried=None):
    """Integrate over ``nodes`` in blocks of ``BLOCK`` steps. A block is first stepped without event handling;
    only from the first step that needs care (a spike, a non-finite state, a halt) on is a block finished by
    ``_careful_steps``, so the common case costs little more than the bare method.

    ``carried`` continues an earlier run (the live app's chunks): its final status's ``refractory_end`` and
    ``last`` spike time, so a refractory period and the rate guard span the join.

    Returns the trace (one state per node after the first), the spike records per block (NaN-padded, with
    counts) and the final status. Compiled once per (config, shapes); parameters and input are traced."""
    nodes = jnp.asarray(nodes)
    n_steps = nodes.shape[0] - 1
    n_blocks = -(-n_steps // BLOCK)
    n = y0.shape[0]
    capacity = config.spike_capacity + MAX_EVENTS_PER_STEP
    carried = carried or {}
    status = {
        "refractory_end": jnp.asarray(carried.get("refractory_end", -jnp.inf), dtype=y0.dtype),
        "min_interval": jnp.asarray(min_interval, dtype=y0.dtype),
        "last": jnp.asarray(carried.get("last", -jnp.inf), dtype=y0.dtype),
        "count": jnp.asarray(0),
        "halted": jnp.asarray(False),
        "halt_time": jnp.asarray(jnp.nan),
        "halt_code": jnp.asarray(OK),
    }
    trace = jnp.zeros((n_steps, n), dtype=y0.dtype)  # row i: the state after step i
    spikes = (jnp.full((n_blocks, capacity), jnp.nan), jnp.full((n_blocks, capacity, n), jnp.nan),
              jnp.full((n_blocks, capacity, n), jnp.nan))
    counts = jnp.zeros((n_blocks,), dtype=status["count"].dtype)

    def one_block(index, carry):
        status, trace, spikes, counts = carry
        first = index * BLOCK
        stop = jnp.minimum(first + BLOCK, n_steps)
        halted = status["halted"]  # then the fast steps would be wasted
        trace = _fast_steps(config, params, current, trace, y0, nodes, jnp.where(halted, stop, first), stop,
                            status["refractory_end"])
        offset = _first_flagged(config, params, trace, y0, first, first, stop)
        careful = halted | (offset < BLOCK)

        def redo(status, trace, spikes, counts):  # the fast steps before ``offset`` need no redoing
            trace, status, block = _careful_steps(config, params, current, trace, y0, status, nodes, first, stop,
                                                  offset, capacity)
            spikes = tuple(buffer.at[index].set(part) for buffer, part in zip(spikes, block))
            return status, trace, spikes, counts.at[index].set(status["count"])

        def accept(*carry):
            return carry

        return jax.lax.cond(careful, redo, accept, status, trace, spikes, counts)

    status, trace, spikes, counts = jax.lax.fori_loop(0, n_blocks, one_block, (status, trace, spikes, counts))
    return trace, spikes, counts, status

"""The one time loop for every fixed-step method: blocks of steps run without events, spike events inside.

Grid: uniform steps of ``dt`` from t0, with every discontinuity of the input inserted as a node, so no step
straddles a jump; each step evaluates the input on its own piece (its midpoint is the ``t_ref``). A method that
reads the input at the step's start (``input_at_step_start``: euler-sequential, as figure1.m) gets no such nodes.

Events (``events="located"``): when a step carries the spike state across its level, the crossing time is found
on the step's dense interpolant (bisection to machine precision; spike times exact to the interpolant's order:
linear 1, cubic Hermite 3), the spike is recorded there with the state just before and after the reset, and the
step is finished from the reset state, possibly with more spikes (up to ``MAX_EVENTS_PER_STEP``). With
``events="step"`` the reset is applied after the step, as the seed study (and figure1.m) did. All of it is
:func:`.events.step_events` (the same function the population loop vmaps).

Forced resets (``forced``, for fitting: Jolivet, Lewis & Gerstner 2004): the reset map applied at given nodes
(recorded spike times) unless the model spiked itself within a window before, so the run between two recorded
spikes starts from the reset state whether or not the model reached its threshold (a forced reset is not a
recorded spike; it opens the refractory period).

Guards: a state that turns non-finite or spikes faster than ``max_rate`` (a Zeno cascade of resets) halts the
run; what was computed up to there is kept and the status says when and why (:mod:`.events`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .events import (BISECTION_STEPS, MAX_EVENTS_PER_STEP, NON_FINITE, OK, RATE_EXCEEDED,  # noqa: F401
                     EventRule, crossing, guard_finite, halt, method_interpolant, new_status, no_events,
                     reset_state, step_events)
from .methods import VectorField

BLOCK = 256


class StepGrid:
    """The step nodes t0, t0 + dt, … , t_end with every break in (t0, t_end) inserted (nodes closer than 1e-9·dt
    to a break or to t_end merged, the nearest node moved exactly onto each break), any slice of them without
    building the rest: the uniform nodes t0 + j·dt except within two steps of an inserted point, where the
    sort, de-duplication and snapping are done once on those few nodes."""

    def __init__(self, t0: float, t_end: float, dt: float, breaks=()):
        self.t0, self.dt = t0, dt
        count = int(math.floor((t_end - t0) / dt + 1e-9))
        breaks = np.asarray([b for b in breaks if t0 < b < t_end], dtype=float)
        inserted = np.concatenate([breaks, [t_end]])
        below = np.floor((inserted - t0) / dt).astype(np.int64)  # the uniform node at or just below each point
        self.near = np.unique(np.clip((below[:, None] + np.arange(-2, 4)).ravel(), 0, count))
        values = np.concatenate([t0 + dt * self.near, inserted])
        # a uniform node j sorts before an inserted point with ``below`` = c exactly when j < c + 0.5
        keys = np.concatenate([self.near.astype(float), below + 0.5])
        order = np.argsort(values, kind="stable")
        values, keys = values[order], keys[order]
        keep = np.concatenate([[True], np.diff(values) > 1e-9 * dt])
        values, keys = values[keep], keys[keep]
        values[-1] = t_end
        for b in breaks:  # snap the nearest node exactly onto each break
            values[np.argmin(np.abs(values - b))] = b
        self.values = values
        # where these nodes sit in the whole grid: after every uniform node outside ``near`` that sorts before them
        self.index = np.arange(len(values)) + np.ceil(keys).astype(np.int64) - np.searchsorted(self.near, keys)
        self.size = len(values) + count + 1 - len(self.near)

    def __len__(self) -> int:
        return self.size

    def nodes(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Nodes ``start`` … ``stop − 1`` (default: all) of the whole grid: the irregular ones in place, and
        between them runs of consecutive uniform nodes (the m-th uniform node outside ``near``, from 0, is
        j = m + #{near < j})."""
        stop = self.size if stop is None else stop
        nodes = np.empty(stop - start)
        first, last = np.searchsorted(self.index, [start, stop])
        nodes[self.index[first:last] - start] = self.values[first:last]
        shifted_near = self.near - np.arange(len(self.near))
        run_starts = np.concatenate([[start], self.index[first:last] + 1])
        run_stops = np.concatenate([self.index[first:last], [stop]])
        for irregular_before, (a, b) in enumerate(zip(run_starts, run_stops), start=first):
            if b > a:
                m = a - irregular_before
                j = m + np.searchsorted(shifted_near, m, side="right")
                nodes[a - start:b - start] = self.t0 + self.dt * np.arange(j, j + b - a)
        return nodes


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
    # the events of a step in a loop of MAX_EVENTS_PER_STEP conditional passes instead of a while loop, so that
    # reverse-mode derivatives (jax.grad) can go through it (``run_every_step``); same results, more work
    bounded_events: bool = False

    @classmethod
    def for_model(cls, model, method, events: str = "located", spike_capacity: int = 0,
                  bounded_events: bool = False) -> "LoopConfig":
        """The static choices of the loop for ``model`` (its spike rule and split groups) and the one-step
        ``method`` (a scheme with ``step``), with ``events`` "located" or "step"."""
        rule = model.spike
        return cls(
            method=method, derivatives=model.derivatives,
            groups=tuple(tuple(model.state_index(s) for s in group) for group in model.split) if model.split else None,
            spike_index=model.state_index(rule.state) if rule else None, level_name=rule.level if rule else None,
            reset=rule.reset if rule else None, refractory_name=rule.refractory if rule else None,
            located=events == "located", input_at_step_start=getattr(method, "input_at_step_start", False),
            spike_capacity=spike_capacity, bounded_events=bounded_events)

    @property
    def events(self) -> EventRule:
        """The event choices of this loop (:mod:`.events`)."""
        return EventRule(self.spike_index, self.level_name, self.reset, self.refractory_name, self.located)


def method_events(config: LoopConfig, params, field, status, start, y, y_next, span, t_next):
    """Every spike of a step that crossed (:func:`.events.step_events` with this method's interpolant and
    step): the one in-step event function of the single-neuron loop and of the population loop (vmapped)."""
    method = config.method
    return step_events(config.events, params, status, start, y, y_next, span, t_next,
                       lambda s, y0, y1, h: method_interpolant(method, field, s, y0, y1, h),
                       lambda s, y0, h: method.step(field, s, y0, h),
                       bounded=config.bounded_events)


def forced_reset(config: LoopConfig, params, status, y, t_next, now, window):
    """The reset map at ``t_next`` when ``now`` (a forced-reset node) and the model has not spiked within
    ``window`` ms before it (then its own spike stands for the recorded one); opens the refractory period."""
    apply = now & (t_next - status["last"] > window) & ~status["halted"]
    y = jnp.where(apply, reset_state(config.events, params, y), y)
    if config.refractory_name is not None:
        end = jnp.where(apply, t_next + params[config.refractory_name], status["refractory_end"])
        status = dict(status, refractory_end=end)
    return y, status


def _step(config: LoopConfig, params, current, carry, node, forced=None):
    """One step from ``node`` = (t, h, t_ref) with its events; ``forced``: None or (this step ends at a forced
    reset, the window)."""
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
        crossed = crossing(config.events, level, y[k], y_next[k], span)

        def handle(status):
            return method_events(config, params, field, status, start, y, y_next, span, t_next)

        if config.bounded_events:  # reverse mode: keep only the inputs of a step's events, recompute the rest
            handle = jax.checkpoint(handle)

        def quiet(status):
            return (y_next, status, *no_events(y))

        y_new, status, block, count = jax.lax.cond(crossed, handle, quiet, status)
        spikes = carry["spikes"]
        index = jnp.minimum(status["count"], spikes[0].shape[0] - MAX_EVENTS_PER_STEP)
        status = halt(status, status["count"] + count > spikes[0].shape[0] - MAX_EVENTS_PER_STEP, t_next,
                      RATE_EXCEEDED)
        spikes = tuple(jax.lax.dynamic_update_slice_in_dim(buffer, part, index, 0)
                       for buffer, part in zip(spikes, block))
        status = dict(status, count=status["count"] + count)
        carry = dict(carry, spikes=spikes)
    else:
        y_new = y_next

    if forced is not None:
        y_new, status = forced_reset(config, params, status, y_new, t_next, *forced)
    status, y_new = guard_finite(status, y_new, y, t)
    carry = dict(carry, y=y_new, status=status)
    return carry, y_new


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
    carried and written to the trace would cost an extra kernel and a copy per step
    (docs/benchmarks.md#single-neuron-and-cli).

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


def _first_flagged(config: LoopConfig, params, trace, y0, first, start, stop, forced=None):
    """The index in the block beginning at step ``first`` of the first step in ``start`` … ``stop − 1`` that needs
    the careful loop (a crossing as ``_step`` detects it, a non-finite state, a forced reset), ``BLOCK`` if none;
    found at once from the rows of fast steps, not in every step."""
    size = min(BLOCK, trace.shape[0])
    base = jnp.minimum(first, trace.shape[0] - size)  # the rows looked at: the block's, shifted back at the end
    after = jax.lax.dynamic_slice_in_dim(trace, base, size, 0)
    bad = jnp.any(~jnp.isfinite(after), axis=1)
    if config.spike_index is not None:
        k, level = config.spike_index, params[config.level_name]
        before = jnp.concatenate([_state_before(trace, y0, base)[k:k + 1], after[:-1, k]])
        bad = bad | crossing(config.events, level, before, after[:, k])
    steps = base + jnp.arange(size)
    if forced is not None:
        bad = bad | forced[0][steps]
    return jnp.min(jnp.where(bad & (steps >= start) & (steps < stop), steps - first, BLOCK))


def _careful_steps(config: LoopConfig, params, current, trace, y0, status, nodes, first, stop, offset, capacity,
                   forced=None):
    """Finish the block of steps ``first`` … ``stop − 1`` from step ``first + offset`` on: each step that needs
    care (a flagged step, and every step once halted) goes through ``_step`` with events; after those, the rest
    of the block is stepped fast again up to the next flagged step. Returns the trace, the
    status and the block's ``capacity`` spike records (NaN-padded)."""

    def careful_step(loop):
        i, trace, inner = loop
        inner, _ = _step(config, params, current, inner, _node(config, nodes, i), _forced_at(forced, i))
        return i + 1, jax.lax.dynamic_update_index_in_dim(trace, inner["y"], i, 0), inner

    def body(loop):  # a flagged step and the steps needing care after it, then fast to the next flagged step
        i, trace, inner = loop
        loop = careful_step((i, trace, dict(inner, y=_state_before(trace, y0, i))))
        i, trace, inner = jax.lax.while_loop(lambda loop: (loop[0] < stop) & loop[2]["status"]["halted"],
                                             careful_step, loop)
        trace = _fast_steps(config, params, current, trace, y0, nodes, i, stop, inner["status"]["refractory_end"])
        return first + _first_flagged(config, params, trace, y0, first, i, stop, forced), trace, inner

    n = y0.shape[0]
    spikes = (jnp.full((capacity,), jnp.nan), jnp.full((capacity, n), jnp.nan), jnp.full((capacity, n), jnp.nan))
    inner = {"y": y0, "status": dict(status, count=jnp.asarray(0)), "spikes": spikes}
    start = jnp.where(status["halted"], first, first + offset)
    _, trace, inner = jax.lax.while_loop(lambda loop: loop[0] < stop, body, (start, trace, inner))
    return trace, inner["status"], inner["spikes"]


def _forced_at(forced, i):
    return None if forced is None else (forced[0][i], forced[1])


def run(config: LoopConfig, params, current, y0, nodes, min_interval, carried=None, forced=None, steps=None):
    """Integrate over ``nodes`` in blocks of ``BLOCK`` steps. A block is first stepped without event handling;
    only from the first step that needs care (a spike, a non-finite state, a halt) on is a block finished by
    ``_careful_steps``, so the common case costs little more than the bare method
    (docs/benchmarks.md#single-neuron-and-cli).

    ``carried`` continues an earlier run (the live app's chunks): its final status's ``refractory_end`` and
    ``last`` spike time, so a refractory period and the rate guard span the join. ``forced``: None, or (a boolean
    per step: the step ends at a forced reset, the window in ms; see the module docstring). ``steps``: None (every
    step of ``nodes``), or a traced count: only the first ``steps`` steps run, in ceil(steps / BLOCK) blocks, so
    one compiled size serves every shorter run (the live app's frames); the later rows of the trace stay 0.

    Returns the trace (one state per node after the first), the spike records per block (NaN-padded, with
    counts) and the final status. Compiled once per (config, shapes); parameters and input are traced."""
    nodes = jnp.asarray(nodes)
    n_steps = nodes.shape[0] - 1
    n_blocks = -(-n_steps // BLOCK)
    limit = n_steps if steps is None else jnp.minimum(steps, n_steps)
    n = y0.shape[0]
    capacity = config.spike_capacity + MAX_EVENTS_PER_STEP
    carried = carried or {}
    status = dict(new_status(min_interval, carried.get("refractory_end", -jnp.inf), carried.get("last", -jnp.inf),
                             dtype=y0.dtype), count=jnp.asarray(0))
    trace = jnp.zeros((n_steps, n), dtype=y0.dtype)  # row i: the state after step i
    spikes = (jnp.full((n_blocks, capacity), jnp.nan), jnp.full((n_blocks, capacity, n), jnp.nan),
              jnp.full((n_blocks, capacity, n), jnp.nan))
    counts = jnp.zeros((n_blocks,), dtype=status["count"].dtype)

    def one_block(index, carry):
        status, trace, spikes, counts = carry
        first = index * BLOCK
        stop = jnp.minimum(first + BLOCK, limit)
        halted = status["halted"]  # then the fast steps would be wasted
        trace = _fast_steps(config, params, current, trace, y0, nodes, jnp.where(halted, stop, first), stop,
                            status["refractory_end"])
        offset = _first_flagged(config, params, trace, y0, first, first, stop, forced)
        careful = halted | (offset < BLOCK)

        def redo(status, trace, spikes, counts):  # the fast steps before ``offset`` need no redoing
            trace, status, block = _careful_steps(config, params, current, trace, y0, status, nodes, first, stop,
                                                  offset, capacity, forced)
            spikes = tuple(buffer.at[index].set(part) for buffer, part in zip(spikes, block))
            return status, trace, spikes, counts.at[index].set(status["count"])

        def accept(*carry):
            return carry

        return jax.lax.cond(careful, redo, accept, status, trace, spikes, counts)

    blocks = n_blocks if steps is None else (limit + BLOCK - 1) // BLOCK
    status, trace, spikes, counts = jax.lax.fori_loop(0, blocks, one_block, (status, trace, spikes, counts))
    return trace, spikes, counts, status


def run_every_step(config: LoopConfig, params, current, y0, nodes, min_interval, forced=None):
    """Every step through the careful step (events checked in each), as one ``lax.scan``: the same results as
    :func:`run` (which steps fast and redoes only flagged steps), slower, but with ``config.bounded_events`` and a
    method without inner while loops (not backward-euler's Newton iteration) reverse-mode differentiable. Each
    step is under ``jax.checkpoint`` (reverse mode keeps only the carry per step and recomputes the step).
    Timings: docs/benchmarks.md#derivatives-neurospikedifferentiable

    Returns the trace (one state per node after the first), the spike records (``config.spike_capacity`` +
    ``MAX_EVENTS_PER_STEP`` long, NaN-padded; a run that fills them halts with RATE_EXCEEDED) with their count,
    and the final status."""
    nodes = jnp.asarray(nodes)
    n = y0.shape[0]
    capacity = config.spike_capacity + MAX_EVENTS_PER_STEP
    status = dict(new_status(min_interval, dtype=y0.dtype), count=jnp.asarray(0))
    spikes = (jnp.full((capacity,), jnp.nan), jnp.full((capacity, n), jnp.nan), jnp.full((capacity, n), jnp.nan))
    carry = {"y": y0, "status": status, "spikes": spikes}
    step = jax.checkpoint(lambda carry, i: _step(config, params, current, carry, _node(config, nodes, i),
                                                 _forced_at(forced, i)))
    carry, trace = jax.lax.scan(step, carry, jnp.arange(nodes.shape[0] - 1))
    return trace, carry["spikes"], carry["status"]["count"], carry["status"]

"""The fixed-step loop for a population: N independent neurons, each parameter a scalar or an array of length N.

State layout is (n_states, N) — one contiguous row per state — and the one-neuron method step is
``jax.vmap``-ed over the neuron axis, so every model and method of the single-neuron loop works unchanged.

Events: in each step the neurons that crossed their level are gathered (``jnp.nonzero`` into batches of
``EVENT_BATCH``), their crossing is located on the step interpolant as in the single-neuron loop
(``fixed_step.locate``), the reset applied there and the step finished from the reset state; the results are
scattered back. So the cost of exact events grows with the number of spikes, not with N. ``events="step"`` resets
after the step. A neuron may fire once per step here; a neuron that crosses again in the same step, fires
faster than ``max_rate`` or turns non-finite is frozen from that time on (its states are NaN afterwards) and the
run reports it; the other neurons go on.

Recording: the state at the node indices ``record_index`` only (``save_at`` times are inserted as nodes, so
they are exact), spike counts for every neuron, and spike (time, neuron) pairs up to a buffer capacity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .fixed_step import NON_FINITE, OK, RATE_EXCEEDED, LoopConfig, locate
from .methods import VectorField

EVENT_BATCH = 64


def _vmapped(function, param_axes, current_axes, *axes, out_axes=0):
    return jax.vmap(function, in_axes=(param_axes, current_axes, *axes), out_axes=out_axes)


def run(config: LoopConfig, params, current, y0, nodes, record_index, min_interval, spike_capacity: int):
    """Integrate a population ``y0`` of shape (n_states, N) over ``nodes``.

    Returns the states at ``record_index`` (shape (len(record_index), n_states, N)), the spike count per neuron,
    the recorded spikes (times, neuron indices; the first ``n_recorded`` entries are valid), ``n_recorded``, and
    the per-neuron halt code and time (``OK`` / ``RATE_EXCEEDED`` / ``NON_FINITE``)."""
    n, size = y0.shape
    k = config.spike_index
    param_axes = {name: (0 if jnp.ndim(value) else None) for name, value in params.items()}
    current_axes = current.population_axes()

    def field(p, i, t_ref):
        return VectorField(config.derivatives, p, i, t_ref, config.groups)

    def advance(p, i, start, y, span, t_ref):
        return config.method.step(field(p, i, t_ref), start, y, span)

    def reset(p, y):
        return jnp.stack(config.reset(tuple(y[i] for i in range(n)), p))

    def event(p, i, start, y, y1, span, t_ref, t_next):
        """One located spike in a step: its time, the state at the end of the step, the refractory end."""
        f = field(p, i, t_ref)
        theta, y_before = locate(config, f, p[config.level_name], start, y, y1, span)
        t_spike = start + theta * span
        if config.reset is None:
            return t_spike, y1, t_spike
        y_after = reset(p, y_before)
        resume = t_spike
        if config.refractory_name is not None:
            resume = jnp.minimum(t_spike + p[config.refractory_name], t_next)
        return t_spike, config.method.step(f, resume, y_after, t_next - resume), t_spike

    advance_all = _vmapped(advance, param_axes, current_axes, 0, 1, 0, None, out_axes=1)
    reset_all = jax.vmap(reset, in_axes=(param_axes, 1), out_axes=1)
    event_some = _vmapped(event, param_axes, current_axes, 0, 1, 1, 0, None, None, out_axes=(0, 1, 0))

    def gather(tree, axes, index):
        """The per-neuron leaves of ``tree`` (those with a mapped axis) at ``index``."""
        return jax.tree_util.tree_map(lambda axis, leaf: leaf if axis is None else leaf[index], axes, tree,
                                      is_leaf=lambda x: x is None)

    def located_events(params, start, y, y1, span, t_ref, t_next, crossed):
        """Handle the crossed neurons in batches; returns spike times (NaN elsewhere) and the new states."""

        def more(loop):
            return jnp.any(loop[0])

        def batch(loop):
            pending, t_spike, y_new = loop
            index = jnp.nonzero(pending, size=EVENT_BATCH, fill_value=size)[0]
            safe = jnp.minimum(index, size - 1)
            times, y_end, _ = event_some(gather(params, param_axes, safe), gather(current, current_axes, safe),
                                         start[safe], y[:, safe], y1[:, safe], span[safe],
                                         t_ref, t_next)
            t_spike = t_spike.at[index].set(times, mode="drop")
            y_new = y_new.at[:, index].set(y_end, mode="drop")
            return pending.at[index].set(False, mode="drop"), t_spike, y_new

        _, t_spike, y_new = jax.lax.while_loop(more, batch, (crossed, jnp.full((size,), jnp.nan), y1))
        return t_spike, y_new

    def record_spikes(buffer, crossed, t_spike):
        """Append the (time, neuron) pairs of this step to the buffer (dropped once it is full)."""

        def more(loop):
            return jnp.any(loop[0])

        def batch(loop):
            pending, (times, neurons, count) = loop
            index = jnp.nonzero(pending, size=EVENT_BATCH, fill_value=size)[0]
            valid = index < size
            position = jnp.where(valid, count + jnp.cumsum(valid) - 1, spike_capacity)
            times = times.at[position].set(t_spike[jnp.minimum(index, size - 1)], mode="drop")
            neurons = neurons.at[position].set(index.astype(neurons.dtype), mode="drop")
            return pending.at[index].set(False, mode="drop"), (times, neurons, count + jnp.sum(valid))

        if spike_capacity == 0:
            return buffer
        return jax.lax.cond(jnp.any(crossed), lambda b: jax.lax.while_loop(more, batch, (crossed, b))[1],
                            lambda b: b, buffer)

    def step(i, carry):
        y, refractory_end, last, counts, halt_code, halt_time, buffer = carry
        t, t_next = nodes[i], nodes[i + 1]
        t_ref = t if config.input_at_step_start else 0.5 * (t + t_next)
        live = halt_code == OK
        start = jnp.full((size,), t)
        if config.refractory_name is not None:
            start = jnp.minimum(jnp.maximum(start, refractory_end), t_next)
        span = jnp.where(live, t_next - start, 0.0)
        # XLA:CPU does not fuse one producer into several outputs: without the barrier every array that
        # depends on the new state (states, counts, spike times, guards) would recompute the method step
        y1 = advance_all(params, current, start, y, span, t_ref)
        y_new, too_fast = y1, jnp.zeros((size,), bool)
        if k is not None:
            level = params[config.level_name]
            rising = (y[k] < level) & (y1[k] >= level) & (span > 0)
            if config.located:
                crossed = rising
                t_spike, y_new = jax.lax.cond(
                    jnp.any(crossed),
                    lambda: located_events(params, start, y, y1, span, t_ref, t_next, crossed),
                    lambda: (jnp.full((size,), jnp.nan), y1))
                if config.reset is not None:  # a second crossing within the same step
                    too_fast = crossed & (y_new[k] >= level)
            else:
                crossed = rising if config.reset is None else (y1[k] >= level) & (span > 0)
                t_spike = jnp.full((size,), t_next)
                if config.reset is not None:
                    y_new = jnp.where(crossed, reset_all(params, y1), y1)
            if config.refractory_name is not None and config.reset is not None:
                refractory_end = jnp.where(crossed, t_spike + params[config.refractory_name], refractory_end)
            too_fast = too_fast | (crossed & (t_spike - last < min_interval))
            last = jnp.where(crossed, t_spike, last)
            counts = counts + crossed
            buffer = record_spikes(buffer, crossed, t_spike)
        finite = jnp.all(jnp.isfinite(y_new), axis=0)
        fresh = live & (too_fast | ~finite)
        halt_code = jnp.where(live & ~finite, NON_FINITE, jnp.where(fresh, RATE_EXCEEDED, halt_code))
        halt_time = jnp.where(fresh, jnp.where(finite, t_spike if k is not None else t_next, t), halt_time)
        y = jnp.where(finite, y_new, y)
        return y, refractory_end, last, counts, halt_code, halt_time, buffer

    def segment(carry, bounds):
        carry = jax.lax.fori_loop(bounds[0], bounds[1], step, carry)
        return carry, carry[0]

    buffer = (jnp.full((spike_capacity,), jnp.nan), jnp.zeros((spike_capacity,), jnp.int32), jnp.asarray(0))
    carry = (y0, jnp.full((size,), -jnp.inf), jnp.full((size,), -jnp.inf), jnp.zeros((size,), jnp.int32),
             jnp.full((size,), OK), jnp.full((size,), jnp.nan), buffer)
    bounds = jnp.stack([record_index[:-1], record_index[1:]], axis=1)
    carry, saved = jax.lax.scan(segment, carry, bounds)
    _, _, _, counts, halt_code, halt_time, (times, neurons, n_recorded) = carry
    saved = jnp.concatenate([y0[None], saved])
    return saved, counts, (times, neurons, n_recorded), halt_code, halt_time

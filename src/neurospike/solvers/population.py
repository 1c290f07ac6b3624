"""The fixed-step loop for a population: N independent neurons, each parameter a scalar or an array of length N.

Scheme: each neuron is advanced by the single-neuron method's step (the same scheme and order as alone) on the
same grid, and its events go through the single-neuron loop's own event function (below).

Layout: the population is cut into blocks of ``NEURON_BLOCK`` neurons, and each block runs all steps; with
several XLA devices (e.g. ``XLA_FLAGS=--xla_force_host_platform_device_count=2``) the blocks are shared out over
them with ``jax.shard_map``, one thread each. Within a block a state is a row over neurons: an explicit
Runge–Kutta method on one or two states steps the rows directly (``Rows``, the model's derivatives
``jax.vmap``-ed over neurons); every other method's one-neuron step is ``jax.vmap``-ed as it is. The carried state
is the end state of the last step packed into one array (``pack``), before its events: spike counts, guards and
resets are settled at the start of the next step, from its input. Every model and method of the single-neuron
loop works unchanged. Why (measured): docs/benchmarks.md#the-library-path-neurospikesimulate-on-100-000-neurons

Events: in each step the neurons that crossed their level (``events.crossing``, as in the single-neuron loop) are
gathered (``jnp.nonzero`` into batches of ``EVENT_BATCH``) and each goes through the single-neuron loop's own
in-step event function (``fixed_step.method_events`` = ``events.step_events`` with the method's interpolant and
step), ``jax.vmap``-ed over the batch with each neuron's own status (refractory end, last spike time): the
crossing located on the step interpolant, the reset, the refractory hold, the rest of the step from the reset
state with further spikes (up to ``MAX_EVENTS_PER_STEP`` per step, every one counted and recorded), the rate
guard. The results are scattered back, so the cost of exact events grows with the number of spikes, not with N,
and a neuron of a population does exactly what it does alone. ``events="step"`` resets after the step (the same
crossing test, ``events.spike_status`` for the refractory period and the rate guard, elementwise over the
block). A neuron that fires faster than ``max_rate`` (or more than ``MAX_EVENTS_PER_STEP`` times in a step) is
stopped at that time, as the single-neuron loop halts (its states are NaN afterwards) and the run reports it;
the other neurons go on. A neuron whose state turns non-finite is reported at the end (``simulate`` re-runs it
alone for the message). The padding of the last block is stopped from the start and never recorded.

Recording: the state at the node indices ``record_index`` only (``save_at`` times are inserted as nodes, so
they are exact), spike counts for every neuron, and spike (time, neuron) pairs up to a buffer capacity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .events import MAX_EVENTS_PER_STEP, crossing, new_status, spike_status
from .fixed_step import LoopConfig, method_events
from .methods import ExplicitRungeKutta, VectorField

EVENT_BATCH = 64  # crossed neurons handled together in one step
NEURON_BLOCK = 1024  # neurons that run all steps together, so a block stays in cache (docs/benchmarks.md)


@jax.tree_util.register_pytree_node_class
class Rows:
    """The states of a block as a tuple of rows (one array over neurons per state), with the vector arithmetic
    an explicit Runge–Kutta step uses (sums and products with scalars or per-neuron rows). Stages in this
    layout are never stacked into one (n_states, N) array, so XLA can fuse a whole step into one loop."""

    def __init__(self, rows):
        self.rows = tuple(rows)

    def tree_flatten(self):
        return self.rows, None

    @classmethod
    def tree_unflatten(cls, _, rows):
        return cls(rows)

    def __add__(self, other):
        if isinstance(other, Rows):
            return Rows(a + b for a, b in zip(self.rows, other.rows))
        return Rows(a + other for a in self.rows)

    __radd__ = __add__

    def __mul__(self, factor):
        return Rows(factor * a for a in self.rows)

    __rmul__ = __mul__


def pack(rows):
    """The state rows as ONE array, so that one loop computes the step: a complex array v + i·u for two states
    (both from one evaluation of the step), the rows stacked for one or more than two."""
    return jax.lax.complex(*rows) if len(rows) == 2 else jnp.stack(rows)


def unpack(packed):
    return (packed.real, packed.imag) if jnp.iscomplexobj(packed) else tuple(packed)


def _vmapped(function, param_axes, current_axes, *axes, out_axes=0):
    return jax.vmap(function, in_axes=(param_axes, current_axes, *axes), out_axes=out_axes)


def gather_neurons(tree, axes, index):
    """The per-neuron leaves of ``tree`` (those with a mapped axis in ``axes``) at ``index``."""
    return jax.tree_util.tree_map(lambda axis, leaf: leaf if axis is None else jnp.take(leaf, index, axis=axis),
                                  axes, tree, is_leaf=lambda x: x is None)


def append_spikes(buffer, times, neurons, valid, capacity):
    """Append the valid (time, neuron) pairs to ``buffer`` = (times, neurons, how many were offered) of
    ``capacity`` entries (dropped once it is full; the count goes on)."""
    if capacity == 0:
        return buffer
    recorded, times_out, neurons_out = buffer[2], buffer[0], buffer[1]
    position = jnp.where(valid, recorded + jnp.cumsum(valid) - 1, capacity)
    times_out = times_out.at[position].set(times, mode="drop")
    neurons_out = neurons_out.at[position].set(neurons.astype(neurons_out.dtype), mode="drop")
    return times_out, neurons_out, recorded + jnp.sum(valid)


def run(config: LoopConfig, params, current, y0, nodes, record_index, min_interval, spike_capacity: int,
        rate_guard: bool):
    """Integrate a population ``y0`` of shape (n_states, N) over ``nodes``, in blocks of ``NEURON_BLOCK``
    neurons that each run every step (so a block's state stays in cache).

    Returns the states at ``record_index`` (shape (len(record_index), n_states, N)), the spike count per neuron,
    the recorded spikes per block (times, neuron indices, how many are valid) and the time each neuron was
    stopped by the rate guard (NaN if never). ``rate_guard`` (static) keeps each neuron's last spike time to
    check the minimum interval across steps (the caller may leave it out for step events when a step is longer
    than the interval); within a step located events always check it."""
    n, size = y0.shape
    block = min(NEURON_BLOCK, size)
    n_blocks = -(-size // block)
    n_devices = min(jax.device_count(), n_blocks)
    n_blocks = -(-n_blocks // n_devices) * n_devices  # whole blocks per device
    pad = n_blocks * block - size
    param_axes = {name: (0 if jnp.ndim(value) else None) for name, value in params.items()}
    current_axes = current.population_axes()

    def blocked(leaf, axis):
        """Pad the neuron axis with copies of neuron 0 and bring the block index to the front."""
        if axis is None:
            return leaf
        leaf = jnp.moveaxis(leaf, axis, -1)
        leaf = jnp.concatenate([leaf, jnp.repeat(leaf[..., :1], pad, axis=-1)], axis=-1)
        leaf = leaf.reshape(*leaf.shape[:-1], n_blocks, block)
        return jnp.moveaxis(jnp.moveaxis(leaf, -2, 0), -1, axis + 1)

    def split(tree, axes):
        return jax.tree_util.tree_map(lambda axis, leaf: blocked(leaf, axis), axes, tree,
                                      is_leaf=lambda x: x is None)

    blocked_params = split(params, param_axes)
    blocked_current = split(current, current_axes)
    mapped_params = {k: v for k, v in blocked_params.items() if param_axes[k] is not None}
    shared_params = {k: v for k, v in blocked_params.items() if param_axes[k] is None}
    current_leaves, current_tree = jax.tree_util.tree_flatten(blocked_current)
    axis_leaves = jax.tree_util.tree_flatten(current_axes, is_leaf=lambda x: x is None)[0]
    mapped_current = [leaf for leaf, axis in zip(current_leaves, axis_leaves) if axis is not None]
    unmapped_current = [leaf for leaf, axis in zip(current_leaves, axis_leaves) if axis is None]

    def blocks_in_turn(index, block_params, block_current, y_blocks, shared_params, unmapped_current, nodes,
                       record_index, min_interval):
        def one_block(xs):
            index, block_params, block_current, y_block = xs
            p = {**shared_params, **block_params}
            mapped, unmapped = iter(block_current), iter(unmapped_current)
            cur = jax.tree_util.tree_unflatten(
                current_tree, [next(unmapped if axis is None else mapped) for axis in axis_leaves])
            saved, counts, buffer, stopped = _run_block(config, p, param_axes, cur, current_axes, y_block, nodes,
                                                        record_index, min_interval, spike_capacity, rate_guard,
                                                        size - index * block)
            times, neurons, recorded = buffer
            return saved, counts, (times, neurons + index * block, recorded), stopped

        return jax.lax.map(one_block, (index, block_params, block_current, y_blocks))

    arguments = (jnp.arange(n_blocks), mapped_params, mapped_current, blocked(y0, 1), shared_params,
                 unmapped_current, nodes, record_index, min_interval)
    if n_devices > 1:  # each device runs its share of the blocks (one thread each)
        mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:n_devices]), ("blocks",))
        blocks, shared = jax.sharding.PartitionSpec("blocks"), jax.sharding.PartitionSpec()
        blocks_in_turn = jax.shard_map(blocks_in_turn, mesh=mesh, in_specs=(blocks,) * 4 + (shared,) * 5,
                                       out_specs=blocks, check_vma=False)
    outputs = blocks_in_turn(*arguments)
    saved, counts, buffer, stopped = outputs
    saved = jnp.moveaxis(saved, 0, -2).reshape(*saved.shape[1:3], n_blocks * block)[..., :size]
    return saved, counts.reshape(-1)[:size], buffer, stopped.reshape(-1)[:size]


def _run_block(config, params, param_axes, current, current_axes, y0, nodes, record_index, min_interval,
               spike_capacity, rate_guard, real):
    """One block of neurons over every step; its first ``real`` neurons are the population's, the others padding
    (stopped from the start where a neuron can be stopped, and never recorded)."""
    n, size = y0.shape
    k = config.spike_index
    def field(p, i, t_ref):
        return VectorField(config.derivatives, p, i, t_ref, config.groups)

    def advance(p, i, start, y, span, t_ref):
        return config.method.step(field(p, i, t_ref), start, y, span)

    def one_neuron_events(p, i, status, start, y, y1, span, t_ref, t_next):
        """Every spike of one neuron's step: the single-neuron loop's own in-step event function."""
        return method_events(config, p, VectorField(config.derivatives, p, i, t_ref, config.groups), status,
                             start, y, y1, span, t_next)

    # the step's start and length are per neuron only with refractory periods (or stopped neurons)
    per_neuron = 0 if config.refractory_name is not None else None
    advance_stacked = _vmapped(advance, param_axes, current_axes, per_neuron, 1, per_neuron, None, out_axes=1)

    def advance_all(p, i, start, y, span, t_ref):
        return tuple(advance_stacked(p, i, start, jnp.stack(y), span, t_ref))

    # Explicit Runge–Kutta on one or two states steps the rows directly, so that the whole step is one loop
    # (with its single packed output); with more states the vmapped step is faster (docs/benchmarks.md)
    if n <= 2 and isinstance(config.method, ExplicitRungeKutta):
        slopes = jax.vmap(lambda p, i, t, t_ref, y: config.derivatives(t, y, p, i(t, t_ref, jnp), jnp),
                          in_axes=(param_axes, current_axes, per_neuron, None, 0))

        def advance_all(p, i, start, y, span, t_ref):
            """The method's step on rows: the model's derivatives vmapped over neurons in each stage."""
            rows = config.method.step(lambda t, z: Rows(slopes(p, i, t, t_ref, z.rows)), start,
                                      Rows(y), span)
            return rows.rows

    reset_all = jax.vmap(lambda p, y: tuple(config.reset(y, p)), in_axes=(param_axes, 0))
    events_some = _vmapped(one_neuron_events, param_axes, current_axes, 0, 0, 1, 1, 0, None, None,
                           out_axes=(1, 0, 0, 0))

    gather = gather_neurons

    def append(buffer, times, neurons, valid):
        return append_spikes(buffer, times, neurons, valid, spike_capacity)

    def located_events(carry, start, y, y1, span, t_ref, t_next, crossed):
        """The crossed neurons in batches of ``EVENT_BATCH``, each through the one-neuron event function with its
        own status (several spikes per step each, up to ``MAX_EVENTS_PER_STEP``). ``carry``: the per-neuron
        status arrays, counts and spike buffer; returns the states to go on from (n_states, N) and ``carry``
        updated."""
        status_names = [name for name in ("refractory_end", "last") if name in carry]

        def more(loop):
            return jnp.any(loop[0])

        def batch(loop):
            pending, y_new, carry = loop
            index = jnp.nonzero(pending, size=EVENT_BATCH, fill_value=size)[0]
            valid = index < jnp.minimum(real, size)  # a neuron, not the fill value or the padding
            safe = jnp.minimum(index, size - 1)
            status = jax.vmap(lambda _: new_status(min_interval, dtype=y.dtype))(index)
            status.update({name: carry[name][safe] for name in status_names})
            y_end, status, records, count = events_some(
                gather(params, param_axes, safe), gather(current, current_axes, safe), status, start[safe],
                y[:, safe], y1[:, safe], span[safe], t_ref, t_next)
            carry = dict(carry)
            for name in status_names:
                carry[name] = carry[name].at[index].set(status[name], mode="drop")
            carry["stopped"] = carry["stopped"].at[index].set(
                jnp.where(status["halted"], status["halt_time"], jnp.nan), mode="drop")
            carry["counts"] = carry["counts"].at[index].add(count.astype(carry["counts"].dtype), mode="drop")
            taken = valid[:, None] & (jnp.arange(MAX_EVENTS_PER_STEP)[None, :] < count[:, None])
            carry["buffer"] = append(carry["buffer"], records[0].reshape(-1),
                                     jnp.broadcast_to(index[:, None], taken.shape).reshape(-1), taken.reshape(-1))
            return pending.at[index].set(False, mode="drop"), y_new.at[:, index].set(y_end, mode="drop"), carry

        return jax.lax.while_loop(more, batch, (crossed, y1, carry))[1:]

    def record_spikes(buffer, crossed, t_spike):
        """Append the (time, neuron) pairs of this step to the buffer (dropped once it is full)."""

        def more(loop):
            return jnp.any(loop[0])

        def batch(loop):
            pending, buffer = loop
            index = jnp.nonzero(pending, size=EVENT_BATCH, fill_value=size)[0]
            return (pending.at[index].set(False, mode="drop"),
                    append(buffer, t_spike[jnp.minimum(index, size - 1)], index, index < jnp.minimum(real, size)))

        if spike_capacity == 0:
            return buffer
        return jax.lax.cond(jnp.any(crossed), lambda b: jax.lax.while_loop(more, batch, (crossed, b))[1],
                            lambda b: b, buffer)

    # the state at the step's start is needed to locate crossings, or to see a rise through a level without reset
    needs_start_state = k is not None and (config.located or config.reset is None)

    def settle(carry):
        """The events of the step held in the carry (its end state ``carry["y"]``, not yet reset): spike counts,
        guards, recorded spikes and resets. Returns the carry updated for them and the state to go on from."""
        y1 = unpack(carry["y"][..., :-1])
        if k is None:
            return carry, y1
        t_next, t_ref = carry["times"][0], carry["times"][2]
        if config.refractory_name is not None:
            start, span = carry["start"], carry["span"]
        else:
            start, span = carry["times"][3], carry["times"][4]
        level = params[config.level_name]
        start, span = jnp.broadcast_to(start, (size,)), jnp.broadcast_to(span, (size,))
        y_k = None
        if needs_start_state:
            y_k = carry["y_start"][k] if config.located else carry["y_start"]
        crossed = crossing(config.events, level, y_k, y1[k], span)
        carry = dict(carry)
        if config.located:  # each crossed neuron through the one-neuron event function (vmapped)
            status = {name: carry[name] for name in ("counts", "stopped", "buffer", "refractory_end", "last")
                      if name in carry}
            y_new, status = jax.lax.cond(
                jnp.any(crossed),
                lambda status: located_events(status, start, jnp.stack(carry["y_start"]), jnp.stack(y1), span,
                                              t_ref, t_next, crossed),
                lambda status: (jnp.stack(y1), status), status)
            carry.update(status)
            return carry, tuple(y_new)
        # reset after the step, at its end (``events.step_events`` elementwise over the population)
        y_new = y1 if config.reset is None else tuple(
            jnp.where(crossed, after, before) for after, before in zip(reset_all(params, y1), y1))
        if rate_guard or (config.refractory_name is not None and config.reset is not None):
            live = jnp.isnan(carry["stopped"])
            status = dict(new_status(min_interval, dtype=y1[k].dtype),
                          **{name: carry[name] for name in ("refractory_end", "last") if name in carry})
            if not rate_guard:  # a spike at most once per step: the interval guard cannot trip
                status["min_interval"] = jnp.asarray(-jnp.inf, dtype=y1[k].dtype)
            status = spike_status(config.events, params, status, t_next)
            for name in ("refractory_end", "last"):
                if name in carry:
                    carry[name] = jnp.where(crossed, status[name], carry[name])
            carry["stopped"] = jnp.where(live & crossed & status["halted"], t_next, carry["stopped"])
        carry["counts"] = carry["counts"] + crossed
        carry["buffer"] = record_spikes(carry["buffer"], crossed, jnp.full((size,), t_next))
        return carry, y_new

    def step(i, carry):
        """Settle the events of the previous step, then advance: the method step is computed by one loop
        whose only product is the packed end state (why: docs/benchmarks.md)."""
        carry, y = settle(carry)
        # the step's times come in the carry: read from ``nodes`` inside the step, they would be fused into
        # every elementwise loop as a dynamic slice, which XLA:CPU does not vectorise
        t, t_next = carry["times"][0], carry["times"][1]
        t_ref = t if config.input_at_step_start else 0.5 * (t + t_next)
        live = jnp.isnan(carry["stopped"])
        if config.refractory_name is not None:
            start = jnp.minimum(jnp.maximum(t, carry["refractory_end"]), t_next)
            span = jnp.where(live, t_next - start, 0.0)
        else:  # a stopped neuron is held by the where below
            start, span = t, t_next - t
        y1 = advance_all(params, current, start, y, span, t_ref)
        if config.located or rate_guard:
            y1 = tuple(jnp.where(live, after, before) for after, before in zip(y1, y))
        # written into the carried arrays (one element longer) as a dynamic-update-slice: XLA:CPU splits a
        # plain elementwise loop this costly over its thread pool (a wait for the other thread every step)
        carry = dict(carry, y=jax.lax.dynamic_update_slice(carry["y"], pack(y1), (0,) * carry["y"].ndim))
        if config.refractory_name is not None:
            carry.update(start=start, span=span)
            start, span = t, t_next - t  # placeholders in ``times``
        carry["times"] = jnp.stack([t_next, nodes[jnp.minimum(i + 2, nodes.shape[0] - 1)], t_ref, start, span])
        if needs_start_state:
            carry["y_start"] = y if config.located else y[k]
        return carry

    def segment(carry, bounds):
        carry = jax.lax.fori_loop(bounds[0], bounds[1], step, carry)
        return carry, jnp.stack(settle(carry)[1])

    # y: the end state of the last step, packed, its events not yet settled (none before the first step), one
    # element longer than the block (see the dynamic-update-slice in ``step``)
    # times: this step's start and end, and the previous step's input time, start and length (length 0 before
    # the first step, so it has no events); one small array, not five scalars, as each is a loop of its own
    carry = {"y": jnp.concatenate([pack(tuple(y0)), pack(tuple(y0))[..., :1]], axis=-1),
             "times": jnp.stack([nodes[0], nodes[1], nodes[0], nodes[0], 0 * nodes[0]]),
             "counts": jnp.zeros((size,), jnp.int32),
             "stopped": jnp.where(jnp.arange(size) < real, jnp.nan, -jnp.inf),  # the padding: stopped
             "buffer": (jnp.full((spike_capacity,), jnp.nan, nodes.dtype), jnp.zeros((spike_capacity,), jnp.int32),
                        jnp.asarray(0))}
    if needs_start_state:
        carry["y_start"] = tuple(y0) if config.located else y0[k]
    if config.refractory_name is not None:
        carry["start"] = jnp.full((size,), nodes[0])
        carry["span"] = jnp.zeros((size,), nodes.dtype)
    if rate_guard:
        carry["last"] = jnp.full((size,), -jnp.inf, nodes.dtype)
    if config.refractory_name is not None:
        carry["refractory_end"] = jnp.full((size,), -jnp.inf, nodes.dtype)
    bounds = jnp.stack([record_index[:-1], record_index[1:]], axis=1)
    carry, saved = jax.lax.scan(segment, carry, bounds)
    carry = settle(carry)[0]
    saved = jnp.concatenate([y0[None], saved])
    return saved, carry["counts"], carry["buffer"], carry["stopped"]

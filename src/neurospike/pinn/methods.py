"""The PINN methods: one marching driver for ``pinn``, ``pinn-data``, ``pinn-marching`` and ``pinn-reset``, and
the operator-splitting driver for ``splitting-pinn``. Each returns the windows' outputs as numpy arrays; the
:class:`~neurospike.Trajectory` is built in :mod:`neurospike.pinn`.

- ``pinn`` (vanilla): one network over the whole run, residual loss only. ``pinn-data``: plus a data loss against
  a classical solution (the seed study's "second attempt"). Neither can represent a reset: their spikes are the
  threshold crossings of the network output.
- ``pinn-marching``: windows of ``window`` ms, each network warm-started from the previous window's and started
  from its end state; a threshold crossing inside a window is located on the network output (spike time), and
  the reset is applied at the window end (as ``events="step"``).
- ``pinn-reset``: as marching, but the window is cut at the located crossing t*, the reset map applied to the
  network's state there, and the next window starts at t* from the reset state (seed 2's "final approach", with
  no reference data).
- ``splitting-pinn``: :mod:`neurospike.solvers.splitting` (Lie or Strang) on windows of ``window`` ms, each
  sub-flow of each window solved by its own small network warm-started from the same stage of the previous
  window; a crossing is located by linear interpolation between window ends and the reset applied at the end.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import NeurospikeError
from ..solvers import events, splitting
from .engine import PinnOptions, SubProblem, gauss_legendre, locate_crossing, train
from .network import init_network

MAX_WINDOWS_FACTOR = 20  # pinn-reset: at most 20x the windows of an uncut march (runaway resets stop there)


def _params(values):
    return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in values.items()}


def _subproblem(model, indices, options: PinnOptions):
    typical = model.state_scales or (1.0,) * model.n_states
    return SubProblem(model.derivatives, tuple(indices), tuple(float(typical[i]) for i in indices),
                      options.activation, options.fourier, options.initial, float(options.causal),
                      float(options.data_weight))


def _collocation(options: PinnOptions, whole: bool):
    if whole:  # uniform midpoints (resampled during Adam when resample_every > 0)
        return jnp.asarray((np.arange(options.collocation) + 0.5) / options.collocation)
    return jnp.asarray(gauss_legendre(options.collocation))


def _step_counts(options: PinnOptions):
    """(capacity, steps(first)): the history size, and the (Adam, L-BFGS) steps of a window (the ``warmup``
    counts for the first window, which starts from random weights; the others are warm-started)."""
    warm_adam, warm_lbfgs = options.warmup if any(options.warmup) else (options.adam_steps, options.lbfgs_steps)
    capacity = (max(options.adam_steps, warm_adam), max(options.lbfgs_steps, warm_lbfgs))

    def steps(first):
        return (jnp.where(first, warm_adam, options.adam_steps), jnp.where(first, warm_lbfgs, options.lbfgs_steps))

    return capacity, steps


def unless_done(done, work, carry):
    """``work(None)`` -> (new carry, record) unless ``done``; then the carry unchanged and a zero record marked
    invalid (the padding windows of a compiled chunk after the end of the run)."""
    def skip(_):
        shapes = jax.eval_shape(work, None)[1]
        record = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return carry, dict(record, valid=jnp.asarray(False))

    return jax.lax.cond(done, skip, work, None)


def _compile(function, *args):
    began = time.perf_counter()
    compiled = jax.jit(function).lower(*args).compile()
    return compiled, time.perf_counter() - began


def events_of(model) -> events.EventRule | None:
    """The located-event rule of ``model``'s spike (None without one): crossings on a window's network or
    between window ends."""
    rule = model.spike
    if rule is None:
        return None
    return events.EventRule(model.state_index(rule.state), rule.level, rule.reset, rule.refractory, True)


def march(model, values, current, start, t0, t_end, mode, options: PinnOptions, data=None, progress=None):
    """Windows from t0 to t_end (``mode``: "whole", "marching" or "reset"); returns a dict of numpy arrays per
    window (``t_start``, ``tau_end``, ``taus``, ``y``, ``residual``, ``loss``, ``history``, ``spiked``,
    ``t_spike``, ``before``, ``after``, ``nets``), ``length``, ``compile_time_s``, ``train_time_s``, ``status``."""
    n = model.n_states
    sub = _subproblem(model, range(n), options)
    whole = mode == "whole"
    length = float(t_end - t0) if whole else float(options.window or model.pinn_window)
    taus = jnp.linspace(0.0, 1.0, options.eval_points)
    collocation = _collocation(options, whole)
    rule = model.spike
    resets = rule is not None and rule.reset is not None and not whole
    k = model.state_index(rule.state) if rule is not None else 0
    event_rule = events_of(model)
    key = jax.random.PRNGKey(options.seed)
    net = init_network(key, n, tuple(options.widths), options.fourier)
    y0 = jnp.asarray([start[s] for s in model.states], dtype=jnp.float64)
    if data is None:
        data_tau, data_y = jnp.zeros((0,)), jnp.zeros((0, n))
    else:
        data_tau, data_y = jnp.asarray((data[0] - t0) / length), jnp.asarray(data[1])
    resample = options.resample_every if whole else 0

    capacity, steps = _step_counts(options)

    def one_window(params, current, carry):
        t_start, y_start, net, done, count = carry

        def work(_):
            window = sub.window(params, current, t_start, length, y_start, data_tau, data_y)
            loss = lambda q, tau: sub.loss(q, params, current, window, tau)  # noqa: E731
            trained, final_loss, history = train(loss, net, *steps(count == 0), options.learning_rate, collocation,
                                                 jax.random.fold_in(key, count), resample, capacity)
            along = lambda s: sub.solution(trained, window, s)  # noqa: E731
            ys = jax.vmap(along)(taus)
            residual = jax.vmap(lambda s: jnp.linalg.norm(sub.residual(trained, params, current, window, s)))(taus)
            tau_end, t_next, y_next = 1.0, t_start + length, ys[-1]
            spiked, t_spike = jnp.asarray(False), jnp.asarray(jnp.nan)
            before = after = jnp.full((n,), jnp.nan)
            if resets:
                level = params[rule.level]
                spiked, tau_star = locate_crossing(sub, trained, window, event_rule, level, ys[:, k], taus)
                t_spike = jnp.where(spiked, t_start + tau_star * length, jnp.nan)
                at = jnp.where(spiked, tau_star, 1.0) if mode == "reset" else 1.0
                state = along(at)
                reset = events.reset_state(event_rule, params, state)
                before, after = jnp.where(spiked, state, jnp.nan), jnp.where(spiked, reset, jnp.nan)
                tau_end = at
                t_next = t_start + at * length
                y_next = jnp.where(spiked, reset, ys[-1])
            record = dict(t_start=t_start, tau_end=jnp.asarray(tau_end, dtype=t_start.dtype), y=ys,
                          scale=window.scale,
                          residual=residual, loss=final_loss, history=history, spiked=spiked, t_spike=t_spike,
                          before=before, after=after, net=trained, valid=jnp.asarray(True))
            return (t_next, y_next, trained, t_next >= t_end - 1e-9 * length, count + 1), record

        return unless_done(done, work, carry)

    params = _params(values)
    carry = (jnp.asarray(float(t0)), y0, net, jnp.asarray(False), jnp.asarray(0))
    chunk = 1 if whole else options.chunk
    step, compile_time = _compile(lambda p, c, carry: jax.lax.scan(lambda cr, _: one_window(p, c, cr), carry, None,
                                                                   length=chunk), params, current, carry)
    began = time.perf_counter()
    windows_needed = max(1, math.ceil((t_end - t0) / length - 1e-9))
    limit = windows_needed * (MAX_WINDOWS_FACTOR if resets and mode == "reset" else 1) + chunk
    records, status, done_windows = [], "success", 0
    while True:
        carry, record = step(params, current, carry)
        records.append(jax.tree_util.tree_map(np.asarray, record))
        done_windows += int(np.sum(records[-1]["valid"]))
        if progress is not None:
            progress(min(float(carry[0]), t_end), float(np.max(records[-1]["loss"])))
        if bool(carry[3]):
            break
        if done_windows >= limit:
            status = "rate-exceeded"
            break
    train_time = time.perf_counter() - began
    merged = {name: np.concatenate([r[name] for r in records]) for name in records[0] if name != "net"}
    valid = merged.pop("valid")
    out = {name: value[valid] for name, value in merged.items()}
    out["nets"] = jax.tree_util.tree_map(lambda *leaves: np.concatenate(leaves)[valid], *[r["net"] for r in records])
    out.update(taus=np.asarray(taus), length=length, compile_time_s=compile_time, train_time_s=train_time,
               status=status)
    return out


def split_march(model, values, current, start, t0, t_end, options: PinnOptions, progress=None, solve_exactly=None):
    """``splitting-pinn``: windows of ``options.window`` (the run cut into equal windows of at most that
    length), each advanced by the Lie or Strang composition of sub-flows, each sub-flow a PINN. Returns numpy
    arrays: ``t`` (window ends, with t0 first), ``y``, ``stage_loss`` (windows, stages), spike records, times."""
    groups = model.split or tuple((s,) for s in model.states)
    group_indices = tuple(tuple(model.state_index(s) for s in g) for g in groups)
    plan = splitting.stages(options.splitting, len(groups))
    subs = [_subproblem(model, group_indices[g], options) for g, _, _ in plan]
    count = max(1, math.ceil((t_end - t0) / options.window - 1e-9))
    length = (t_end - t0) / count
    collocation = _collocation(options, False)
    key = jax.random.PRNGKey(options.seed)
    nets = tuple(init_network(jax.random.fold_in(key, i), len(group_indices[g]), tuple(options.widths),
                              options.fourier) for i, (g, _, _) in enumerate(plan))
    rule = model.spike
    k = model.state_index(rule.state) if rule is not None else 0
    event_rule = events_of(model)
    n = model.n_states

    capacity, steps = _step_counts(options)

    def advance(params, current, t_start, y, nets, first):
        trained = list(nets)

        def solve(number, group, stage_start, stage_length, y):
            sub = subs[number]
            window = sub.window(params, current, stage_start, stage_length, y)
            loss = lambda q, tau: sub.loss(q, params, current, window, tau)  # noqa: E731
            trained[number], final_loss, _ = train(loss, nets[number], *steps(first), options.learning_rate,
                                                   collocation, capacity=capacity)
            end = sub.solution(trained[number], window, 1.0)
            return y.at[jnp.asarray(sub.indices)].set(end), final_loss

        y, losses = splitting.compose(plan, y, t_start, length, solve)
        return y, tuple(trained), jnp.stack(losses)

    def one_window(params, current, carry):
        index, y_start, nets = carry
        t_start = t0 + index * length

        def work(_):
            return advance(params, current, t_start, y_start, nets, index == 0)

        def skip(_):  # padding after the last window of the last chunk
            return y_start, nets, jnp.zeros((len(plan),), dtype=y_start.dtype)

        y, nets, losses = jax.lax.cond(index < count, work, skip, None)
        spiked, t_spike = jnp.asarray(False), jnp.asarray(jnp.nan)
        before = after = jnp.full((n,), jnp.nan)
        if rule is not None:
            level = params[rule.level]
            spiked = events.crossing(event_rule, level, y_start[k], y[k]) & (index < count)
            theta, _ = events.locate(events.linear(y_start, y), k, level)
            t_spike = jnp.where(spiked, t_start + theta * length, jnp.nan)
            if rule.reset is not None:  # at the window's end (as events="step")
                reset = events.reset_state(event_rule, params, y)
                before, after = jnp.where(spiked, y, jnp.nan), jnp.where(spiked, reset, jnp.nan)
                y = jnp.where(spiked, reset, y)
        return (index + 1, y, nets), dict(y=y, loss=losses, spiked=spiked, t_spike=t_spike, before=before,
                                           after=after)

    params = _params(values)
    y0 = jnp.asarray([start[s] for s in model.states], dtype=jnp.float64)
    chunk = min(options.chunk, count)
    carry = (jnp.asarray(0), y0, nets)
    step, compile_time = _compile(lambda p, c, carry: jax.lax.scan(lambda cr, _: one_window(p, c, cr), carry, None,
                                                                   length=chunk), params, current, carry)
    began = time.perf_counter()
    records = []
    while int(carry[0]) < count:
        carry, record = step(params, current, carry)
        records.append({name: np.asarray(value) for name, value in record.items()})
        if progress is not None:
            progress(min(t0 + int(carry[0]) * length, t_end), float(np.max(records[-1]["loss"])))
    train_time = time.perf_counter() - began
    out = {name: np.concatenate([r[name] for r in records])[:count] for name in records[0]}
    out["t"] = t0 + length * np.arange(count + 1)
    out["y"] = np.concatenate([np.asarray(y0)[None], out["y"]])
    out.update(length=length, stages=plan, compile_time_s=compile_time, train_time_s=train_time,
               final_nets=jax.tree_util.tree_map(np.asarray, carry[2]))
    return out


def check_model(model, method, values, options):
    """A PINN method on a model it cannot handle: one clear error."""
    rule = model.spike
    if rule is not None and rule.refractory is not None and float(values[rule.refractory]) > 0:
        raise NeurospikeError(f"{rule.refractory}={values[rule.refractory]:g}: the PINN methods have no refractory "
                              f"periods; use {rule.refractory}=0 or a classical method")
    if method == "splitting-pinn" and options.splitting == "none":
        raise NeurospikeError("splitting-pinn needs splitting 'lie' or 'strang', not 'none'")
    if method == "splitting-pinn" and model.n_states == 1:
        raise NeurospikeError(f"splitting-pinn splits the states of a model into sub-problems; {model.name!r} has "
                              f"one state ({model.states[0]}): use pinn-reset or pinn-marching")

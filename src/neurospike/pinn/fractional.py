"""``fpinn``: the fractional PINN with the L1 scheme (Caputo order α_i ∈ (0, 1] per state).

On the grid t_n = t0 + n Δt a window holds M steps, n = n0 + 1 … n0 + M; its network gives the states at the
window's nodes, u_j = u(τ_j), τ_j = j/M, with u(τ) = y_{n0} + τ · S · N(τ) (the start node exact). The residual at
node n is the L1 derivative minus the right-hand side,

    r_n = Δt^−α/Γ(2 − α) [ Σ_{m ≤ n0} b_{n−m} Δ_m  +  Σ_{n0 < m ≤ n} b_{n−m} Δ_m ] − f(t_n, u_n),   b_j = (j+1)^{1−α} − j^{1−α},

with Δ_m = u_m − u_{m−1}: the first sum is the memory of the earlier windows (known, computed once per window), the
second the window's own increments (an M × M lower-triangular Toeplitz product). Normalised by H/S (H = MΔt), its
mean square is the loss; a zero loss is exactly the implicit L1 scheme (:mod:`neurospike.solvers.fractional`), so
``l1`` on the same grid is the scheme-level truth and ``fast-l1`` on a fine grid the continuous one.

Splitting (``splitting="lie"``, e.g. FO-HH): one network per state group of the model's ``split``; at node n the
first group's residual sees the other groups at node n − 1 and the later groups see the first group at node n
(Lie splitting per grid step), each group keeping its own memory term; the cross terms enter through
``stop_gradient``, so each network solves its own sub-problem. Strang's half steps would need the L1 weights on a
half grid, so it is not offered here.

Resets (FO-LIF, FO-Izhikevich): as in the L1 solver (:mod:`neurospike.solvers.fractional`, ``events="located"``),
the reset is applied at the crossing t* and the step is finished from the reset state. The network's nodes are
the whole steps of the implicit L1 scheme; the first node n = n0 + j + 1 of the window whose spiking state reaches
the level from below locates t* = t_{n−1} + θΔt on the line between u_{n−1} and u_n (first order in t*, as the
scheme), ``before`` = the state there, ``after`` = reset(before), and the window ends at node n. The step then
consists of two linear pieces, A = [t_{n−1}, t*] with Δ_A = before − u_{n−1} and B = [t*, t_n] from ``after``, and
the node value is one implicit L1 step of the non-uniform piece B, ℓ = (1 − θ)Δt:

    (1 − θ)^−α (y_n − after) + w_A(0) Δ_A + H_n = Δt^α Γ(2 − α) f(t_n, y_n),

H_n the memory of all earlier steps (earlier windows and this window's steps before j). It is solved by Newton on the
JAX Jacobian (:func:`neurospike.solvers.methods.newton`, tol 1e-12, the L1 solver's own solve), not by a network: n
equations in the n states, solved to rounding, so the node value is the scheme's exactly (with ``--splitting lie``
the groups see each other as at a grid node, the later groups at ``after``). Every later node weighs the two pieces
by their true geometry, a piece [a, b] with increment Δ contributing
Δ/(b − a)·((t − a)^{1−α} − (t − b)^{1−α})/Γ(2 − α) (:func:`~neurospike.solvers.fractional.piece_weight`): the memory
stores Δ_A + Δ_B with the uniform b_j and, once per split step, adds (w_A(j) − b_j)Δ_A + (w_B(j) − b_j)Δ_B to the
memory of every later node (one vector of corrections per state, as the L1 solver's direct sum). The split step is
always the last of its window (the next window starts at node n from y_n), so the in-window Toeplitz part holds whole
steps only and the corrections enter through the memory of the earlier windows. A zero loss is therefore the L1
solver's located-event scheme, spike times included; at α = 1 the weights of earlier pieces vanish and piece B is
backward Euler over [t*, t_n]: the integer-order ``events="located"`` backward Euler. Only the first crossing of a
window counts (a second crossing inside piece B is missed, as in the L1 solver); no refractory periods (the PINN
methods refuse them).
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gamma

from ..errors import NeurospikeError
from ..solvers import events
from ..solvers.fractional import _excess_weights, l1_weights, piece_weight
from ..solvers.methods import newton
from .engine import PinnOptions, output_scale, train
from .methods import _compile, _params, _step_counts, events_of, unless_done
from .network import apply_network, init_network


def fpinn(model, values, current, start, t0, t_end, dt, orders, options: PinnOptions, progress=None):
    """Returns numpy arrays: ``t`` (nodes), ``y`` (nodes, n), spike times and before/after states, losses
    per window, times (see the module docstring for the scheme)."""
    n = model.n_states
    steps_total = int(math.floor((t_end - t0) / dt + 1e-9))
    per_window = max(1, int(round((options.window or 10 * dt) / dt)))
    if steps_total < 1:
        raise NeurospikeError(f"dt={dt:g} is longer than the run [{t0:g}, {t_end:g}] ms")
    if options.splitting == "strang":
        raise NeurospikeError("fpinn splits per grid step (Lie): use --splitting lie, or none for one network")
    if options.splitting == "lie":
        groups = tuple(tuple(model.state_index(s) for s in g) for g in (model.split or ((s,) for s in model.states)))
    else:
        groups = (tuple(range(n)),)
    owner = np.zeros(n, dtype=int)
    for g, members in enumerate(groups):
        owner[list(members)] = g
    typical = np.asarray(model.state_scales or (1.0,) * n, dtype=float)
    weights = l1_weights(orders, steps_total + per_window + 1)  # (N + M + 2, n)
    factor = dt ** -orders / gamma(2.0 - orders)
    toeplitz = np.zeros((n, per_window, per_window))
    for j in range(per_window):
        toeplitz[:, j, :j + 1] = weights[j::-1].T
    rule = model.spike
    k = model.state_index(rule.state) if rule is not None else 0
    event_rule = events_of(model)
    taus = jnp.arange(1, per_window + 1, dtype=jnp.float64) / per_window
    H = per_window * dt
    key = jax.random.PRNGKey(options.seed)
    nets = tuple(init_network(jax.random.fold_in(key, g), len(members), tuple(options.widths), options.fourier)
                 for g, members in enumerate(groups))
    capacity = steps_total + per_window + 1
    constants = (jnp.asarray(weights), jnp.asarray(factor), jnp.asarray(toeplitz), jnp.asarray(typical),
                 jnp.asarray(orders, dtype=jnp.float64))

    def field(params, current, t, y):
        return jnp.stack(model.derivatives(t, tuple(y[i] for i in range(n)), params, current(t, t, jnp), jnp))

    def group_fields(params, current, t, own, earlier, later):
        """f at node t on what each group sees (Lie per grid step): its own states from ``own``, the earlier groups
        from ``earlier``, the later groups from ``later``; one whole vector per group, whose rows of that group
        are its right-hand side (one group: [f(t, own)])."""
        if len(groups) == 1:
            return [field(params, current, t, own)]
        return [field(params, current, t, jnp.where(owner < g, earlier, jnp.where(owner == g, own, later)))
                for g in range(len(groups))]

    def coupled_field(params, current, t, own, earlier, later):
        """The right-hand side each state's group sees (:func:`group_fields`), in state order."""
        return jnp.stack(group_fields(params, current, t, own, earlier, later))[owner, jnp.arange(n)]

    def nodes_of(nets, y0, scale):
        """u_1 … u_M from the group networks: (M, n)."""
        u = jnp.zeros((per_window, n), dtype=y0.dtype)
        for net, members in zip(nets, groups):
            index = jnp.asarray(members)
            out = jax.vmap(lambda s: apply_network(net, s, options.activation, options.fourier))(taus)
            u = u.at[:, index].set(y0[index] + taus[:, None] * scale[index] * out)
        return u

    history_size, steps = _step_counts(options)

    def window_fit(params, current, n0, y0, past, nets):
        weights, factor, toeplitz, typical, _ = constants
        increments, corrections = past
        t_start = t0 + n0 * dt
        scale = output_scale(lambda t, y: field(params, current, t, y), t_start, H, y0, jnp.arange(n), typical)
        # memory of the earlier windows at each node j: Σ_{m ≤ n0} b_{n0+j−m} Δ_m, plus the split steps' excess
        # weights (module docstring)
        m = jnp.arange(capacity)
        lag = n0 + jnp.arange(1, per_window + 1)[:, None] - m[None, :]
        earlier = (m >= 1) & (m <= n0)
        gathered = weights[jnp.clip(lag, 0, weights.shape[0] - 1)]  # (M, capacity, n)
        memory = jnp.sum(jnp.where(earlier[None, :, None], gathered, 0.0) * increments[None], axis=1)  # (M, n)
        memory = memory + jax.lax.dynamic_slice_in_dim(corrections, n0 + 1, per_window, 0)
        times = t_start + taus * H

        def loss(nets, _tau):
            u = nodes_of(nets, y0, scale)
            previous = jnp.concatenate([y0[None], u[:-1]])
            own = jnp.einsum("sji,is->js", toeplitz, u - previous)
            derivative = factor * (memory + own)
            # Lie per grid step: group g sees earlier groups at node n and later groups at node n − 1
            fields = jax.vmap(lambda t, y, e, l: group_fields(params, current, t, y, e, l))(
                times, u, jax.lax.stop_gradient(u), jax.lax.stop_gradient(previous))
            residuals = [((derivative - f)[:, jnp.asarray(members)]) * H / scale[jnp.asarray(members)]
                         for f, members in zip(fields, groups)]
            return jnp.mean(jnp.concatenate(residuals, axis=1) ** 2)

        trained, final_loss, _ = train(loss, nets, *steps(n0 == 0), options.learning_rate, taus, capacity=history_size)
        return trained, final_loss, nodes_of(trained, y0, scale), memory

    def one_window(params, current, carry):
        n0, y0, past, nets, done = carry

        def work(_):
            _, factor, toeplitz, _, alpha = constants
            increments, corrections = past
            trained, final_loss, u, memory = window_fit(params, current, n0, y0, past, nets)
            previous = jnp.concatenate([y0[None], u[:-1]])
            count = jnp.minimum(per_window, steps_total - n0)
            spiked, t_spike = jnp.asarray(False), jnp.asarray(jnp.nan)
            before = after = jnp.full((n,), jnp.nan)
            step_increments = u - previous
            if rule is not None and rule.reset is not None:
                level = params[rule.level]
                up = events.crossing(event_rule, level, previous[:, k], u[:, k]) & (jnp.arange(per_window) < count)
                spiked = jnp.any(up)
                j = jnp.argmax(up)
                theta, state = events.locate(events.linear(previous[j], u[j]), k, level)
                reset = events.reset_state(event_rule, params, state)
                t_cross = t0 + (n0 + j + theta) * dt
                t_spike = jnp.where(spiked, t_cross, jnp.nan)
                before, after = jnp.where(spiked, state, jnp.nan), jnp.where(spiked, reset, jnp.nan)
                count = jnp.where(spiked, j + 1, count)
                # piece B = [t*, t_n] from the reset state: one implicit L1 step of length (1 − θ)Δt (docstring)
                node = n0 + j + 1
                rise = state - previous[j]
                own = jnp.einsum("sji,is->js", toeplitz, step_increments)
                history = memory[j] + own[j] - step_increments[j]  # H_n: every step before step j (b_0 = 1)
                short = (1.0 - theta) ** alpha
                known = short * (history + piece_weight(alpha, 0.0, 0.0, theta) * rise)
                slope = coupled_field(params, current, t_cross, reset, reset, reset)
                predictor = reset - known + short / factor * slope
                t_node = t0 + node * dt
                y_node = newton(lambda z: z - reset + known
                                - short / factor * coupled_field(params, current, t_node, z, z, reset), predictor)
                fall = y_node - reset
                u = jnp.where(spiked & (jnp.arange(per_window) == j)[:, None], y_node[None], u)
                step_increments = step_increments.at[j].set(jnp.where(spiked, rise + fall, step_increments[j]))
                # every later node weighs the two pieces by their true geometry: add their excess over b_lag
                lag = (jnp.arange(capacity) - node).astype(jnp.float64)[:, None]
                excess_a, excess_b = _excess_weights(alpha[None, :], jnp.maximum(lag, 1.0),
                                                     (0.0, theta, None, theta, None))
                corrections = corrections + jnp.where(spiked & (lag >= 1.0), excess_a * rise + excess_b * fall, 0.0)
            kept = jnp.arange(per_window) < count
            updated = (jax.lax.dynamic_update_slice_in_dim(
                increments, jnp.where(kept[:, None], step_increments, 0.0), n0 + 1, 0), corrections)
            y_next = u[count - 1]
            record = dict(n0=n0, count=count, u=u, loss=final_loss, spiked=spiked, t_spike=t_spike,
                          before=before, after=after, valid=jnp.asarray(True))
            n_next = n0 + count
            return (n_next, y_next, updated, trained, n_next >= steps_total), record

        return unless_done(done, work, carry)

    params = _params(values)
    y0 = jnp.asarray([start[s] for s in model.states], dtype=jnp.float64)
    # the memory: every step's increment Δ_m (row m) and the split steps' corrections due at each node
    past = (jnp.zeros((capacity, n), dtype=jnp.float64), jnp.zeros((capacity, n), dtype=jnp.float64))
    carry = (jnp.asarray(0), y0, past, nets, jnp.asarray(False))
    step, compile_time = _compile(lambda p, c, carry: jax.lax.scan(lambda cr, _: one_window(p, c, cr), carry, None,
                                                                   length=options.chunk), params, current, carry)
    began = time.perf_counter()
    records = []
    while True:
        carry, record = step(params, current, carry)
        records.append({name: np.asarray(value) for name, value in record.items()})
        if progress is not None:
            progress(min(t0 + int(carry[0]) * dt, t_end), float(np.max(records[-1]["loss"])))
        if bool(carry[4]):
            break
    train_time = time.perf_counter() - began
    merged = {name: np.concatenate([r[name] for r in records]) for name in records[0]}
    valid = merged.pop("valid")
    out = {name: value[valid] for name, value in merged.items()}
    node_values = [np.asarray(y0)[None]] + [out["u"][w][:out["count"][w]] for w in range(len(out["n0"]))]
    y = np.concatenate(node_values)
    spiked = out["spiked"].astype(bool)
    return {"t": t0 + dt * np.arange(len(y)), "y": y, "spike_times": out["t_spike"][spiked],
            "before": out["before"][spiked], "after": out["after"][spiked], "loss": out["loss"],
            "window_end": t0 + dt * (out["n0"] + out["count"]),
            "windows": int(len(out["n0"])), "steps_per_window": per_window, "groups": groups,
            "compile_time_s": compile_time, "train_time_s": train_time}

"""The reference solution: adaptive DOP853 (scipy; order 8 with step-size control, dense output of order 7) at
tight tolerances (rtol = atol = 1e-12 by default) with exactly located spike events.

The run is cut at every discontinuity of the input; on each smooth piece ``solve_ivp`` integrates to the next
threshold crossing (a terminal event, located by root finding on the dense output), the reset map is applied
there and the integration restarts from the reset state; with a refractory period the state is held until the
spike time plus the period. Without a reset map every crossing is recorded and the trajectory goes on. A spike
sooner than ``min_interval`` after the previous one halts the run (rate exceeded). Dense output is kept for
every piece, so the solution is available at any time. E. Hairer, S. P. Nørsett, G. Wanner, *Solving ODEs I*,
Springer 1993 (DOP853).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from ..errors import NeurospikeError
from .fixed_step import NON_FINITE, OK, RATE_EXCEEDED


def integrate(model, params, current, y0, t0, t_end, *, rtol=1e-12, atol=1e-12, method="DOP853",
              min_interval=0.1, max_spikes=None):
    """Returns (pieces, spikes, status): pieces = [(t_a, t_b, t_steps, y_steps, dense)], spikes = (times,
    before, after) and status = (code, time)."""
    rule = model.spike
    k = model.state_index(rule.state) if rule else None
    level = float(params[rule.level]) if rule else None
    refractory = float(params[rule.refractory]) if rule and rule.refractory else 0.0
    breaks = [b for b in np.asarray(current.discontinuities(), dtype=float) if t0 < b < t_end]
    edges = [t0, *sorted(set(breaks)), t_end]

    pieces, spike_times, before, after = [], [], [], []
    status = (OK, np.nan)
    y = np.asarray(y0, dtype=float)
    t = t0
    for a, b in zip(edges[:-1], edges[1:]):
        t_ref = 0.5 * (a + b)

        def rhs(time, state, t_ref=t_ref):
            return np.asarray(model.derivatives(time, tuple(state), params, current(time, t_ref, np), np), dtype=float)

        events = None
        if rule is not None:
            def crossing(time, state):
                return state[k] - level
            crossing.terminal = rule.reset is not None
            crossing.direction = 1.0
            events = crossing
        while t < b and status[0] == OK:
            if refractory > 0 and spike_times and t < spike_times[-1] + refractory:
                hold_end = min(spike_times[-1] + refractory, b)
                pieces.append((t, hold_end, np.array([t, hold_end]), np.stack([y, y]), _constant(y)))
                t = hold_end
                continue
            with np.errstate(all="ignore"):
                sol = solve_ivp(rhs, (t, b), y, method=method, rtol=rtol, atol=atol, events=events,
                                dense_output=True)
            if sol.status == -1 and rule is not None and rule.reset is not None and np.all(np.isfinite(sol.y)):
                sol = _blow_up_to_threshold(sol, rhs, k, level)
            if sol.status == -1 or not np.all(np.isfinite(sol.y)):
                finite = np.all(np.isfinite(sol.y), axis=0)
                if finite.any():  # keep the finite part, so the error names the last finite state
                    pieces.append((t, float(sol.t[finite][-1]), sol.t[finite], sol.y[:, finite].T, sol.sol))
                status = (NON_FINITE, float(sol.t[-1]))
                break
            pieces.append((t, float(sol.t[-1]), sol.t, sol.y.T, sol.sol))
            if rule is not None and rule.reset is None:  # record every crossing, the trajectory goes on
                for t_event, y_event in zip(sol.t_events[0], sol.y_events[0]):
                    spike_times.append(float(t_event))
                    before.append(y_event)
                    after.append(y_event)
            if sol.status == 1 and rule is not None and rule.reset is not None:
                t_spike = float(sol.t_events[0][0])
                y_before = np.asarray(sol.y_events[0][0], dtype=float)
                y_after = np.asarray(rule.reset(tuple(y_before), params), dtype=float)
                if spike_times and t_spike - spike_times[-1] < min_interval:
                    status = (RATE_EXCEEDED, t_spike)
                spike_times.append(t_spike)
                before.append(y_before)
                after.append(y_after)
                if max_spikes is not None and len(spike_times) >= max_spikes:
                    status = (RATE_EXCEEDED, t_spike)
                t, y = t_spike, y_after
            else:
                t, y = float(sol.t[-1]), sol.y[:, -1]
        if status[0] != OK:
            break
    n = len(y0)
    return pieces, (np.asarray(spike_times, dtype=float), np.asarray(before, dtype=float).reshape(-1, n),
                    np.asarray(after, dtype=float).reshape(-1, n)), status


BLOW_UP_GAP_MS = 1e-9  # a failed step this close (linearly extrapolated) to the threshold is the spike


def _blow_up_to_threshold(sol, rhs, k, level):
    """A step-size failure (status −1) on an explosive upstroke: if the linear extrapolation from the last state
    reaches the threshold within ``BLOW_UP_GAP_MS``, that is the spike, placed at the last time with the spiking
    state at its threshold. Why: docs/design.md#the-references-blow-up-event"""
    t_last, y_last = float(sol.t[-1]), np.asarray(sol.y[:, -1], dtype=float)
    rate = float(rhs(t_last, y_last)[k])
    gap = level - y_last[k]
    if not (rate > 0 and 0 <= gap <= rate * BLOW_UP_GAP_MS):
        return sol
    y_event = y_last.copy()
    y_event[k] = level
    sol.status, sol.t_events, sol.y_events = 1, [np.array([t_last])], [y_event[None, :]]
    return sol


def _constant(y):
    y = np.asarray(y, dtype=float)
    return lambda times: np.repeat(y[:, None], np.size(times), axis=1)


def dense_output(pieces):
    """Evaluate the piecewise dense output; at a piece boundary the later piece wins (post-reset state)."""
    starts = np.array([p[0] for p in pieces])

    def evaluate(times):
        times = np.asarray(times, dtype=float)
        index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(pieces) - 1)
        out = np.empty((times.size, pieces[0][3].shape[1]))
        for i in np.unique(index):
            mask = index == i
            a, b = pieces[i][0], pieces[i][1]
            out[mask] = np.asarray(pieces[i][4](np.clip(times[mask], a, b))).T.reshape(mask.sum(), -1)
        return out

    if not pieces:
        raise NeurospikeError("reference: nothing was integrated")
    return evaluate

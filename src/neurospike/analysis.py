"""Measures of how far one :class:`~neurospike.trajectory.Trajectory` is from another: spike-time matching,
state errors at chosen times, relative L2 error over a run and the observed order of a step-size sweep.

Pure numpy; every function takes trajectories (or spike-time arrays) and returns numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import NeurospikeError


@dataclass
class SpikeMatch:
    """Reference and candidate spike trains paired in order.

    ``errors[k] = candidate[candidate_indices[k]] - reference[reference_indices[k]]`` (ms) for each matched pair;
    ``missing`` are reference spike times with no partner, ``extra`` candidate spike times with no partner.
    """

    errors: np.ndarray
    reference_indices: np.ndarray
    candidate_indices: np.ndarray
    missing: np.ndarray
    extra: np.ndarray

    @property
    def pairs(self) -> np.ndarray:
        """Matched (reference index, candidate index) pairs, shape (n_matched, 2)."""
        return np.stack([self.reference_indices, self.candidate_indices], axis=-1)

    @property
    def complete(self) -> bool:
        """Every spike has a partner (no missing, no extra spike)."""
        return self.missing.size == 0 and self.extra.size == 0

    @property
    def worst_matched(self) -> float:
        """max |error| over the matched pairs (ms); NaN when nothing is matched."""
        return float(np.max(np.abs(self.errors))) if self.errors.size else float("nan")

    @property
    def worst(self) -> float:
        """The worst spike-time error of the whole train (ms): ``inf`` if any spike is missing or extra (an
        unmatched spike is an unbounded timing error), NaN if neither train has a spike, else ``worst_matched``."""
        if not self.complete:
            return float("inf")
        return self.worst_matched


def match_spikes(reference_times, candidate_times, tolerance: float | None = None) -> SpikeMatch:
    """Pair two spike trains in order, optimally.

    Among all order-preserving pairings in which paired spikes lie within ``tolerance`` ms of each other
    (no limit when ``None``), choose the one with the most pairs and, among those, the smallest sum of |error|.
    This is a sequence alignment (dynamic programming over the n × m grid, as in Needleman–Wunsch) in which a
    gap — a missing or an extra spike — costs one pair. Spikes that stay unpaired are ``missing`` (reference)
    or ``extra`` (candidate).
    """
    reference = _spike_array(reference_times, "reference")
    candidate = _spike_array(candidate_times, "candidate")
    if tolerance is not None and not (np.isfinite(tolerance) and tolerance > 0):
        raise NeurospikeError(f"spike-matching tolerance={tolerance!r} must be a positive finite number of ms")
    limit = np.inf if tolerance is None else float(tolerance)
    n, m = reference.size, candidate.size
    if n == 0 or m == 0:
        empty = np.zeros(0, dtype=int)
        return SpikeMatch(np.zeros(0), empty, empty, reference, candidate)

    distance = np.abs(candidate[None, :] - reference[:, None])
    # Score = pairs - scale * sum|error|; scale makes the summed errors of any pairing worth less than one pair.
    span = float(max(reference.max(), candidate.max()) - min(reference.min(), candidate.min()))
    scale = 1.0 / ((min(n, m) + 1) * (span + 1.0))
    gain = np.where(distance <= limit, 1.0 - scale * distance, -np.inf)

    score = np.zeros(m + 1)  # best score of reference[:i] against candidate[:j], row i
    paired = np.zeros((n + 1, m + 1), dtype=bool)  # (i, j) reached by pairing reference i-1 with candidate j-1
    carried = np.zeros((n + 1, m + 1), dtype=bool)  # (i, j) reached by leaving candidate j-1 unpaired
    for i in range(1, n + 1):
        with_pair = score[:-1] + gain[i - 1]
        best_here = np.concatenate([[score[0]], np.maximum(score[1:], with_pair)])
        paired[i, 1:] = with_pair > score[1:]
        row = np.maximum.accumulate(best_here)
        carried[i] = row > best_here
        score = row

    ref_indices, cand_indices = [], []
    i, j = n, m
    while i > 0 and j > 0:
        if carried[i, j]:
            j -= 1
        elif paired[i, j]:
            ref_indices.append(i - 1)
            cand_indices.append(j - 1)
            i, j = i - 1, j - 1
        else:
            i -= 1
    ref_indices = np.asarray(ref_indices[::-1], dtype=int)
    cand_indices = np.asarray(cand_indices[::-1], dtype=int)
    return SpikeMatch(
        errors=candidate[cand_indices] - reference[ref_indices],
        reference_indices=ref_indices,
        candidate_indices=cand_indices,
        missing=np.delete(reference, ref_indices),
        extra=np.delete(candidate, cand_indices),
    )


def _spike_array(times, which: str) -> np.ndarray:
    array = np.ravel(np.asarray(times, dtype=float))
    if not np.all(np.isfinite(array)):
        raise NeurospikeError(f"{which} spike times must be finite; got {array[~np.isfinite(array)][0]!r}")
    if np.any(np.diff(array) < 0):
        raise NeurospikeError(f"{which} spike times must be sorted in increasing order")
    return array


def state_errors(trajectory, reference, times) -> dict[str, np.ndarray]:
    """|trajectory(t) − reference(t)| at ``times`` (ms) for every state of the reference, each run evaluated
    by its own dense output (:meth:`Trajectory.at`)."""
    times = np.atleast_1d(np.asarray(times, dtype=float))
    here, there = trajectory.at(times), reference.at(times)
    return {name: np.abs(np.asarray(here.states[name]) - np.asarray(there.states[name]))
            for name in _common_states(trajectory, reference, None)}


def relative_l2(trajectory, reference, state: str = "v", times=None) -> float:
    """Relative L2 error of one state over the run, ``sqrt(∫(x − x_ref)² dt / ∫x_ref² dt)``.

    Both runs are evaluated by their dense output at ``times`` (default: 10 001 equally spaced times over the
    span the two runs share) and the integrals are taken by the trapezoidal rule.
    """
    (state,) = _common_states(trajectory, reference, state)
    if times is None:
        start = max(trajectory.t[0], reference.t[0])
        end = min(trajectory.t[-1], reference.t[-1])
        if not end > start:
            raise NeurospikeError(f"the runs share no time span ([{trajectory.t[0]:g}, {trajectory.t[-1]:g}] and "
                                  f"[{reference.t[0]:g}, {reference.t[-1]:g}] ms)")
        times = np.linspace(start, end, 10_001)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.size < 2 or np.any(np.diff(times) <= 0):
        raise NeurospikeError("relative_l2 needs at least two increasing times")
    here = np.asarray(trajectory.at(times).states[state])
    there = np.asarray(reference.at(times).states[state])
    norm = np.sqrt(np.trapezoid(there**2, times))
    if norm == 0:
        raise NeurospikeError(f"the reference {state} is zero over the run: a relative error is undefined")
    return float(np.sqrt(np.trapezoid((here - there) ** 2, times)) / norm)


def _common_states(trajectory, reference, state):
    if state is not None:
        for run in (reference, trajectory):
            if state not in run.states:
                raise NeurospikeError(f"unknown state {state!r} for model {run.model!r}; states are "
                                      f"{', '.join(run.states)}")
        return [state]
    missing = [name for name in reference.states if name not in trajectory.states]
    if missing:
        raise NeurospikeError(f"the trajectory lacks state {missing[0]!r} of the reference; its states are "
                              f"{', '.join(trajectory.states)}")
    return list(reference.states)


def observed_order(dts, errors) -> float:
    """The observed convergence order: the least-squares slope of log(error) against log(dt).

    Pairs whose error is not a positive finite number (an exact result, a failed run) are left out; NaN when
    fewer than two distinct step sizes remain.
    """
    dts = np.ravel(np.asarray(dts, dtype=float))
    errors = np.ravel(np.asarray(errors, dtype=float))
    if dts.shape != errors.shape:
        raise NeurospikeError(f"observed_order needs one error per dt; got {dts.size} dts and {errors.size} errors")
    usable = np.isfinite(errors) & (errors > 0) & np.isfinite(dts) & (dts > 0)
    if np.unique(dts[usable]).size < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(dts[usable]), np.log(errors[usable]), 1)
    return float(slope)

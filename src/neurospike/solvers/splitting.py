"""Operator splitting of one step (or PINN window) [t, t + h] into sub-flows of the model's state groups.

The right-hand side f = f₁ + f₂ + … is split by state groups (the model's ``split``: Hodgkin–Huxley v | m, h, n;
Izhikevich v | u): sub-flow Φᵢ(h) advances group i with every other state frozen. Lie (first order):
Φ₁(h) ∘ … then Φ₂(h), Φ₃(h), … applied in order from the same start time; Strang (second order): the later
groups over the first half step, the first group over the whole step, the later groups (reversed) over the second
half (G. Strang, SIAM J. Numer. Anal. 5 (1968) 506; Hairer, Lubich & Wanner, *Geometric Numerical Integration*,
ch. II.5). A stage is (group index, start fraction, length fraction); :func:`compose` runs the stages with any
sub-flow solver: the exact sub-flows of the ``strang`` method, or a PINN per stage (``splitting-pinn``).
"""

from __future__ import annotations

from typing import Callable

SPLITTINGS = ("lie", "strang")


def stages(splitting: str, n_groups: int) -> tuple[tuple[int, float, float], ...]:
    """The (group, start fraction, length fraction) of each sub-flow of one step, in the order applied."""
    if splitting == "lie":
        return tuple((g, 0.0, 1.0) for g in range(n_groups))
    if splitting == "strang":
        rest = tuple(range(1, n_groups))
        return (*((g, 0.0, 0.5) for g in rest), (0, 0.0, 1.0), *((g, 0.5, 0.5) for g in reversed(rest)))
    raise ValueError(f"splitting {splitting!r}: use {' or '.join(SPLITTINGS)}")


def compose(step_stages, y, t, h, solve: Callable):
    """Apply the sub-flows of one step: ``solve(stage_number, group, start_time, length, y)`` returns the new
    full state (and anything else, collected in order)."""
    extras = []
    for number, (group, start, length) in enumerate(step_stages):
        y, extra = solve(number, group, t + start * h, length * h, y)
        extras.append(extra)
    return y, extras

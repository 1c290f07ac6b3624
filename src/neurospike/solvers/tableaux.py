"""Explicit Runge–Kutta methods as data: a Butcher tableau, its order and its dense interpolant.

One stepper (:class:`neurospike.solvers.methods.ExplicitRungeKutta`) runs every tableau, as diffrax does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ButcherTableau:
    """Stages k_i = f(t + c_i h, y + h Σ_j a_ij k_j); y_{n+1} = y_n + h Σ_i b_i k_i."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    order: int
    interpolation: str  # "linear" or "hermite" (cubic Hermite on y and f at both ends of the step)


# Forward Euler: one stage, order 1.
EULER = ButcherTableau(a=((),), b=(1.0,), c=(0.0,), order=1, interpolation="linear")

# Explicit midpoint rule (RK2): two stages, order 2.
MIDPOINT = ButcherTableau(a=((), (0.5,)), b=(0.0, 1.0), c=(0.0, 0.5), order=2, interpolation="hermite")

# Heun's method (explicit trapezoidal rule): two stages, order 2.
HEUN = ButcherTableau(a=((), (1.0,)), b=(0.5, 0.5), c=(0.0, 1.0), order=2, interpolation="hermite")

# The classical Runge–Kutta method: four stages, order 4.
RK4 = ButcherTableau(
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    c=(0.0, 0.5, 0.5, 1.0),
    order=4,
    interpolation="hermite",
)

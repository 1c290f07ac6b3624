"""One-step methods. Each has ``step(field, t, y, h) -> y_next`` for a state vector ``y`` of shape (n_states,),
an ``order`` and an ``interpolation`` ("linear" or "hermite") used for event location and dense output.

``field(t, y)`` is a :class:`VectorField`: the model's right-hand side with parameters and input bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

from . import splitting
from .tableaux import EULER, HEUN, MIDPOINT, RK4, ButcherTableau


@dataclass(frozen=True)
class VectorField:
    """f(t, y) = model.derivatives(t, y, params, I(t)), with the current evaluated on the piece holding ``t_ref``."""

    derivatives: Callable
    params: Any
    current: Any
    t_ref: Any
    groups: tuple[tuple[int, ...], ...] | None = None

    def __call__(self, t, y):
        current = self.current(t, self.t_ref, jnp)
        return jnp.stack(self.derivatives(t, tuple(y[i] for i in range(y.shape[0])), self.params, current, jnp))


def phi1(z):
    """φ1(z) = (e^z − 1)/z, exact at z = 0."""
    small = jnp.abs(z) < 1e-8
    safe = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 + z / 2, jnp.expm1(safe) / safe)


@dataclass(frozen=True)
class ExplicitRungeKutta:
    """An explicit Runge–Kutta method given by its Butcher tableau (order and stages from the tableau)."""

    name: str
    tableau: ButcherTableau

    @property
    def order(self) -> int:
        return self.tableau.order

    @property
    def interpolation(self) -> str:
        return self.tableau.interpolation

    def step(self, field, t, y, h):
        stages = []
        for a_row, c_i in zip(self.tableau.a, self.tableau.c):
            y_stage = y
            for a_ij, k_j in zip(a_row, stages):
                if a_ij != 0.0:
                    y_stage = y_stage + (h * a_ij) * k_j
            stages.append(field(t + c_i * h, y_stage))
        increment = sum(b_i * k_i for b_i, k_i in zip(self.tableau.b, stages) if b_i != 0.0)
        return y + h * increment


@dataclass(frozen=True)
class SequentialEuler:
    """Forward Euler updating the states one after another, each from the newest values of the earlier ones
    (v first, then u from the new v): the scheme of Izhikevich's figure1.m. Order 1.

    Like figure1.m it reads the input at the start of each step (``if t > T1``), so input jumps are not grid
    nodes and a pulse acts from the first step that starts after its onset."""

    name: str = "euler-sequential"
    input_at_step_start: bool = True
    order: int = 1
    interpolation: str = "linear"

    def step(self, field, t, y, h):
        for i in range(y.shape[0]):
            y = y.at[i].set(y[i] + h * field(t, y)[i])
        return y


@dataclass(frozen=True)
class BackwardEuler:
    """Backward (implicit) Euler, y_{n+1} = y_n + h f(t_{n+1}, y_{n+1}), solved by :func:`newton` from the
    explicit Euler predictor until the update is below ``tol`` (relative to 1 + |y|) or ``max_iter`` iterations
    (the predictor itself where Newton finds no finite root). Order 1."""

    name: str = "backward-euler"
    order: int = 1
    interpolation: str = "linear"
    tol: float = 1e-12
    max_iter: int = 50

    def step(self, field, t, y, h):
        t_next = t + h
        return newton(lambda z: z - y - h * field(t_next, z), y + h * field(t, y), self.tol, self.max_iter)


def newton(residual, start, tol=1e-12, max_iter=50):
    """Newton's method on the JAX Jacobian of ``residual`` from ``start``, until the update is below ``tol``
    relative to 1 + |z| or after ``max_iter`` iterations.

    If it does not converge to a finite root, ``start`` (the callers' explicit predictor) is returned; on an
    explosive upstroke that value crosses the spike threshold inside the step, and the spike is located there.
    Why: docs/design.md#newtons-fallback-to-the-explicit-predictor

    Derivatives are implicit (``jax.lax.custom_root``): dz = −J(z)⁻¹ (∂residual/∂inputs · d inputs) at the root,
    in forward and reverse mode, without differentiating the iterations (the while loop, which reverse mode
    could not go through)."""

    def solve(function, guess):
        def iterate(state):
            z, iteration, _ = state
            update = jnp.linalg.solve(jax.jacfwd(function)(z), -function(z))
            return z + update, iteration + 1, jnp.max(jnp.abs(update) / (1.0 + jnp.abs(z)))

        def unconverged(state):
            _, iteration, size = state
            return (iteration < max_iter) & (size > tol)

        z, _, size = jax.lax.while_loop(unconverged, iterate, (guess, 0, jnp.inf))
        finite = jnp.all(jnp.isfinite(z))  # else the guess: the derivative there (not used) stays finite
        return jnp.where(finite, z, guess), jnp.where(finite, size, jnp.inf)

    def tangent_solve(linear, b):
        return jnp.linalg.solve(jax.jacfwd(linear)(b), b)

    z, size = jax.lax.custom_root(residual, start, solve, tangent_solve, has_aux=True)
    converged = jax.lax.stop_gradient(size <= tol)
    return jnp.where(converged, z, start)


EXPLOSIVE_GROWTH = 20.0  # exp-euler: largest h·∂f_i/∂y_i for which the linearised step is used


@dataclass(frozen=True)
class ExponentialEuler:
    """Exponential Euler ("ExpRESS-Euler" of the seed study; the exponential Rosenbrock–Euler method, Hochbruck &
    Ostermann, Acta Numerica 19 (2010) 209): y_{n+1} = y_n + h φ1(h J_n) f(t_n, y_n), with J_n the JAX Jacobian
    and φ1 from the exponential of the augmented matrix [[hJ, hf], [0, 0]]. Exact for linear autonomous
    problems; order 1 in general (order 2 for autonomous problems). Where some h·∂f_i/∂y_i exceeds
    ``EXPLOSIVE_GROWTH`` or the result is not finite, the step is explicit Euler instead.
    Why: docs/design.md#exp-eulers-fallback-to-explicit-euler"""

    name: str = "exp-euler"
    order: int = 1
    interpolation: str = "hermite"

    def step(self, field, t, y, h):
        n = y.shape[0]
        slope = field(t, y)
        jacobian = jax.jacfwd(lambda z: field(t, z))(y)
        augmented = jnp.zeros((n + 1, n + 1), dtype=y.dtype)
        augmented = augmented.at[:n, :n].set(h * jacobian).at[:n, n].set(h * slope)
        advanced = y + jax.scipy.linalg.expm(augmented)[:n, n]
        trusted = jnp.all(jnp.isfinite(advanced)) & (jnp.max(h * jnp.diagonal(jacobian)) <= EXPLOSIVE_GROWTH)
        return jnp.where(trusted, advanced, y + h * slope)


def exact_subflow(field, t_mid, y, h, group):
    """Advance the states in ``group`` by ``h`` with all other states (and the input, taken at ``t_mid``) frozen.

    Exact when each state of the group obeys dy_i/dt = a_i y_i + b_i with a_i, b_i fixed while the others are
    frozen: y_i(h) = y_i + h φ1(h a_i) f_i(y), with a_i = ∂f_i/∂y_i from a JAX forward-mode derivative.
    """
    index = jnp.asarray(group)
    slope = field(t_mid, y)
    diagonal = jnp.stack([jax.jvp(lambda z: field(t_mid, z)[i], (y,), (jnp.zeros_like(y).at[i].set(1.0),))[1]
                          for i in group])
    return y.at[index].set(y[index] + h * phi1(h * diagonal) * slope[index])


@dataclass(frozen=True)
class Strang:
    """Strang splitting with exact sub-flows for conditionally linear models (the model's ``split``): the later
    groups half a step, the first group a full step, the later groups half a step again (Hodgkin–Huxley: gates
    h/2 with v frozen, v over h with the gates frozen, gates h/2); each sub-flow is :func:`exact_subflow` with the
    input at its midpoint. Order 2 (G. Strang, SIAM J. Numer. Anal. 5 (1968) 506; :mod:`.splitting`)."""

    name: str = "strang"
    order: int = 2
    interpolation: str = "hermite"

    def step(self, field, t, y, h):
        def solve(number, group, start, length, y):
            return exact_subflow(field, start + length / 2, y, length, field.groups[group]), None

        return splitting.compose(splitting.stages("strang", len(field.groups)), y, t, h, solve)[0]

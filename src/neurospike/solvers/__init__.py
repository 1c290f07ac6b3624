"""Solvers: fixed-step methods (one time loop, methods as data) and the adaptive scipy reference."""

from .methods import VectorField
from .tableaux import EULER, HEUN, MIDPOINT, RK4, ButcherTableau

__all__ = ["VectorField", "ButcherTableau", "EULER", "MIDPOINT", "HEUN", "RK4"]

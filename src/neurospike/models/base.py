"""What a neuron model is: equations, states, parameters, spike rule and presets, all as data.

A model's right-hand side is written once, in plain arithmetic over a math namespace ``xp``
(``jax.numpy`` for the compiled solvers, ``numpy`` for the scipy reference), and returns one
derivative per state. Solvers only ever see a :class:`Model`; none of them knows a model by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import NeurospikeError, closest

Derivatives = Callable[..., tuple]  # (t, states tuple, params mapping, I, xp) -> tuple of derivatives
ResetMap = Callable[[tuple, Mapping[str, Any]], tuple]  # (states tuple, params) -> states tuple


@dataclass(frozen=True)
class Parameter:
    """A model parameter: default value, unit, meaning and a sensible range (for sliders and checks)."""

    default: float
    unit: str
    description: str = ""
    range: tuple[float, float] | None = None


@dataclass(frozen=True)
class SpikeRule:
    """When a spike happens and what it does.

    A spike is the upward crossing of ``state`` through the level given by parameter ``level``.
    With a ``reset`` map the state jumps there (integrate-and-fire style); without one the crossing
    is only recorded (Hodgkin–Huxley, FitzHugh–Nagumo). ``refractory`` names a parameter (ms)
    during which the state is held after a reset. ``explosive`` marks an upstroke that blows up in finite time
    (exponential integrate-and-fire): near the level the right-hand side is ~10^9 times its size elsewhere.
    """

    state: str
    level: str
    reset: ResetMap | None = None
    refractory: str | None = None
    explosive: bool = False


@dataclass(frozen=True)
class Preset:
    """A named experiment: parameter values, initial state, input current, duration and a usual step."""

    name: str
    description: str
    params: Mapping[str, float] = field(default_factory=dict)
    initial: Mapping[str, float] | None = None
    current: Any = None  # a neurospike.currents current; None = no input
    t_end: float = 100.0
    dt: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Model:
    """A neuron model: ``dy/dt = derivatives(t, y, params, I, xp)`` plus its spike rule.

    ``split`` groups the states into sub-problems for operator splitting; ``conditionally_linear``
    says each group's equations are linear (diagonal) in that group's states while the other
    groups are frozen, which makes exact sub-flows available (Strang splitting of Hodgkin–Huxley).
    """

    name: str
    title: str
    states: tuple[str, ...]
    state_units: tuple[str, ...]
    params: Mapping[str, Parameter]
    derivatives: Derivatives
    initial_state: Callable[[Mapping[str, Any], Any], tuple]  # (params, xp) -> states tuple
    spike: SpikeRule | None
    presets: Mapping[str, Preset]
    default_preset: str
    current_unit: str = ""
    time_unit: str = "ms"
    split: tuple[tuple[str, ...], ...] | None = None
    conditionally_linear: bool = False
    nullclines: Callable[..., tuple] | None = None  # (v array, params, I) -> recovery-variable values of each nullcline
    reference: str = ""
    equations: str = ""  # plain text for people (`neurospike models NAME`), "; " between equations
    state_scales: tuple[float, ...] | None = None  # typical range of each state over a run (PINN output scaling)
    pinn_window: float = 1.0  # ms: default window of the marching PINNs (short enough for one network to fit)

    def __post_init__(self):
        if self.split is not None:
            named = [s for group in self.split for s in group]
            unknown = [s for s in named if s not in self.states]
            if unknown:
                raise NeurospikeError(f"model {self.name!r}: split names unknown state {unknown[0]!r}; states are "
                                      f"{', '.join(self.states)}")
            if sorted(named) != sorted(self.states) or any(not group for group in self.split):
                raise NeurospikeError(f"model {self.name!r}: split={self.split!r} must name every state exactly "
                                      f"once, in non-empty groups ({', '.join(self.states)})")
        if self.state_scales is not None and len(self.state_scales) != len(self.states):
            raise NeurospikeError(f"model {self.name!r}: state_scales={self.state_scales!r} needs one value per "
                                  f"state ({', '.join(self.states)})")

    @property
    def n_states(self) -> int:
        return len(self.states)

    def defaults(self) -> dict[str, float]:
        return {name: p.default for name, p in self.params.items()}

    def state_index(self, name: str) -> int:
        if name not in self.states:
            raise NeurospikeError(
                f"unknown state {name!r} for model {self.name!r}{closest(name, self.states)}; "
                f"states are {', '.join(self.states)}"
            )
        return self.states.index(name)

    def preset(self, name: str | None) -> Preset:
        name = self.default_preset if name is None else name
        if name not in self.presets:
            raise NeurospikeError(
                f"unknown preset {name!r} for model {self.name!r}{closest(name, self.presets)}; "
                f"presets are {', '.join(self.presets)}"
            )
        return self.presets[name]

    def with_defaults(self, **overrides: float) -> "Model":
        """The same model with other parameter defaults: ``models.get("hh", g_Na=100)``."""
        params = dict(self.params)
        for name, value in overrides.items():
            if name not in params:
                raise NeurospikeError(
                    f"unknown parameter {name!r} for model {self.name!r}{closest(name, params)}; "
                    f"parameters are {', '.join(params)}"
                )
            params[name] = dataclasses.replace(params[name], default=float(value))
        return dataclasses.replace(self, params=params)

"""FitzHugh–Nagumo model (dimensionless).

    dv/dt = v − v³/3 − w + I,    dw/dt = (v + a − b w) / τ.

R. FitzHugh, Biophys. J. 1 (1961) 445; J. Nagumo, S. Arimoto, S. Yoshizawa, Proc. IRE 50 (1962) 2061.
Standard values a = 0.7, b = 0.8, τ = 12.5. A spike is an upward crossing of ``v_spike`` (no reset).
"""

from .. import currents
from .base import Model, Parameter, Preset, SpikeRule


def derivatives(t, state, p, I, xp):
    v, w = state
    return v - v**3 / 3 - w + I, (v + p["a"] - p["b"] * w) / p["tau"]


def rest_state(p, xp):
    """The resting point for I = 0, where the nullclines w = v − v³/3 and v + a = b w meet: Newton's method on
    v + a − b (v − v³/3) = 0 from v = −1.2 (no division by b, so b = 0 rests at v = −a). A flat Newton step
    gives a non-finite state (xp arithmetic, no exception), which the caller reports."""
    v = xp.asarray(-1.2 + 0 * p["a"] + 0 * p["b"], dtype=float)
    for _ in range(12):
        v = v - (v + p["a"] - p["b"] * (v - v**3 / 3)) / (1 - p["b"] * (1 - v**2))
    return v, v - v**3 / 3


def nullclines(v, p, I):
    return v - v**3 / 3 + I, (v + p["a"]) / p["b"]


MODEL = Model(
    name="fhn",
    title="FitzHugh–Nagumo",
    states=("v", "w"),
    state_units=("1", "1"),
    params={
        "a": Parameter(0.7, "1", "recovery offset", (-1.0, 2.0)),
        "b": Parameter(0.8, "1", "recovery coupling", (0.0, 2.0)),
        "tau": Parameter(12.5, "1", "recovery time scale", (1.0, 100.0)),
        "v_spike": Parameter(1.0, "1", "spike detection level (upward crossing)", (-1.0, 2.0)),
    },
    derivatives=derivatives,
    initial_state=rest_state,
    spike=SpikeRule(state="v", level="v_spike"),
    presets={
        "oscillating": Preset(
            name="oscillating",
            description="I = 0.5: relaxation oscillations (limit cycle)",
            current=currents.constant(0.5),
            t_end=200.0,
            dt=0.01,
        ),
        "rest": Preset(
            name="rest",
            description="I = 0: the stable rest state",
            current=currents.constant(0.0),
            t_end=100.0,
            dt=0.01,
        ),
    },
    default_preset="oscillating",
    current_unit="1",
    time_unit="1",
    state_scales=(4.0, 2.0),
    split=(("v",), ("w",)),
    nullclines=nullclines,
    reference="R. FitzHugh, Biophys. J. 1 (1961) 445; Nagumo et al., Proc. IRE 50 (1962) 2061",
    equations="dv/dt = v − v³/3 − w + I; dw/dt = (v + a − b w)/tau",
)

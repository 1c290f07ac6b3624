"""Izhikevich (2007) simple model in its dimensional form.

    C dv/dt = k (v − vr)(v − vt) − w + I,    dw/dt = a (b (v − vr) − w),
    if v ≥ vpeak:  v ← c,  w ← w + d.

E. M. Izhikevich, *Dynamical Systems in Neuroscience*, MIT Press 2007, ch. 8. The ``rs`` preset is Table I of
"Learning to Spike" (the regular-spiking cell, Schiesser's form): v(0) = −60 mV, w(0) = 0, a 70 pA step at 101 ms.
"""

from .. import currents
from .base import Model, Parameter, Preset, SpikeRule


def derivatives(t, state, p, I, xp):
    v, w = state
    dv = (p["k"] * (v - p["vr"]) * (v - p["vt"]) - w + I) / p["C"]
    dw = p["a"] * (p["b"] * (v - p["vr"]) - w)
    return dv, dw


def reset(state, p):
    v, w = state
    return p["c"] + 0 * v, w + p["d"]


def nullclines(v, p, I):
    """w on the v-nullcline and on the w-nullcline."""
    return p["k"] * (v - p["vr"]) * (v - p["vt"]) + I, p["b"] * (v - p["vr"])


MODEL = Model(
    name="izhikevich2007",
    title="Izhikevich 2007 (C, k, vr, vt form)",
    states=("v", "w"),
    state_units=("mV", "pA"),
    params={
        "C": Parameter(100.0, "pF", "membrane capacitance", (10.0, 500.0)),
        "k": Parameter(0.7, "nS/mV", "gain of the quadratic current", (0.1, 3.0)),
        "vr": Parameter(-60.0, "mV", "resting potential", (-80.0, -40.0)),
        "vt": Parameter(-40.0, "mV", "instantaneous threshold potential", (-60.0, -20.0)),
        "vpeak": Parameter(35.0, "mV", "spike cut-off (reset level)", (0.0, 60.0)),
        "a": Parameter(0.03, "1/ms", "recovery time constant", (0.001, 0.5)),
        "b": Parameter(-2.0, "nS", "sensitivity of w to v", (-5.0, 20.0)),
        "c": Parameter(-50.0, "mV", "voltage reset", (-80.0, -30.0)),
        "d": Parameter(100.0, "pA", "after-spike jump of w", (-50.0, 300.0)),
    },
    derivatives=derivatives,
    initial_state=lambda p, xp: (p["vr"], 0.0 * p["vr"]),
    spike=SpikeRule(state="v", level="vpeak", reset=reset),
    presets={
        "rs": Preset(
            name="rs",
            description="regular spiking, Table I of 'Learning to Spike': 0 -> 70 pA step at 101 ms",
            initial={"v": -60.0, "w": 0.0},
            current=currents.step(start=101.0, amplitude=70.0),
            t_end=1000.0,
            dt=0.1,
            source="Learning to Spike, Table I; Izhikevich 2007",
        ),
    },
    default_preset="rs",
    current_unit="pA",
    state_scales=(100.0, 100.0),
    split=(("v",), ("w",)),
    nullclines=nullclines,
    reference="E. M. Izhikevich, Dynamical Systems in Neuroscience, MIT Press (2007), ch. 8",
    equations=("C dv/dt = k (v − vr)(v − vt) − w + I; "
               "dw/dt = a (b (v − vr) − w); "
               "if v ≥ vpeak: v ← c, w ← w + d"),
)

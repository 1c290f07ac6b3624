"""Adaptive exponential integrate-and-fire model (AdEx).

    C dv/dt = −g_L (v − E_L) + g_L Δ_T exp((v − V_T)/Δ_T) − w + I,
    τ_w dw/dt = a (v − E_L) − w,
    if v ≥ v_peak:  v ← v_reset,  w ← w + b.

R. Brette & W. Gerstner, J. Neurophysiol. 94 (2005) 3637, with their standard parameters (Table 1).
Units: pF, nS, mV, pA, ms.
"""

from .. import currents
from .base import Model, Parameter, Preset, SpikeRule


def derivatives(t, state, p, I, xp):
    v, w = state
    # the right-hand side sees min(v, v_peak), as NEST's aeif models do: the exact solution never sees the cap,
    # overshooting trial stages would overflow exp (why: docs/design.md#the-capped-right-hand-side)
    v = xp.minimum(v, p["v_peak"])
    exponential = p["g_L"] * p["Delta_T"] * xp.exp((v - p["V_T"]) / p["Delta_T"])
    dv = (-p["g_L"] * (v - p["E_L"]) + exponential - w + I) / p["C"]
    dw = (p["a"] * (v - p["E_L"]) - w) / p["tau_w"]
    return dv, dw


def reset(state, p):
    v, w = state
    return p["v_reset"] + 0 * v, w + p["b"]


def nullclines(v, p, I):
    import numpy as np

    v_null = -p["g_L"] * (v - p["E_L"]) + p["g_L"] * p["Delta_T"] * np.exp((v - p["V_T"]) / p["Delta_T"]) + I
    return v_null, p["a"] * (v - p["E_L"])


MODEL = Model(
    name="adex",
    title="Adaptive exponential integrate-and-fire (Brette & Gerstner 2005)",
    states=("v", "w"),
    state_units=("mV", "pA"),
    params={
        "C": Parameter(281.0, "pF", "membrane capacitance", (50.0, 500.0)),
        "g_L": Parameter(30.0, "nS", "leak conductance", (1.0, 100.0)),
        "E_L": Parameter(-70.6, "mV", "leak reversal potential", (-90.0, -50.0)),
        "V_T": Parameter(-50.4, "mV", "threshold slope factor centre", (-65.0, -35.0)),
        "Delta_T": Parameter(2.0, "mV", "slope factor", (0.2, 6.0)),
        "tau_w": Parameter(144.0, "ms", "adaptation time constant", (5.0, 500.0)),
        "a": Parameter(4.0, "nS", "subthreshold adaptation", (-10.0, 50.0)),
        "b": Parameter(80.5, "pA", "spike-triggered adaptation", (0.0, 300.0)),
        "v_reset": Parameter(-70.6, "mV", "reset potential", (-90.0, -40.0)),
        "v_peak": Parameter(20.0, "mV", "spike cut-off", (-20.0, 40.0)),
    },
    derivatives=derivatives,
    initial_state=lambda p, xp: (p["E_L"], 0.0 * p["E_L"]),
    spike=SpikeRule(state="v", level="v_peak", reset=reset, explosive=True),
    presets={
        "adapting": Preset(
            name="adapting",
            description="1 nA step at 20 ms: adapting tonic firing",
            current=currents.step(start=20.0, amplitude=1000.0),
            t_end=500.0,
            dt=0.01,
            source="Brette & Gerstner 2005",
        ),
    },
    default_preset="adapting",
    current_unit="pA",
    state_scales=(100.0, 300.0),
    split=(("v",), ("w",)),
    nullclines=nullclines,
    reference="R. Brette, W. Gerstner, J. Neurophysiol. 94 (2005) 3637",
    equations=("C dv/dt = −g_L (v − E_L) + g_L Delta_T exp((v − V_T)/Delta_T) − w + I; "
               "tau_w dw/dt = a (v − E_L) − w; "
               "if v ≥ v_peak: v ← v_reset, w ← w + b (the right-hand side sees min(v, v_peak))"),
)

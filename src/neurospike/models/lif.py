"""Leaky integrate-and-fire neuron.

    C dv/dt = −g_L (v − E_L) + I,    if v ≥ v_th:  v ← v_reset, held for t_ref.

Lapicque (1907); in the form of Gerstner et al., *Neuronal Dynamics*, CUP 2014, ch. 1. Units: nF, µS, mV, nA, ms.
"""

from .. import currents
from .base import Model, Parameter, Preset, SpikeRule


def derivatives(t, state, p, I, xp):
    (v,) = state
    return ((-p["g_L"] * (v - p["E_L"]) + I) / p["C"],)


def reset(state, p):
    (v,) = state
    return (p["v_reset"] + 0 * v,)


MODEL = Model(
    name="lif",
    title="Leaky integrate-and-fire",
    states=("v",),
    state_units=("mV",),
    params={
        "C": Parameter(1.0, "nF", "membrane capacitance", (0.1, 10.0)),
        "g_L": Parameter(0.1, "µS", "leak conductance", (0.01, 1.0)),
        "E_L": Parameter(-70.0, "mV", "leak reversal (resting) potential", (-90.0, -50.0)),
        "v_th": Parameter(-50.0, "mV", "firing threshold", (-70.0, -30.0)),
        "v_reset": Parameter(-70.0, "mV", "reset potential", (-90.0, -50.0)),
        "t_ref": Parameter(0.0, "ms", "absolute refractory period", (0.0, 10.0)),
    },
    derivatives=derivatives,
    initial_state=lambda p, xp: (p["E_L"],),
    spike=SpikeRule(state="v", level="v_th", reset=reset, refractory="t_ref"),
    presets={
        "tonic": Preset(
            name="tonic",
            description="constant 2.5 nA: regular firing (v_inf = -45 mV lies above threshold)",
            current=currents.constant(2.5),
            t_end=200.0,
            dt=0.1,
        ),
        "subthreshold": Preset(
            name="subthreshold",
            description="constant 1.5 nA: relaxes to -55 mV without firing",
            current=currents.constant(1.5),
            t_end=100.0,
            dt=0.1,
        ),
    },
    default_preset="tonic",
    current_unit="nA",
    state_scales=(20.0,),
    split=(("v",),),
    conditionally_linear=True,
    reference="L. Lapicque (1907); W. Gerstner et al., Neuronal Dynamics, CUP (2014), ch. 1",
    equations="C dv/dt = −g_L (v − E_L) + I; if v ≥ v_th: v ← v_reset, held there for t_ref",
)

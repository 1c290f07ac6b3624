"""Izhikevich (2003) simple model, with the 20 firing patterns of Izhikevich (2004), Figure 1.

    dv/dt = k2 v² + k1 v + k0 − u + I,    du/dt = a (b (v − v_u) − u_leak · u),
    if v ≥ 30 mV:  v ← c,  u ← u + d.

The standard model is k2 = 0.04, k1 = 5, k0 = 140, v_u = 0, u_leak = 1 (E. M. Izhikevich, IEEE Trans. Neural
Networks 14 (2003) 1569). Figure 1 of Izhikevich, IEEE Trans. Neural Networks 15 (2004) 1063 uses two variants,
kept here as parameter values: "quadratic_4.1_108" (k1 = 4.1, k0 = 108; class 1 excitability, integrator) and
"accommodation_u" (du/dt = a b (v + 65): v_u = −65, u_leak = 0). The presets are the figure's patterns
(parameters, initial states, input currents and step sizes as in the author's figure1.m), shipped as package data.
"""

import json
from importlib import resources

from .. import currents
from .base import Model, Parameter, Preset, SpikeRule

VARIANTS = {
    "standard": {},
    "quadratic_4.1_108": {"k1": 4.1, "k0": 108.0},
    "accommodation_u": {"v_u": -65.0, "u_leak": 0.0},
}


def derivatives(t, state, p, I, xp):
    v, u = state
    dv = p["k2"] * v * v + p["k1"] * v + p["k0"] - u + I
    du = p["a"] * (p["b"] * (v - p["v_u"]) - p["u_leak"] * u)
    return dv, du


def reset(state, p):
    v, u = state
    return p["c"] + 0 * v, u + p["d"]


def nullclines(v, p, I):
    return p["k2"] * v * v + p["k1"] * v + p["k0"] + I, p["b"] * (v - p["v_u"]) / p["u_leak"]


def _figure1_presets() -> dict[str, Preset]:
    data = json.loads(resources.files("neurospike").joinpath("data/izhikevich2004_fig1.json").read_text())
    presets = {}
    for pattern in data["patterns"]:
        params = {name: float(pattern[name]) for name in "abcd"}
        params.update(VARIANTS[pattern["variant"]])
        u0 = pattern["b"] * pattern["v0"] if pattern["u0"] is None else pattern["u0"]
        presets[pattern["name"]] = Preset(
            name=pattern["name"],
            description=f"Izhikevich 2004 Fig. 1({pattern['id']}): {pattern['name'].replace('_', ' ')}"
            + ("" if pattern["variant"] == "standard" else f" [{pattern['variant']} variant]"),
            params=params,
            initial={"v": float(pattern["v0"]), "u": float(u0)},
            current=currents.from_segments(pattern["current"]),
            t_end=float(pattern["t_end"]),
            dt=float(pattern["dt"]),
            source=f"Izhikevich 2004, Fig. 1({pattern['id']}), figure1.m",
        )
    return presets


MODEL = Model(
    name="izhikevich",
    title="Izhikevich 2003 simple model",
    states=("v", "u"),
    state_units=("mV", "mV/ms"),
    params={
        "a": Parameter(0.02, "1/ms", "time scale of the recovery variable u", (-0.1, 1.0)),
        "b": Parameter(0.2, "1", "sensitivity of u to v", (-1.5, 1.5)),
        "c": Parameter(-65.0, "mV", "after-spike reset of v", (-80.0, -30.0)),
        "d": Parameter(8.0, "mV/ms", "after-spike jump of u", (-25.0, 20.0)),
        "k2": Parameter(0.04, "1/(mV·ms)", "quadratic coefficient", (0.01, 0.1)),
        "k1": Parameter(5.0, "1/ms", "linear coefficient", (3.0, 7.0)),
        "k0": Parameter(140.0, "mV/ms", "constant term", (80.0, 200.0)),
        "v_u": Parameter(0.0, "mV", "offset of v in du/dt (−65 in the accommodation variant)", (-80.0, 0.0)),
        "u_leak": Parameter(1.0, "1", "decay of u in du/dt (0 in the accommodation variant)", (0.0, 1.0)),
        "v_peak": Parameter(30.0, "mV", "spike cut-off", (0.0, 50.0)),
    },
    derivatives=derivatives,
    initial_state=lambda p, xp: (-65.0 + 0 * p["b"], -65.0 * p["b"]),
    spike=SpikeRule(state="v", level="v_peak", reset=reset),
    presets=_figure1_presets(),
    default_preset="tonic_spiking",
    current_unit="pA (dimensionless in the 2003 paper)",
    state_scales=(100.0, 20.0),
    split=(("v",), ("u",)),
    nullclines=nullclines,
    reference="E. M. Izhikevich, IEEE TNN 14 (2003) 1569; IEEE TNN 15 (2004) 1063",
    equations=("dv/dt = k2 v² + k1 v + k0 − u + I; "
               "du/dt = a (b (v − v_u) − u_leak u); "
               "if v ≥ v_peak: v ← c, u ← u + d"),
)

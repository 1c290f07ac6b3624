"""Hodgkin–Huxley (1952) squid giant axon, modern convention (rest ≈ −65 mV).

    C_m dv/dt = I − g_Na m³h (v − E_Na) − g_K n⁴ (v − E_K) − g_L (v − E_L),
    dx/dt = α_x(v)(1 − x) − β_x(v) x   for x = m, h, n,

    α_m = 0.1 (v+40)/(1 − e^{−(v+40)/10}),  β_m = 4 e^{−(v+65)/18},
    α_h = 0.07 e^{−(v+65)/20},              β_h = 1/(1 + e^{−(v+35)/10}),
    α_n = 0.01 (v+55)/(1 − e^{−(v+55)/10}), β_n = 0.125 e^{−(v+65)/80}.

A. L. Hodgkin & A. F. Huxley, J. Physiol. 117 (1952) 500; rates as in Gerstner et al., *Neuronal Dynamics*
(2014), Table 2.1 / Dayan & Abbott (2001). The removable singularities of α_m and α_n at v = −40 and −55 mV
are evaluated through x/(1 − e^{−x}) with its Taylor series near 0, so they are exact there.
Units: µF/cm², mS/cm², mV, µA/cm², ms. A spike is an upward crossing of ``v_spike`` (no reset).
The model is conditionally linear: v is linear with the gates frozen and each gate is linear with v frozen.
"""

from .. import currents
from .base import Model, Parameter, Preset, SpikeRule


def x_over_one_minus_exp(x, xp):
    """x / (1 − e^{−x}), exact at x = 0 (value 1) and safe under autodiff."""
    small = xp.abs(x) < 1e-5
    safe = xp.where(small, 1.0, x)
    return xp.where(small, 1.0 + x / 2 + x * x / 12, safe / (-xp.expm1(-safe)))


def rates(v, xp):
    alpha_m = x_over_one_minus_exp((v + 40.0) / 10.0, xp)
    beta_m = 4.0 * xp.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * xp.exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (1.0 + xp.exp(-(v + 35.0) / 10.0))
    alpha_n = 0.1 * x_over_one_minus_exp((v + 55.0) / 10.0, xp)
    beta_n = 0.125 * xp.exp(-(v + 65.0) / 80.0)
    return (alpha_m, beta_m), (alpha_h, beta_h), (alpha_n, beta_n)


def derivatives(t, state, p, I, xp):
    v, m, h, n = state
    i_na = p["g_Na"] * m**3 * h * (v - p["E_Na"])
    i_k = p["g_K"] * n**4 * (v - p["E_K"])
    i_l = p["g_L"] * (v - p["E_L"])
    dv = (I - i_na - i_k - i_l) / p["C_m"]
    gates = tuple(alpha * (1.0 - x) - beta * x for x, (alpha, beta) in zip((m, h, n), rates(v, xp)))
    return (dv, *gates)


def steady_gates(v, xp):
    return tuple(alpha / (alpha + beta) for alpha, beta in rates(v, xp))


def initial_state(p, xp):
    return (p["v0"], *steady_gates(p["v0"], xp))


MODEL = Model(
    name="hh",
    title="Hodgkin–Huxley 1952 (squid axon)",
    states=("v", "m", "h", "n"),
    state_units=("mV", "1", "1", "1"),
    params={
        "C_m": Parameter(1.0, "µF/cm²", "membrane capacitance", (0.5, 2.0)),
        "g_Na": Parameter(120.0, "mS/cm²", "maximal sodium conductance", (0.0, 200.0)),
        "g_K": Parameter(36.0, "mS/cm²", "maximal potassium conductance", (0.0, 80.0)),
        "g_L": Parameter(0.3, "mS/cm²", "leak conductance", (0.0, 1.0)),
        "E_Na": Parameter(50.0, "mV", "sodium reversal potential", (30.0, 70.0)),
        "E_K": Parameter(-77.0, "mV", "potassium reversal potential", (-100.0, -60.0)),
        "E_L": Parameter(-54.387, "mV", "leak reversal potential", (-70.0, -40.0)),
        "v0": Parameter(-65.0, "mV", "initial potential (gates start at their steady state there)", (-80.0, -50.0)),
        "v_spike": Parameter(0.0, "mV", "spike detection level (upward crossing)", (-40.0, 30.0)),
    },
    derivatives=derivatives,
    initial_state=initial_state,
    spike=SpikeRule(state="v", level="v_spike"),
    presets={
        "tonic": Preset(
            name="tonic",
            description="constant 10 µA/cm²: repetitive firing",
            current=currents.constant(10.0),
            t_end=100.0,
            dt=0.01,
        ),
        "rest": Preset(
            name="rest",
            description="no input: rests at -65 mV",
            current=currents.constant(0.0),
            t_end=100.0,
            dt=0.01,
        ),
        "pulse": Preset(
            name="pulse",
            description="one 1 ms pulse of 20 µA/cm² at 10 ms: a single action potential",
            current=currents.pulses(start=10.0, width=1.0, period=1.0, amplitude=20.0, count=1),
            t_end=50.0,
            dt=0.01,
        ),
    },
    default_preset="tonic",
    current_unit="µA/cm²",
    pinn_window=0.2,  # short windows for the 1 ms upstroke (docs/design.md#the-hh-pinn-window)
    state_scales=(100.0, 1.0, 1.0, 1.0),
    split=(("v",), ("m", "h", "n")),
    conditionally_linear=True,
    reference="A. L. Hodgkin, A. F. Huxley, J. Physiol. 117 (1952) 500",
    equations=("C_m dv/dt = I − g_Na m³h (v − E_Na) − g_K n⁴ (v − E_K) − g_L (v − E_L); "
               "dx/dt = α_x(v) (1 − x) − β_x(v) x for x = m, h, n; "
               "α_m = 0.1 (v + 40)/(1 − exp(−(v + 40)/10)), β_m = 4 exp(−(v + 65)/18); "
               "α_h = 0.07 exp(−(v + 65)/20), β_h = 1/(1 + exp(−(v + 35)/10)); "
               "α_n = 0.01 (v + 55)/(1 − exp(−(v + 55)/10)), β_n = 0.125 exp(−(v + 65)/80)"),
)

"""The Izhikevich (2007) RS fit of benchmarks/fit.py done by brian2modelfitting, for the side-by-side timing.

    .venv-modelfitting/bin/python benchmarks/brian2modelfitting_izhikevich.py RECORDING.csv \
        --params k,a,b,c,d --bounds '{"k": [0.35, 1.05], ...}' --target 1.0,0.3 --budget 300 [--train-end 700]

Needs its own venv (brian2modelfitting 0.4 imports only with numpy < 2 and bayesian-optimization < 2, and the
nevergrad 0.3.0 it pins fits only with numpy < 1.24 (np.float); neurospike is not installed there):
``make .venv-modelfitting/.installed``. benchmarks/fit.py runs it by subprocess (``brian2modelfitting()``) and
reads the JSON object on the last line of stdout.

RECORDING.csv: header ``t,v,I``, comma-separated, t in ms (uniform step = the simulation step), v in mV, I in pA
(as ``numpy.savetxt(..., header="t,v,I", delimiter=",", comments="")`` writes it). I[i] is held over
[t_i, t_i+1) (a TimedArray), as neurospike's ``currents.sampled`` holds a step.

Model (Izhikevich 2007, RS preset; the parameters not fitted keep these values):
    C dv/dt = k (v − vr)(v − vt) − u + I,   du/dt = a (b (v − vr) − u),   v ≥ vpeak: v ← c, u ← u + d
    C = 100 pF, vr = −60 mV, vt = −40 mV, vpeak = 35 mV, k = 0.7 nS/mV, a = 0.03 /ms, b = −2 nS, c = −50 mV,
    d = 100 pA, v(0) = −60 mV (``--v0``), u(0) = 0.
Fitted the documented way: ``TraceFitter(model, input_var='I', input=..., output_var='v', output=..., dt,
n_samples, reset, threshold, refractory=False, method)`` (0.4's signature; later versions take
``input={'I': ...}, output={'v': ...}``) and ``fitter.fit(n_rounds, optimizer=NevergradOptimizer(...),
metric=MSEMetric(...), callback, **bounds)``; the callback records (wall seconds since start, best MSE so far) per
round and stops the fit at the smallest target or when the budget is spent. The clock starts before the
TraceFitter is built, so Brian2's code generation and compilation count (the first round includes them;
``first_round_s``). The simulation step is the recording's (TraceFitter simulates at the dt it samples at).

Trace error: brian2modelfitting's MSEMetric (normalization 1, no t_start) is the mean over the recorded
time points of (v_model − v_data)² in the model's SI units (volt²); the best error is divided by mV² here, which
gives neurospike's trace loss (1/N) Σ (v_model(t_i) − v_data(t_i))² in mV² over the same samples (t = 0 .. train
end, both ends included; Brian2's StateMonitor records v at t = i·dt before the step, the recording's samples).
With ``--spike-mask M --spikes t1,t2,..`` the samples within ±M ms of a given spike get weight 0 through the
metric's ``t_weights``, which it normalises to mean 1: Σ w e² / Σ w, neurospike's masked mean.

Brian2 tests v ≥ vpeak and resets once per step, at the end of the step where v crossed (no located events,
and the reset u + d takes u at the step's end), so at dt 0.1 ms its trace under the true parameters is off the
recording around every spike: on a 1000 ms RS recording (noise σ = 0.5 mV, floor 0.25 mV²) its MSE at the truth
is about 15 mV² over the whole trace (2.4 at --substeps 10), and 0.37 on 0-700 ms with the samples within ±2 ms
of a spike left out; neurospike's run at the same step gives 0.25. Code generation: Brian2's runtime ``cython``
target (the first round takes about 30 s on a first run, compiling, 4-7 s once ~/.cython holds the build; then
about 0.5 s a round of 30 runs of 1000 ms); ``numpy`` (no compiler) takes about 5 s a round.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

began = time.perf_counter()

import numpy as np  # noqa: E402

# The RS preset, in the units of neurospike's izhikevich2007 (pF, mV, nS/mV, 1/ms, nS, pA).
PRESET = {"k": 0.7, "a": 0.03, "b": -2.0, "c": -50.0, "d": 100.0}
UNITS = {"k": "nS/mV", "a": "1/ms", "b": "nS", "c": "mV", "d": "pA"}
DIMENSIONS = {"k": "siemens/volt", "a": "1/second", "b": "siemens", "c": "volt", "d": "amp"}


def model_strings(names):
    """Equations and reset with the fitted parameters declared and the others written in as constants."""
    literal = {name: f"({PRESET[name]!r}*{UNITS[name]})" for name in PRESET if name not in names}
    symbol = {name: literal.get(name, name) for name in PRESET}
    equations = (f"dv/dt = ({symbol['k']}*(v - (-60*mV))*(v - (-40*mV)) - u + I)/(100*pF) : volt\n"
                 f"du/dt = {symbol['a']}*({symbol['b']}*(v - (-60*mV)) - u) : amp\n")
    equations += "".join(f"{name} : {DIMENSIONS[name]} (constant)\n" for name in names)
    reset = f"v = {symbol['c']}\nu += {symbol['d']}"
    return equations, reset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recording", help="CSV with header t,v,I (ms, mV, pA)")
    parser.add_argument("--params", default="k,a,b,c,d", help="comma-separated names among k,a,b,c,d")
    parser.add_argument("--bounds", required=True,
                        help='JSON {"name": [low, high], ...} in nS/mV, 1/ms, nS, mV, pA')
    parser.add_argument("--target", default="1.0", help="target trace MSE(s) in mV², comma-separated; the fit "
                                                         "stops at the smallest")
    parser.add_argument("--budget", type=float, default=300.0, help="wall seconds (default 300)")
    parser.add_argument("--train-end", type=float, default=None, help="fit only t ≤ this (ms)")
    parser.add_argument("--n-samples", type=int, default=30, help="parameter sets per round (default 30)")
    parser.add_argument("--optimizer", default="DE", help="Nevergrad method (default DE, the documented default)")
    parser.add_argument("--integrator", default="rk4", help="Brian2 method (default rk4, as neurospike's fit)")
    parser.add_argument("--codegen", default="cython", choices=("cython", "numpy"),
                        help="Brian2 runtime code generation target (default cython)")
    parser.add_argument("--v0", type=float, default=-60.0, help="v(0) in mV (default −60, the preset's)")
    parser.add_argument("--spikes", default="", help="recorded spike times (ms), comma-separated, for --spike-mask")
    parser.add_argument("--spike-mask", type=float, default=0.0, help="leave out samples within ± this (ms) "
                                                                      "of --spikes")
    parser.add_argument("--substeps", type=int, default=1,
                        help="simulate at the recording's step / this (default 1: TraceFitter's dt is the "
                             "recording's); the MSE still counts the recorded samples only (t_weights)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import brian2
    import brian2modelfitting
    import nevergrad
    from brian2 import mV, ms, pA, prefs
    from brian2modelfitting import MSEMetric, NevergradOptimizer, TraceFitter

    prefs.codegen.target = args.codegen
    np.random.seed(args.seed)  # nevergrad 0.3 draws from numpy's global generator
    brian2.seed(args.seed)

    names = [name.strip() for name in args.params.split(",") if name.strip()]
    unknown = [name for name in names if name not in PRESET]
    if unknown:
        parser.error(f"unknown parameters {unknown}; use some of {', '.join(PRESET)}")
    bounds = json.loads(args.bounds)
    missing = [name for name in names if name not in bounds]
    if missing:
        parser.error(f"--bounds lacks {missing}")
    targets = sorted((float(x) for x in args.target.split(",")), reverse=True)

    data = np.loadtxt(args.recording, delimiter=",", skiprows=1)
    t, v, current = data[:, 0], data[:, 1], data[:, 2]
    if args.train_end is not None:
        keep = t <= args.train_end + 1e-9
        t, v, current = t[keep], v[keep], current[keep]
    step = round(float(np.median(np.diff(t))), 9)  # the CSV's decimal t: 0.1 ms, not 0.10000000000002
    if not np.allclose(np.diff(t), step, rtol=1e-6, atol=1e-9) or abs(t[0]) > 1e-9:
        sys.exit("the recording's t must start at 0 with a uniform step")

    weights = None
    if args.spike_mask > 0 and args.spikes:
        weights = np.ones_like(t)
        for s in (float(x) for x in args.spikes.split(",")):
            weights[np.abs(t - s) <= args.spike_mask] = 0.0
    n = args.substeps
    if n > 1:  # simulate at step/n: input and target held over each sample's interval, only the samples weighed
        current = np.repeat(current, n)[:(t.size - 1) * n + 1]
        target = np.repeat(v, n)[:(t.size - 1) * n + 1]
        sample_weights = np.zeros(target.size)
        sample_weights[::n] = 1.0 if weights is None else weights
        weights = sample_weights
    else:
        target = v

    equations, reset = model_strings(names)
    fitter = TraceFitter(model=equations, input_var="I", input=current[None, :] * pA, output_var="v",
                         output=target[None, :] * mV, dt=step / n * ms, n_samples=args.n_samples,
                         method=args.integrator,
                         threshold="v >= 35*mV", reset=reset, refractory=False,
                         param_init={"v": args.v0 * mV, "u": 0 * pA})

    history, reached = [], {}

    def callback(parameters, errors, best_parameters, best_error, index):
        seconds = time.perf_counter() - began
        mse = float(best_error / mV ** 2)  # volt² → mV² (see the module docstring)
        history.append([round(seconds, 3), mse])
        for level in targets:
            if mse <= level and level not in reached:
                reached[level] = seconds
        if len(reached) == len(targets):
            return True
        return seconds >= args.budget

    unit = {name: eval(UNITS[name], vars(brian2.units)) for name in names}  # e.g. "nS/mV" -> nS/mV
    quantity_bounds = {name: [float(bounds[name][0]) * unit[name], float(bounds[name][1]) * unit[name]]
                       for name in names}

    metric = MSEMetric(t_weights=weights) if weights is not None else MSEMetric()
    optimizer = NevergradOptimizer(method=args.optimizer)
    best, _ = fitter.fit(n_rounds=10 ** 9, optimizer=optimizer, metric=metric, callback=callback,
                         **quantity_bounds)
    best_params = {name: float(best[name] / unit[name]) for name in names}
    smallest = targets[-1]
    result = {
        "reached": smallest in reached,
        "seconds_to_target": reached.get(smallest),
        "seconds_to": {repr(level): reached.get(level) for level in targets},
        "best_mse": history[-1][1],
        "best_params": best_params,
        "rounds": len(history),
        "n_samples": args.n_samples,
        "evaluations": len(history) * args.n_samples,
        "first_round_s": history[0][0],
        "budget_s": args.budget,
        "train_end": args.train_end,
        "samples": int(t.size),
        "dt_ms": step / n,
        "substeps": n,
        "codegen": args.codegen,
        "integrator": args.integrator,
        "optimizer": f"nevergrad {args.optimizer}",
        "history": history,
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "brian2": brian2.__version__,
                     "brian2modelfitting": getattr(brian2modelfitting, "__version__", "?"),
                     "nevergrad": nevergrad.__version__},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

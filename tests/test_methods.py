"""The method registry: one object per method, read by simulate, the CLI, compare, the app and the README."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurospike as ns
from neurospike import methods
from neurospike.errors import NeurospikeError
from neurospike.live import FRACTIONAL_LIVE_METHODS, LIVE_METHODS
from neurospike.solvers.methods import ExplicitRungeKutta
from neurospike.solvers.tableaux import ButcherTableau

ROOT = Path(__file__).resolve().parents[1]
LIF = dict(C=1.0, g_L=0.1, E_L=-70.0, v_th=-50.0, v_reset=-70.0, t_ref=0.0)


def test_the_readme_table_is_the_registry():
    assert methods.markdown_table() in (ROOT / "README.md").read_text()


def test_every_method_is_registered_under_its_name_and_says_what_it_supports():
    assert list(methods.METHODS) == list(ns.METHOD_NAMES)
    for name, method in methods.METHODS.items():
        assert method.name == name and method.description and method.order
        assert isinstance(method, {"fixed-step": methods.FixedStep, "reference": methods.Reference,
                                   "fractional": methods.Fractional, "pinn": methods.Pinn,
                                   "fractional-pinn": methods.Pinn}[method.family])
    assert methods.names(populations=True) == methods.names(family="fixed-step") + ("l1", "l1-explicit", "fast-l1")
    assert set(methods.names(fractional=True)) == {"l1", "l1-explicit", "fast-l1", "pece", "fpinn"}
    assert (LIVE_METHODS, FRACTIONAL_LIVE_METHODS) == (methods.names(live=True, fractional=False),
                                                       methods.names(live=True, fractional=True))


def test_the_pinn_engine_has_defaults_for_exactly_the_registered_pinn_methods():
    from neurospike.pinn.engine import METHOD_DEFAULTS

    assert set(METHOD_DEFAULTS) == set(methods.names(trains=True))


@pytest.mark.parametrize("call, message", [
    (dict(method="rk5"), "unknown method 'rk5' (did you mean 'rk4'?)"),
    (dict(model="izhikevich", method="strang"), "method 'strang' needs a conditionally linear model (lif, hh); "
                                                 "'izhikevich' is not"),
    (dict(method="rk4", alpha=0.8), "use a fractional method (l1, l1-explicit, fast-l1, pece, fpinn), not 'rk4'"),
    (dict(method="l1"), "method 'l1' integrates a fractional-order model: give alpha"),
    (dict(method="reference", params={"a": [0.02, 0.03]}), "method 'reference' integrates one neuron"),
    (dict(method="pece", alpha=0.8, params={"a": [0.02, 0.03]}), "method 'pece' integrates one neuron"),
    (dict(method="pinn", params={"a": [0.02, 0.03]}), "method 'pinn' trains on one neuron"),
    (dict(method="rk4", pinn={"window": 1.0}), "PINN options and checkpoints go with a PINN method"),
    (dict(method="reference", rtol=2.0), "rtol=2.0 and atol=1e-12 must lie in (0, 1)"),
])
def test_a_method_refuses_what_it_cannot_do_in_one_line(call, message):
    call = dict(dict(model="izhikevich2007", t_end=10.0), **call)
    with pytest.raises(NeurospikeError) as error:
        ns.simulate(call.pop("model"), **call)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_import_neurospike_loads_neither_optax_nor_fastapi_nor_matplotlib():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, neurospike; print([m for m in ('optax', 'fastapi', 'matplotlib', "
                               "'uvicorn') if m in sys.modules])"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_writing_a_report_leaves_the_matplotlib_backend_alone(tmp_path):
    script = (f"import matplotlib, neurospike as ns; matplotlib.use('svg'); "
              f"ns.simulate('lif', t_end=5.0).plot({str(tmp_path / 'lif.png')!r}); "
              f"ns.compare('lif', ['euler'], dt=0.1, times=[1.0], t_end=5.0, out={str(tmp_path / 'r')!r}); "
              f"print(matplotlib.get_backend())")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "svg" and (tmp_path / "lif.png").stat().st_size > 0


# Ralston's second-order method (a21 = 2/3, b = 1/4, 3/4): not in the registry, added by a test as a user would.
RALSTON = ButcherTableau(a=((), (2.0 / 3.0,)), b=(0.25, 0.75), c=(0.0, 2.0 / 3.0), order=2,
                         interpolation="hermite")


@pytest.fixture
def with_ralston(monkeypatch):
    method = methods.fixed_step_method(ExplicitRungeKutta("ralston", RALSTON), "Ralston's second-order method")
    monkeypatch.setitem(methods.METHODS, "ralston", method)
    return method


def lif_first_spike(current=2.5):
    """v(t) = v_∞ + (E_L − v_∞) e^{−t/τ}, τ = C/g_L: the first crossing of v_th from rest."""
    tau, v_inf = LIF["C"] / LIF["g_L"], LIF["E_L"] + current / LIF["g_L"]
    return tau * np.log((v_inf - LIF["E_L"]) / (v_inf - LIF["v_th"]))


@pytest.mark.slow
def test_a_new_method_is_one_object_and_runs_everywhere(with_ralston, tmp_path):
    errors = []
    for dt in (0.4, 0.2, 0.1):
        run = ns.simulate("lif", method="ralston", dt=dt, t_end=20.0, params=LIF, current=2.5)
        errors.append(abs(run.spikes[0] - lif_first_spike()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(orders, 2.0, atol=0.1)  # second order, as its tableau says
    population = ns.simulate("lif", method="ralston", dt=0.1, t_end=20.0, params=dict(LIF, C=[1.0, 1.0]),
                             current=2.5)
    np.testing.assert_array_equal(population.spikes[population.spike_neurons == 0], run.spikes)
    report = ns.compare("lif", ["ralston", "rk4"], dt=0.1, times=[10.0], t_end=20.0, params=LIF, current=2.5,
                        out=tmp_path / "report")
    assert {"ralston", "rk4"} <= {row["method"] for row in report.rows}
    cli = subprocess.run([sys.executable, "-m", "neurospike.cli", "simulate", "--help"], capture_output=True,
                         text=True, check=True)
    assert all(name in " ".join(cli.stdout.split()) for name in ("rk4", "fast-l1", "splitting-pinn", "reference"))


def test_pinn_data_fits_the_run_of_its_data_method_computed_by_the_caller(monkeypatch):
    from neurospike import pinn

    class Trained(Exception):
        pass

    seen = {}

    def train(*args, data=None, **kwargs):
        seen["data"] = data
        raise Trained  # the data is what this test is about, not the training

    monkeypatch.setattr(pinn, "run", train)
    with pytest.raises(Trained):
        ns.simulate("lif", method="pinn-data", dt=0.5, t_end=10.0, current=2.5, pinn={"data_method": "heun"})
    heun = ns.simulate("lif", method="heun", dt=0.5, t_end=10.0, current=2.5)
    np.testing.assert_array_equal(seen["data"][0], heun.t)
    np.testing.assert_array_equal(seen["data"][1], heun.y)


def test_a_problem_is_what_resolve_returns_and_a_method_solves():
    problem = ns.resolve("izhikevich2007", t_end=300.0, dt=0.1)
    assert (problem.dt, problem.t_end, problem.orders, problem.n_neurons) == (0.1, 300.0, None, None)
    assert problem.params == {**problem.model.defaults(), **problem.preset.params}
    method = methods.get("rk4")
    method.check(problem)
    direct = method.solve(problem)
    np.testing.assert_array_equal(direct.spikes, ns.simulate("izhikevich2007", t_end=300.0, dt=0.1).spikes)
    one = dataclasses.replace(problem, params=dict(problem.params, a=np.array([0.03, 0.05]))).neuron(1)
    assert one.params["a"] == 0.05 and one.n_neurons is None
    assert json.dumps(sorted(methods.names(family="fractional"))) == '["fast-l1", "l1", "l1-explicit", "pece"]'

"""What a new user meets on the command line (issue 15): units and choices in every help, `neurospike models MODEL`,
`--current 10`, refusals that name the unit or the missing argument, sorted `--save-at`, the summary line, the
README's JSON keys, and report folders with a manifest (no stale files, no foreign folder overwritten).

LIF truths as in test_cli.py: under a constant I > g_L (v_th − E_L) = 2 nA from rest, the first spike is at
t* = (C/g_L) ln((I/g_L) / (I/g_L − 20 mV)), so 10 ln 3 ms for I = 3 nA.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import typer

import neurospike as ns
from neurospike import cli, currents, methods, models, reports
from neurospike.paper import cases as paper_cases
from neurospike.pinn.engine import PinnOptions
from test_cli import RUN, compilation_cache, first_spike, lif_voltage, load_json, run  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {command.name: command for command in typer.main.get_command(cli.app).commands.values()}


def help_of(command: str) -> dict[str, str]:
    """Option (or argument) name -> its help text, as `neurospike COMMAND --help` shows it."""
    return {param.opts[0] if param.opts else param.name: param.help or "" for param in COMMANDS[command].params}


# --- every --help lists its choices and units -------------------------------------------------------------------
def test_simulate_help_lists_every_model_method_preset_pinn_option_and_current_kind():
    options = help_of("simulate")
    assert all(name in options["model"] for name in models.REGISTRY)
    assert all(name in options["--method"] for name in methods.METHODS)
    assert all(m.default_preset in options["--preset"] for m in models.REGISTRY.values())
    assert all(field.name in options["--pinn"] for field in dataclasses.fields(PinnOptions))
    assert all(f"{kind}:" in options["--current"] for kind in currents.KINDS)
    assert all(mode in options["--events"] for mode in methods.EVENTS_MODES)
    for option in ("--current", "--param", "--initial"):
        assert "neurospike models MODEL" in options[option]


def test_compare_and_convergence_list_every_method_they_take():
    # every method but the reference (what they measure against) and the fractional ones (no --alpha there)
    takes = [name for name, m in methods.METHODS.items() if m.family != "reference" and not m.fractional]
    for command in ("compare", "convergence"):
        assert all(name in help_of(command)["--methods"] for name in takes), command


def test_sweep_alpha_help_lists_every_fractional_method():
    text = help_of("sweep-alpha")["--method"]
    assert set(methods.names(family="fractional")) == {"l1", "l1-explicit", "fast-l1", "pece"}
    assert all(name in text for name in methods.names(family="fractional"))


def test_paper_help_lists_the_studies_and_every_case():
    options = help_of("paper")
    assert "splitting-pinn" in options["name"]
    assert all(case.key in options["--case"] for case in paper_cases(quick=False))


@pytest.mark.parametrize("command", ["simulate", "compare", "convergence", "sweep-alpha", "sweep", "fit"])
def test_preset_is_described_in_every_command(command):
    assert "named experiment" in help_of(command)["--preset"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_real_valued_option_states_its_unit(command):
    units = re.compile(r"\b(ms|Hz|GiB|mV|dimensionless)\b|cm²")
    hints = typing.get_type_hints(COMMANDS[command].callback)
    real = [param for param in COMMANDS[command].params if hints[param.name] in (float, typing.Optional[float])]
    assert real or command in ("app", "models", "paper")
    for param in real:
        assert units.search(param.help or ""), (command, param.opts, param.help)


def test_the_rendered_help_keeps_the_optional_parts_of_the_current_syntax(capsys):
    # rich markup would swallow "[amplitude=0]" as a tag
    code = cli.main(["simulate", "--help"])
    assert code == 0 and "constant:[amplitude=0]" in capsys.readouterr().out


# --- neurospike models [MODEL] ------------------------------------------------------------------------------------
def test_models_model_prints_equations_units_every_parameter_and_the_presets_input(capsys):
    code, out, err = run(capsys, "models", "izhikevich2007")
    assert (code, err) == (0, "")
    assert "C dv/dt = k (v − vr)(v − vt) − w + I" in out and "if v ≥ vpeak: v ← c, w ← w + d" in out
    assert "Input current I (--current): pA" in out
    block = out.split("Parameters (--param NAME=VALUE):")[1].split("Presets")[0]
    table = {line.split()[0]: line.split() for line in block.splitlines() if line.startswith("  ") and line.split()}
    for name, p in models.get("izhikevich2007").params.items():  # name, default, unit, range
        assert table[name][:3] == [name, f"{p.default:g}", p.unit]
        assert f"{p.range[0]:g} … {p.range[1]:g}" in " ".join(table[name])
    assert "input: step 0 → 70 pA at 101 ms" in out and "t_end 1000 ms, dt 0.1 ms" in out
    assert "Learning to Spike" in out  # the preset's description


def test_models_model_json_has_units_ranges_and_preset_inputs(capsys):
    code, out, _ = run(capsys, "models", "hh", "--json")
    data = json.loads(out)
    assert code == 0 and data["current_unit"] == "µA/cm²"
    assert data["params"]["g_Na"] == {"default": 120.0, "unit": "mS/cm²", "range": [0.0, 200.0],
                                      "description": "maximal sodium conductance"}
    assert data["presets"]["pulse"]["input"] == "pulse of 20 µA/cm² from 10 to 11 ms (else 0 µA/cm²)"
    assert data["spike"] == {"state": "v", "level": "v_spike", "reset": False, "refractory": None}


@pytest.mark.parametrize("model", models.REGISTRY.values(), ids=models.REGISTRY)
def test_the_equations_text_names_every_parameter_the_right_hand_side_and_reset_use(model):
    """A parameter the model's code depends on (its derivatives or reset change when it changes) is in the text."""
    p = model.defaults()
    y = tuple(np.asarray(x, dtype=float) + 0.1 for x in model.initial_state(p, np))

    def evaluate(values):
        reset = model.spike.reset(y, values) if model.spike and model.spike.reset else ()
        return np.concatenate([np.ravel(model.derivatives(0.0, y, values, 1.0, np)), np.ravel(reset)])

    used = [name for name in p if not np.allclose(evaluate({**p, name: p[name] * 1.1 + 0.1}), evaluate(p))]
    assert used and all(re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", model.equations) for name in used), used


def test_every_models_json_has_units_ranges_holding_the_defaults_and_preset_inputs(capsys):
    code, out, _ = run(capsys, "models", "--json")
    for entry in json.loads(out):
        assert entry["current_unit"] and entry["equations"], entry["name"]
        for name, param in entry["params"].items():
            low, high = param["range"]
            assert low <= param["default"] <= high, (entry["name"], name)
        assert all(preset["description"] and preset["input"] for preset in entry["presets"].values())


def test_unknown_model_is_one_line_with_the_closest_name(capsys):
    code, _, err = run(capsys, "models", "izhikevic2007")
    assert code == 2 and err.count("\n") == 1 and "did you mean 'izhikevich2007'" in err


def test_models_listing_shows_parameter_names_and_wraps_preset_names_whole_at_80_columns(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    words = set(re.findall(r"[\w.]+", out))
    for m in models.REGISTRY.values():
        assert set(m.params) <= words, m.name
        assert set(m.presets) <= words, m.name  # each name whole on one line


# --- --current, --param, --initial -------------------------------------------------------------------------------
def test_a_bare_number_is_a_constant_current(tmp_path, capsys):
    spikes = []
    for spec in ("3", "constant:amplitude=3"):
        out = tmp_path / f"{len(spikes)}.json"
        code, _, err = run(capsys, "simulate", "lif", *RUN, "--current", spec, "--out", out)
        assert (code, err) == (0, "")
        spikes.append(load_json(out)["spikes"])
    assert spikes[0] == spikes[1]
    assert np.allclose(spikes[0][:1], [first_spike(current=3.0)], atol=1e-6)  # 10 ln 3 ms


@pytest.mark.parametrize("option, value, named", [
    ("--param", "C=1nF", "--param C='1nF' is not a number; C is in pF (izhikevich2007); give a number, e.g. "
                         "--param C=100"),
    ("--initial", "w=0pA", "--initial w='0pA' is not a number; w is in pA (izhikevich2007); give a number, e.g. "
                           "--initial w=0"),
])
def test_a_value_with_a_unit_is_refused_naming_the_unit(tmp_path, capsys, option, value, named):
    code, _, err = run(capsys, "simulate", "izhikevich2007", option, value, "--out", tmp_path / "rs.json")
    assert code == 2 and err == f"neurospike: error: {named}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec, missing", [("step:amplitude=5", "start"), ("ramp:slope=1", "start"),
                                           ("pulses:start=1,width=1,period=2,amplitude=1", "count"),
                                           ("sine:amplitude=1", "frequency"), ("ou:mean=0,sigma=1", "tau"),
                                           ("step:", "start, amplitude")])
def test_a_current_spec_names_only_the_arguments_really_missing(tmp_path, capsys, spec, missing):
    code, _, err = run(capsys, "simulate", "lif", "--current", spec, "--out", tmp_path / "run.json")
    assert code == 2 and err.count("\n") == 1
    assert re.search(r"missing (.*?); write", err).group(1) == missing
    assert list(tmp_path.iterdir()) == []


# --- --save-at ----------------------------------------------------------------------------------------------------
def test_unsorted_save_at_gives_the_sorted_run(tmp_path, capsys):
    rows = []
    for times in ("30,10,20,5,10", "5,10,20,30"):
        out = tmp_path / f"{len(rows)}.csv"
        assert run(capsys, "simulate", "lif", *RUN, "--save-at", times, "--out", out)[0] == 0
        rows.append(np.loadtxt(out, delimiter=",", skiprows=2))
    assert np.array_equal(rows[0], rows[1]) and list(rows[0][:, 0]) == [5, 10, 20, 30]
    assert np.allclose(rows[0][:2, 1], lif_voltage([5.0, 10.0]), atol=1e-6)  # before the first spike (16.1 ms)
    api = ns.simulate("lif", t_end=50, dt=0.01, save_at=[30, 10, 20, 5, 10])
    assert list(api.t) == [5, 10, 20, 30] and np.array_equal(api["v"], rows[0][:, 1])


# --- the summary line and the README's JSON keys ------------------------------------------------------------------
def readme_json_keys() -> set[str]:
    section = (ROOT / "README.md").read_text().split("The JSON output of `simulate` has these keys", 1)[1]
    table = section.split("\n\n", 2)[1]
    return {key for row in table.splitlines()[2:] for key in re.findall(r"`(\w+)`", row.split("|")[1])}


def saved_keys(trajectory, tmp_path) -> set[str]:
    trajectory.save(tmp_path / "run.json")
    return set(load_json(tmp_path / "run.json"))


ONLY_IN = {"alpha": "fractional", "training": "PINN", "spike_neurons": "population", "spike_counts": "population"}


def test_readme_lists_every_key_of_classical_and_fractional_files(tmp_path):
    documented = readme_json_keys()
    classical = saved_keys(ns.simulate("lif", t_end=20, dt=0.1), tmp_path)
    fractional = saved_keys(ns.simulate("lif", method="l1", alpha=0.8, t_end=5, dt=0.1), tmp_path)
    assert fractional - classical == {"alpha"}
    assert documented - set(ONLY_IN) == classical  # the PINN and population keys: the slow tests below
    assert fractional <= documented


@pytest.mark.slow
def test_readme_lists_the_keys_of_a_population_file(tmp_path):
    population = saved_keys(ns.simulate("lif", t_end=20, dt=0.1, params={"C": np.array([1.0, 2.0])}), tmp_path)
    classical = readme_json_keys() - set(ONLY_IN)
    assert population - classical == {"spike_neurons", "spike_counts"}


@pytest.mark.slow
def test_a_pinn_run_carries_training_and_its_summary_names_the_checkpoint(tmp_path, capsys):
    out, checkpoint = tmp_path / "pinn.json", tmp_path / "nets" / "lif.npz"
    code, stdout, err = run(capsys, "simulate", "lif", "--method", "pinn-reset", "--t-end", "2", "--dt", "0.1",
                            "--pinn", "adam_steps=5", "--pinn", "lbfgs_steps=2", "--pinn", "warmup=5,2",
                            "--out", out, "--checkpoint", checkpoint)
    assert code == 0, err
    assert f"checkpoint -> {checkpoint}" in stdout and checkpoint.is_file()
    keys = set(load_json(out))
    assert keys - (readme_json_keys() - set(ONLY_IN)) == {"training"}


def test_the_summary_of_a_fractional_run_shows_alpha(tmp_path, capsys):
    code, stdout, err = run(capsys, "simulate", "lif", "--method", "l1", "--alpha", "0.8", "--t-end", "5", "--dt",
                            "0.1", "--out", tmp_path / "f.json")
    assert code == 0, err
    assert "lif [tonic] l1, α v=0.8, dt = 0.1 ms" in stdout
    assert load_json(tmp_path / "f.json")["alpha"] == {"v": 0.8}


# --- output folders -----------------------------------------------------------------------------------------------
def test_simulate_creates_a_missing_folder_only_when_the_run_succeeds(tmp_path, capsys):
    assert run(capsys, "simulate", "lif", *RUN, "--dt", "-1", "--out", tmp_path / "new" / "run.json")[0] == 2
    assert list(tmp_path.iterdir()) == []
    assert run(capsys, "simulate", "lif", *RUN, "--out", tmp_path / "new" / "deeper" / "run.json")[0] == 0
    assert load_json(tmp_path / "new" / "deeper" / "run.json")["model"] == "lif"
    (tmp_path / "file").write_text("")
    code, _, err = run(capsys, "simulate", "lif", *RUN, "--out", tmp_path / "file" / "run.json")
    assert code == 2 and "is a file, not a folder" in err


SMALL_COMPARE = ["--methods", "euler", "--dt", "0.1", "--times", "0,10", "--t-end", "20", "--events", "located"]


def manifest(folder: Path) -> dict:
    return json.loads((folder / reports.MANIFEST).read_text())


def test_a_rerun_into_a_report_folder_removes_the_previous_reports_own_stale_files(tmp_path, capsys, monkeypatch):
    out = tmp_path / "report"
    # 70 pA from t = 0 (the preset's step comes at 101 ms, after this short run)
    command = ["neurospike", "compare", "izhikevich2007", *SMALL_COMPARE, "--current", "70", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", command)  # as the installed script is called
    assert cli.main() == 0
    assert (out / "phase_plane.png").is_file()  # two states
    assert manifest(out)["command"] == " ".join(command)
    (out / "notes.txt").write_text("mine")  # not the report's: kept
    code, _, err = run(capsys, "compare", "lif", *SMALL_COMPARE, "--out", out)
    assert code == 0, err
    assert not (out / "phase_plane.png").exists()  # LIF has one state: no phase plane, and the old one is gone
    assert sorted(manifest(out)["files"]) == ["spike_errors.png", "table.csv", "table.md", "traces.png"]
    assert {p.name for p in out.iterdir()} == {*manifest(out)["files"], reports.MANIFEST, "notes.txt"}
    header = next(csv.reader((out / "table.csv").open()))
    assert "v" in header and "w" not in header  # the LIF table, not the izhikevich2007 one


def test_a_foreign_folder_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("mine")
    code, _, err = run(capsys, "compare", "lif", *SMALL_COMPARE, "--out", out)
    assert code == 2 and err.count("\n") == 1
    assert "no neurospike report wrote" in err and f"--out {out}-2" in err
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"] and sorted(p.name for p in tmp_path.iterdir()) == [
        "thesis"]


def test_report_writer_is_all_or_nothing_and_keeps_the_previous_report_on_failure(tmp_path):
    out = tmp_path / "r"
    reports.write(out, {"a.txt": lambda p: p.write_text("1"), "b.txt": lambda p: p.write_text("2")})

    def broken(folder):
        (folder / "a.txt").write_text("new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        reports.write(out, broken)
    assert (out / "a.txt").read_text() == "1" and manifest(out)["files"] == ["a.txt", "b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no staging folder left behind
    reports.write(out, lambda folder: (folder / "c.txt").write_text("3"))
    assert sorted(p.name for p in out.iterdir()) == [reports.MANIFEST, "c.txt"]

"""Every example in examples/ runs as a script, exits 0 and writes what its docstring promises into the
directory it is given."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every example as a script: `make check` leaves it out, `make test` runs it

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BUDGET_S = 120  # per example; each is meant to take a few seconds on an idle machine (most of it JIT compiling)
# example -> files it must write
EXPECTED = {
    "simulate_and_plot": ["rs_rk4.png"],
    "spike_events": ["spike_events.txt"],
    "input_currents": ["input_currents.png", "segments.json"],
    "dense_output": ["dense_output.csv"],
    "save_and_load": ["tonic_bursting.json", "tonic_bursting.npz", "tonic_bursting.csv"],
    "izhikevich_gallery": ["izhikevich_gallery.png"],
    "compare_methods": ["compare/table.md", "compare/traces.png"],
    "convergence_study": ["convergence/convergence.md"],
    "population": ["population_raster.png"],
    "pinn": ["pinn_lif.png", "lif_pinn_reset.npz"],
}


def test_every_example_is_listed():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_writes_its_output(name, tmp_path):
    outputs = EXPECTED[name]
    script = EXAMPLES / f"{name}.py"
    assert script.read_text().split('"""')[1].strip(), f"{name} has no docstring"
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                            timeout=BUDGET_S, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()
    for output in outputs:
        assert (tmp_path / output).is_file() and (tmp_path / output).stat().st_size > 0, output
